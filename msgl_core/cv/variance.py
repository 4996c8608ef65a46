"""Variance components of a cross-validated score over data partitions × training seeds.

A grid of scores y_ps (partition p = (repeat, fold) = 1..P, seed s = 1..S; RMSE in °C, or its log) is
read as a random-effects model (Searle, Casella & McCulloch 1992, *Variance Components*, ch. 4):

* **crossed** (a seed means the same initial weights in every partition):
  y_ps = μ + a_p + b_s + ε_ps, with σ²_P (data partition), σ²_S (seed main effect) and σ²_E
  (partition × seed interaction and noise; one observation per cell cannot separate them);
* **nested** (seeds drawn per run): y_ps = μ + a_p + ε_s(p), with σ²_P and σ²_W (training).

On a complete grid the components come from the ANOVA mean squares (method of moments, negative
estimates truncated at 0); with missing cells from REML (``statsmodels`` ``MixedLM`` with variance-component
formulas), which equals the ANOVA on a complete grid. Intervals: the CV mean with a Satterthwaite (1946,
Biometrics Bulletin 2:110) t interval; σ²_E (σ²_W) with the exact χ² interval; every component and share
with the pigeonhole bootstrap (Owen 2007, Ann. Appl. Stat. 1:386), which resamples partitions and seeds
independently. The mean's interval is conditional on this dataset: no unbiased estimator of the variance
of K-fold CV over new datasets exists (Bengio & Grandvalet 2004, JMLR 5:1089); the Nadeau–Bengio corrected
interval (Nadeau & Bengio 2003, Machine Learning 52:239) is a conservative alternative.

Example (3 partitions × 2 seeds of test RMSE, °C):
    >>> import numpy as np
    >>> d = anova_decomposition(np.array([[1.0, 1.2], [2.0, 2.3], [3.0, 3.1]]))
    >>> round(d.mean, 2), round(d.components.partition, 3), round(d.components.residual, 3)
    (2.1, 0.95, 0.005)
    >>> round(d.components.shares.partition, 3)
    0.976
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DESIGNS = ("crossed", "nested")
#: Levels of the pigeonhole-bootstrap percentile intervals.
BOOTSTRAP_LEVELS = (0.90, 0.95)


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]`` at ``level`` (0.95 = 95 %), how it was made, and its degrees of
    freedom (NaN where none apply)."""

    low: float
    high: float
    level: float
    method: str
    df: float = math.nan


@dataclass(frozen=True)
class MeanSquares:
    """The ANOVA table: mean squares (units of y²) and degrees of freedom of partitions, seeds and the
    residual (crossed), or of partitions and within-partition runs (nested: seed fields NaN / 0)."""

    partition: float
    seed: float
    residual: float
    df_partition: int
    df_seed: int
    df_residual: int


@dataclass(frozen=True)
class Components:
    """Variance components in units of y² (°C² for RMSE in °C): σ²_P (``partition``), σ²_S (``seed``; NaN in
    the nested design) and σ²_E (``residual``; σ²_W, the within-partition training variance, when nested)."""

    partition: float
    seed: float
    residual: float

    @property
    def training(self) -> float:
        """Training stochasticity E_P[Var_S(y | p)] = σ²_S + σ²_E (σ²_W when nested)."""
        return np.nansum([self.seed, self.residual]).item()

    @property
    def total(self) -> float:
        """σ²_P + training."""
        return self.partition + self.training

    @property
    def shares(self) -> Shares:
        """Fractions of :attr:`total` (NaN when the total is 0)."""
        total = self.total
        if total <= 0:
            return Shares(math.nan, math.nan, math.nan, math.nan)
        return Shares(self.partition / total, self.seed / total, self.residual / total, self.training / total)


@dataclass(frozen=True)
class Shares:
    """Fractions of the total variance: data partition, seed, residual, and training (= seed + residual)."""

    partition: float
    seed: float
    residual: float
    training: float


@dataclass(frozen=True)
class Decomposition:
    """A variance decomposition of one grid of scores.

    Attributes:
        design: ``crossed`` or ``nested``; method: ``anova`` (complete grid) or ``reml``.
        n_partitions, n_seeds: P and S (S per partition when nested); n_cells: scores used.
        mean: the CV estimate ȳ (units of y).
        mean_squares: the ANOVA table (None for REML).
        components: σ̂² (truncated at 0).
        mean_interval: 95 % interval of ȳ (Satterthwaite t for ANOVA, Wald for REML).
        residual_interval: exact 95 % χ² interval of σ²_E (σ²_W); None for REML.
        warnings: messages of the REML fit (boundary, convergence).
    """

    design: str
    method: str
    n_partitions: int
    n_seeds: int
    n_cells: int
    mean: float
    mean_squares: MeanSquares | None
    components: Components
    mean_interval: Interval
    residual_interval: Interval | None
    warnings: tuple[str, ...] = ()


def _check_grid(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(f"expected a (partitions, seeds) grid with at least 2 of each, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError(f"the grid has {int((~np.isfinite(y)).sum())} missing or non-finite cells; "
                         "use reml_decomposition for an unbalanced grid")
    return y


def _mean_squares(y: np.ndarray, design: str) -> tuple[np.ndarray, ...]:
    """(MS_P, MS_S, MS_E) of ``y`` (..., P, S), vectorised over leading axes; MS_S is NaN when nested and
    MS_E is then MS_W."""
    p, s = y.shape[-2:]
    grand = y.mean(axis=(-2, -1), keepdims=True)
    row = y.mean(axis=-1, keepdims=True)
    col = y.mean(axis=-2, keepdims=True)
    ms_p = s * ((row - grand) ** 2).sum(axis=(-2, -1)) / (p - 1)
    if design == "nested":
        return ms_p, np.full_like(ms_p, np.nan), ((y - row) ** 2).sum(axis=(-2, -1)) / (p * (s - 1))
    ms_s = p * ((col - grand) ** 2).sum(axis=(-2, -1)) / (s - 1)
    ms_e = ((y - row - col + grand) ** 2).sum(axis=(-2, -1)) / ((p - 1) * (s - 1))
    return ms_p, ms_s, ms_e


def _components(ms_p: np.ndarray, ms_s: np.ndarray, ms_e: np.ndarray, p: int, s: int) -> tuple[np.ndarray, ...]:
    return np.maximum(0.0, (ms_p - ms_e) / s), np.maximum(0.0, (ms_s - ms_e) / p), ms_e


def anova_decomposition(y: np.ndarray, design: str = "crossed", level: float = 0.95) -> Decomposition:
    """Method-of-moments decomposition of a complete grid (Searle et al. 1992, §4.2 and §4.7).

    Args:
        y: (partitions, seeds) scores, e.g. test RMSE in °C; P, S >= 2.
        design: ``crossed`` (σ²_P, σ²_S, σ²_E) or ``nested`` (σ²_P, σ²_W).
        level: confidence level of the intervals.

    Crossed: σ̂²_P = max(0, (MS_P − MS_E)/S), σ̂²_S = max(0, (MS_S − MS_E)/P), σ̂²_E = MS_E; the mean's
    variance V̂ = (MS_P + MS_S − MS_E)/(PS) has Satterthwaite df V̂² / Σ (MS_i/PS)²/df_i (if V̂ <= 0,
    MS_E/(PS) with df_E is used). Nested: σ̂²_P = max(0, (MS_P − MS_W)/S), σ̂²_W = MS_W, V̂ = MS_P/(PS) with
    df P − 1.

    Raises ValueError for an unknown design, a grid smaller than 2 × 2, or missing cells.
    """
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; expected one of {', '.join(DESIGNS)}")
    y = _check_grid(y)
    p, s = y.shape
    ms_p, ms_s, ms_e = (float(v) for v in _mean_squares(y, design))
    var_p, var_s, var_e = (float(v) for v in _components(np.array(ms_p), np.array(ms_s), np.array(ms_e), p, s))
    if design == "nested":
        table = MeanSquares(ms_p, math.nan, ms_e, p - 1, 0, p * (s - 1))
        variance, df = ms_p / (p * s), float(p - 1)
        components = Components(var_p, math.nan, var_e)
    else:
        table = MeanSquares(ms_p, ms_s, ms_e, p - 1, s - 1, (p - 1) * (s - 1))
        variance = (ms_p + ms_s - ms_e) / (p * s)
        terms = [(ms_p / (p * s)) ** 2 / (p - 1), (ms_s / (p * s)) ** 2 / (s - 1), (ms_e / (p * s)) ** 2 / table.df_residual]
        df = variance**2 / sum(terms) if variance > 0 and sum(terms) > 0 else math.nan
        if variance <= 0:
            variance, df = ms_e / (p * s), float(table.df_residual)
        components = Components(var_p, var_s, var_e)
    mean = float(y.mean())
    return Decomposition(design, "anova", p, s, y.size, mean, table, components,
                         _t_interval(mean, variance, df, level, "Satterthwaite t" if design == "crossed" else "t"),
                         residual_interval(ms_e, table.df_residual, level))


def _t_interval(mean: float, variance: float, df: float, level: float, method: str) -> Interval:
    """``mean ± t_{(1+level)/2, df} sqrt(variance)``; a point when the variance is 0; NaN bounds when df < 1
    (a Satterthwaite df that small, from a tiny grid whose residual mean square dominates, makes t explode:
    the data cannot bound the mean)."""
    if not variance > 0 or not math.isfinite(df):
        return Interval(mean, mean, level, method, df if variance > 0 else math.inf)
    if df < 1:
        return Interval(math.nan, math.nan, level, f"{method} (df < 1: no interval)", df)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(variance)
    return Interval(mean - half, mean + half, level, method, df)


def residual_interval(ms: float, df: int, level: float = 0.95) -> Interval:
    """Exact interval of a variance estimated by ``ms`` with ``df`` degrees of freedom under normality:
    [df·ms/χ²_{(1+level)/2, df}, df·ms/χ²_{(1−level)/2, df}]. Raises ValueError if df < 1."""
    if df < 1:
        raise ValueError(f"a χ² interval needs df >= 1, got {df}")
    upper_q, lower_q = stats.chi2.ppf([0.5 + level / 2, 0.5 - level / 2], df)
    return Interval(df * ms / float(upper_q), df * ms / float(lower_q), level, "chi-square", float(df))


def nadeau_bengio_interval(y: np.ndarray, n_folds: int, level: float = 0.95) -> Interval:
    """Conservative corrected-resampled-t interval of the mean of a complete (partitions, seeds) grid:
    Var̂ = (1/J + n_test/n_train)·s²_J over the J = P partition means, n_test/n_train = 1/(K − 1), t with
    J − 1 df (Nadeau & Bengio 2003). Raises ValueError for K < 2 or an incomplete grid."""
    if n_folds < 2:
        raise ValueError(f"folds must be >= 2, got {n_folds}")
    means = _check_grid(y).mean(axis=1)
    j = len(means)
    variance = (1 / j + 1 / (n_folds - 1)) * float(means.var(ddof=1))
    return _t_interval(float(means.mean()), variance, float(j - 1), level, "Nadeau-Bengio corrected t")


def water_year_interval(sse: np.ndarray, n_obs: np.ndarray, replicates: int = 2000, seed: int = 0,
                        level: float = 0.95) -> Interval:
    """Block-bootstrap percentile interval of a reach's pooled RMSE √(Σ sse / Σ n_obs) (°C), the blocks being
    water years: each replicate resamples whole years with replacement, so days within a year, which are
    autocorrelated, are never split (non-overlapping blocks: Carlstein 1986, Ann. Stat. 14:1171;
    ``scipy.stats.bootstrap``, paired).

    Shapes: sse (°C²), n_obs: (water years,), one entry per year with observations. NaN bounds with fewer than
    two years. Raises ValueError for different lengths or fewer than 2 replicates.
    """
    sse, n_obs = np.asarray(sse, dtype=float), np.asarray(n_obs, dtype=float)
    if sse.shape != n_obs.shape or sse.ndim != 1:
        raise ValueError(f"sse and n_obs must be equal-length 1-D arrays, got shapes {sse.shape} and {n_obs.shape}")
    if replicates < 2:
        raise ValueError(f"bootstrap replicates must be >= 2, got {replicates}")
    method = "water-year block bootstrap percentile"
    if len(sse) < 2:
        return Interval(math.nan, math.nan, level, method)

    def pooled_rmse(s: np.ndarray, n: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sqrt(s.sum(axis=axis) / n.sum(axis=axis))

    result = stats.bootstrap((sse, n_obs), pooled_rmse, paired=True, vectorized=True, n_resamples=replicates,
                             confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    interval = result.confidence_interval
    return Interval(float(interval.low), float(interval.high), level, method)


def reml_decomposition(frame: pd.DataFrame, design: str = "crossed", level: float = 0.95) -> Decomposition:
    """REML variance components of a long table that may miss cells (statsmodels ``MixedLM``, one group,
    partition and seed as variance components).

    Args:
        frame: columns ``partition``, ``seed``, ``value`` (rows with a NaN value are left out).
        design: ``crossed`` (partition and seed components) or ``nested`` (partition only).
        level: level of the Wald interval of the mean.

    Raises ValueError for an unknown design, missing columns, or fewer than 2 partitions or seeds with a value.
    """
    import statsmodels.formula.api as smf

    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; expected one of {', '.join(DESIGNS)}")
    missing = {"partition", "seed", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"the table needs columns partition, seed, value; missing {', '.join(sorted(missing))}")
    data = frame.loc[np.isfinite(frame["value"].to_numpy(dtype=float)), ["partition", "seed", "value"]].copy()
    p, s = data["partition"].nunique(), data["seed"].nunique()
    if p < 2 or s < 2:
        raise ValueError(f"REML needs at least 2 partitions and 2 seeds with a value, got {p} and {s}")
    data = data.astype({"partition": str, "seed": str, "value": float}).assign(group=1)
    formulas = {"partition": "0 + C(partition)"} | ({"seed": "0 + C(seed)"} if design == "crossed" else {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm("value ~ 1", data, groups="group", re_formula="0", vc_formula=formulas)
        fit = model.fit(reml=True)
    vcomp = dict(zip(model.exog_vc.names, np.maximum(0.0, np.asarray(fit.vcomp, dtype=float))))
    mean, se = float(fit.fe_params["Intercept"]), float(fit.bse["Intercept"])
    half = float(stats.norm.ppf(0.5 + level / 2)) * se
    components = Components(vcomp["partition"], vcomp.get("seed", math.nan), float(fit.scale))
    return Decomposition(design, "reml", p, s, len(data), mean, None, components,
                         Interval(mean - half, mean + half, level, "REML Wald (normal)"), None,
                         tuple(dict.fromkeys(str(w.message) for w in caught)))


@dataclass(frozen=True)
class BootstrapIntervals:
    """Pigeonhole-bootstrap percentile intervals, one per level of :data:`BOOTSTRAP_LEVELS`, of σ²_P, σ²_S,
    σ²_E and the partition and training shares; with the replicate count and the random seed."""

    replicates: int
    seed: int
    partition: tuple[Interval, ...]
    seed_component: tuple[Interval, ...]
    residual: tuple[Interval, ...]
    partition_share: tuple[Interval, ...]
    training_share: tuple[Interval, ...]


def _replicates(y: np.ndarray, design: str, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, 3) bootstrap σ̂² (P, S, E): partitions and seeds resampled independently with
    replacement (crossed); partitions only (nested)."""
    p, s = y.shape
    rows = rng.integers(0, p, size=(replicates, p))
    cols = rng.integers(0, s, size=(replicates, s)) if design == "crossed" else np.tile(np.arange(s), (replicates, 1))
    ms_p, ms_s, ms_e = _mean_squares(y[rows[:, :, None], cols[:, None, :]], design)
    return np.stack(_components(ms_p, ms_s, ms_e, p, s), axis=-1)


def pigeonhole_bootstrap(y: np.ndarray, design: str = "crossed", replicates: int = 2000,
                         seed: int = 0) -> BootstrapIntervals:
    """Percentile intervals of the components of a complete (partitions, seeds) grid by the pigeonhole
    bootstrap (Owen 2007): each replicate resamples partitions and seeds independently, with replacement,
    and recomputes the ANOVA (nested: partitions only). Reproducible given ``seed``.

    Raises ValueError for fewer than 2 replicates, an unknown design or an incomplete grid.
    """
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2, got {replicates}")
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; expected one of {', '.join(DESIGNS)}")
    draws = _replicates(_check_grid(y), design, replicates, np.random.default_rng(seed))
    var_p, var_s, var_e = draws.T
    training = np.nansum([var_s, var_e], axis=0) if design == "crossed" else var_e
    total = var_p + training
    with np.errstate(invalid="ignore", divide="ignore"):
        share_p = np.where(total > 0, var_p / total, np.nan)

    def intervals(values: np.ndarray) -> tuple[Interval, ...]:
        return tuple(_percentile(values, level) for level in BOOTSTRAP_LEVELS)

    return BootstrapIntervals(replicates, seed, intervals(var_p), intervals(var_s), intervals(var_e),
                              intervals(share_p), intervals(1 - share_p))


def _percentile(values: np.ndarray, level: float) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval(math.nan, math.nan, level, "pigeonhole bootstrap percentile")
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(low), float(high), level, "pigeonhole bootstrap percentile")


@dataclass(frozen=True)
class PairedComparison:
    """Variant A against B on identical (partition, seed) cells, d = y_A − y_B.

    Attributes:
        a, b: variant names.
        difference: decomposition of d (its ``mean`` is d̄ with its 95 % interval; test-fold difficulty cancels).
        fraction_a_better: share of cells with y_A < y_B.
        partition_ratio: σ̂²_P(A)/σ̂²_P(B) (NaN when σ̂²_P(B) = 0).
        partition_ratio_interval: its paired pigeonhole-bootstrap 90 % interval (same resampled cells for
            both; None for an unbalanced grid).
    """

    a: str
    b: str
    difference: Decomposition
    fraction_a_better: float
    partition_ratio: float
    partition_ratio_interval: Interval | None


def paired_comparison(a: str, y_a: np.ndarray, b: str, y_b: np.ndarray, design: str = "crossed",
                      replicates: int = 2000, seed: int = 0) -> PairedComparison:
    """Compare two complete (partitions, seeds) grids of the same cells (Searle et al. 1992 on d; Owen 2007
    for the ratio). Raises ValueError if the shapes differ or a grid is incomplete."""
    y_a, y_b = _check_grid(y_a), _check_grid(y_b)
    if y_a.shape != y_b.shape:
        raise ValueError(f"paired grids must have the same cells, got shapes {y_a.shape} and {y_b.shape}")
    difference = anova_decomposition(y_a - y_b, design)
    part_a = anova_decomposition(y_a, design).components.partition
    part_b = anova_decomposition(y_b, design).components.partition
    rng = np.random.default_rng(seed)
    state = rng.bit_generator.state
    draws_a = _replicates(y_a, design, replicates, rng)[:, 0]
    rng.bit_generator.state = state  # the same resampled cells for B
    draws_b = _replicates(y_b, design, replicates, rng)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(draws_b > 0, draws_a / draws_b, np.nan)
    return PairedComparison(a, b, difference, float((y_a < y_b).mean()),
                            part_a / part_b if part_b > 0 else math.nan, _percentile(ratios, BOOTSTRAP_LEVELS[0]))


def reml_paired_comparison(a: str, frame_a: pd.DataFrame, b: str, frame_b: pd.DataFrame,
                           design: str = "crossed") -> PairedComparison:
    """:func:`paired_comparison` for unbalanced grids: REML on d over the cells both variants have
    (long tables as :func:`reml_decomposition` takes). Raises ValueError as :func:`reml_decomposition`."""
    both = frame_a.merge(frame_b, on=["partition", "seed"], suffixes=("_a", "_b"))
    both = both[np.isfinite(both["value_a"].to_numpy(float)) & np.isfinite(both["value_b"].to_numpy(float))]
    difference = reml_decomposition(both.assign(value=both["value_a"] - both["value_b"]), design)
    part_a = reml_decomposition(frame_a, design).components.partition
    part_b = reml_decomposition(frame_b, design).components.partition
    return PairedComparison(a, b, difference, float((both["value_a"] < both["value_b"]).mean()),
                            part_a / part_b if part_b > 0 else math.nan, None)
