"""``ot``: debiasing by entropic optimal transport (Stage 1 of Wan et al., "Debias Coarsely, Sample
Conditionally", NeurIPS 2023, arXiv 2305.15618), solved with POT (Flamary et al., JMLR 2021).

Each segment-day becomes a feature vector ``v = [T/σ_T, λ_doy cos(2π doy/365.25), λ_doy sin(…), λ_s static_z]``
(σ_T the pooled target std, static_z z-scored segment attributes), so that mass moves between points of
similar season and segment type. The squared-Euclidean cost between source and target samples is divided
by its median, the entropic plan is solved in the log domain (``ot.sinkhorn(..., method="sinkhorn_log")``
on torch tensors, POT's torch backend), and any new point is mapped with the entropic map of Pooladian &
Niles-Weed (arXiv 2109.12004), a softmax over the target support:

    k_j(v) = exp(−c(v, v_t,j)/(ε·m) + log_v_j),   T(v) = Σ_j k_j(v) v_t,j / Σ_j k_j(v)

of which the temperature coordinate is kept (times σ_T). It is what ``ot.da.SinkhornTransport(reg_e=ε,
norm="median").transform`` computes (POT >= 0.9.4, ``out_of_sample_map="continuous"``), written out so that
the map needs only ``(support, log_v, ε, m)``, saved as plain arrays. The map returns convex combinations
of observed temperatures: it cannot exceed the observed range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot
import pandas as pd
import torch
import xarray as xr

from msgl_core.debias.base import Debiaser, season
from msgl_core.debias.scope import FitSamples
from msgl_core.dims import SEGMENT

#: Rows of new points mapped per chunk (memory: rows × support floats).
CHUNK = 8192
SINKHORN_MAX_ITER = 2000
SINKHORN_TOL = 1e-7


@dataclass(frozen=True)
class EntropicMap:
    """One fitted entropic map (one group of segment-days).

    Attributes:
        support: (n_t, F) target feature vectors v_t.
        log_v: (n_t,) target-side log scaling of the Sinkhorn solution (POT's ``log["log_v"]`` = g/ε).
        eps: entropic regularisation ε on the median-normalised cost.
        median_cost: m, the median of the fitted cost matrix.
    """

    support: np.ndarray
    log_v: np.ndarray
    eps: float
    median_cost: float

    @classmethod
    def fit(cls, source: np.ndarray, target: np.ndarray, eps: float) -> EntropicMap:
        """Solve the entropic plan between uniform weights on ``source`` (n_s, F) and ``target`` (n_t, F).

        Raises ValueError if either set is empty, the feature counts differ, or ε <= 0.
        """
        if len(source) == 0 or len(target) == 0 or source.shape[1] != target.shape[1]:
            raise ValueError(f"entropic OT needs non-empty source and target with equal features, got "
                             f"{source.shape} and {target.shape}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        xs, xt = torch.from_numpy(np.ascontiguousarray(source, np.float64)), torch.from_numpy(
            np.ascontiguousarray(target, np.float64))
        cost, median = ot.utils.cost_normalization(ot.dist(xs, xt), "median", return_value=True)
        a = torch.full((len(xs),), 1.0 / len(xs), dtype=torch.float64)
        b = torch.full((len(xt),), 1.0 / len(xt), dtype=torch.float64)
        _, log = ot.sinkhorn(a, b, cost, reg=eps, method="sinkhorn_log", numItermax=SINKHORN_MAX_ITER,
                             stopThr=SINKHORN_TOL, log=True)
        return cls(np.ascontiguousarray(target, np.float64), log["log_v"].numpy(), float(eps), float(median))

    def weights(self, points: np.ndarray) -> np.ndarray:
        """(n, n_t) conditional weights k(v)/Σk of each point (n, F) over the target support; rows sum to 1."""
        return np.concatenate([torch.softmax(self._logits(chunk), dim=1).numpy()
                               for chunk in np.array_split(points, max(1, -(-len(points) // CHUNK)))])

    def barycentre(self, points: np.ndarray) -> np.ndarray:
        """(n, F) barycentric images T(v) of ``points`` (n, F)."""
        support = torch.from_numpy(self.support)
        return np.concatenate([(torch.softmax(self._logits(chunk), dim=1) @ support).numpy()
                               for chunk in np.array_split(points, max(1, -(-len(points) // CHUNK)))])

    def _logits(self, points: np.ndarray) -> torch.Tensor:
        cost = ot.dist(torch.from_numpy(np.ascontiguousarray(points, np.float64)), torch.from_numpy(self.support))
        return -cost / (self.median_cost * self.eps) + torch.from_numpy(self.log_v)[None, :]


class OTDebiaser(Debiaser):
    """Entropic-OT debiasing, one map per group (all segment-days, or one per season).

    Attributes:
        maps: one :class:`EntropicMap` per group (group 0 only with doy features; DJF, MAM, JJA, SON with
            ``season`` grouping).
        sigma_t: σ_T, pooled target std (°C).
        lambda_doy: weight of the day-of-year features (0 with season grouping); lambda_static: of statics.
        static_segments: (k,) ``seg_id_nat`` with statics; static: (k, F_s) z-scored statics (F_s may be 0).
    """

    method = "ot"

    def __init__(self, maps: list[EntropicMap], sigma_t: float, lambda_doy: float, lambda_static: float,
                 static_segments: np.ndarray, static: np.ndarray) -> None:
        self.maps, self.sigma_t = maps, float(sigma_t)
        self.lambda_doy, self.lambda_static = float(lambda_doy), float(lambda_static)
        self.static_segments, self.static = np.asarray(static_segments), np.asarray(static, dtype=np.float64)

    @property
    def grouped_by_season(self) -> bool:
        """Whether there is one map per season (else one map with day-of-year features)."""
        return len(self.maps) == 4

    @classmethod
    def fit(cls, samples: FitSamples, eps: float, n_support: int, grouping: str, lambda_doy: float,
            lambda_static: float, static: xr.DataArray | None, rng: np.random.Generator) -> OTDebiaser:
        """Fit on ``samples``; ``static``: (segment, feature) attributes (z-scored here) or None.

        ``n_support`` source and target points per group are drawn without replacement with ``rng`` (all of
        them when fewer). Raises ValueError for an unknown ``grouping``, a season without samples, or a
        sample segment missing from ``static``.
        """
        if grouping not in ("doy_features", "season"):
            raise ValueError(f"debias grouping must be 'doy_features' or 'season', got {grouping!r}")
        segments = np.asarray(static[SEGMENT].values) if static is not None else np.array([], dtype=np.int64)
        table = np.empty((0, 0)) if static is None else static.transpose(SEGMENT, ...).values.astype(np.float64)
        table = table.reshape(len(segments), -1) if table.size else np.empty((len(segments), 0))
        if table.size:
            std = table.std(axis=0)
            table = (table - table.mean(axis=0)) / np.where(std > 0, std, 1.0)
        debiaser = cls([], float(samples.target.std()) or 1.0, lambda_doy if grouping == "doy_features" else 0.0,
                       lambda_static, segments, table)
        src = debiaser.features(samples.source, samples.source_time, samples.source_segment)
        obs = debiaser.features(samples.target, samples.target_time, samples.target_segment)
        groups = [np.ones(len(src), bool)], [np.ones(len(obs), bool)]
        if grouping == "season":
            groups = ([season(samples.source_time) == s for s in range(4)],
                      [season(samples.target_time) == s for s in range(4)])
        for k, (in_src, in_obs) in enumerate(zip(*groups)):
            if not (in_src.any() and in_obs.any()):
                raise ValueError(f"season {k} (0 DJF … 3 SON) has no debiasing samples; use grouping 'doy_features'")
            debiaser.maps.append(EntropicMap.fit(_subsample(src[in_src], n_support, rng),
                                                 _subsample(obs[in_obs], n_support, rng), eps))
        return debiaser

    def features(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray) -> np.ndarray:
        """(n, F) feature vectors of values (n,) °C on dates and segments (n,).

        Raises ValueError for a segment without statics (when statics are used).
        """
        columns = [values[:, None] / self.sigma_t]
        if self.lambda_doy > 0:
            angle = 2 * np.pi * time.day_of_year.to_numpy() / 365.25
            columns += [self.lambda_doy * np.cos(angle)[:, None], self.lambda_doy * np.sin(angle)[:, None]]
        if self.static.shape[1]:
            row = pd.Index(self.static_segments).get_indexer(segment)
            if (row < 0).any():
                raise ValueError(f"segments {np.unique(segment[row < 0])[:10].tolist()} have no static attributes")
            columns.append(self.lambda_static * self.static[row])
        return np.concatenate(columns, axis=1)

    def _groups(self, time: pd.DatetimeIndex) -> np.ndarray:
        return season(time) if self.grouped_by_season else np.zeros(len(time), dtype=int)

    def map_values(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray) -> np.ndarray:
        points, groups, out = self.features(values, time, segment), self._groups(time), np.empty(len(values))
        for g in np.unique(groups):
            out[groups == g] = self.maps[g].barycentre(points[groups == g])[:, 0] * self.sigma_t
        return out

    def sample(self, source: xr.DataArray, rng: np.random.Generator) -> xr.DataArray:
        """Like :meth:`transform`, with :meth:`sample_values` instead of the barycentre (NaN stays NaN)."""
        return self._apply(source, lambda v, t, s: self.sample_values(v, t, s, rng))

    def sample_values(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        """``mode: sample``: for each value (n,) °C draw a target temperature from the entropic coupling's
        conditional k(v)/Σk (n,) °C, instead of its barycentre."""
        points, groups, out = self.features(values, time, segment), self._groups(time), np.empty(len(values))
        for g in np.unique(groups):
            weights = self.maps[g].weights(points[groups == g])
            draws = (weights.cumsum(axis=1) < rng.random((len(weights), 1))).sum(axis=1)
            out[groups == g] = self.maps[g].support[np.minimum(draws, weights.shape[1] - 1), 0] * self.sigma_t
        return out

    def state(self) -> dict[str, np.ndarray]:
        state = {"sigma_t": np.array(self.sigma_t), "lambda_doy": np.array(self.lambda_doy),
                 "lambda_static": np.array(self.lambda_static), "static_segments": self.static_segments,
                 "static": self.static, "n_maps": np.array(len(self.maps))}
        for k, m in enumerate(self.maps):
            state |= {f"support_{k}": m.support, f"log_v_{k}": m.log_v, f"eps_{k}": np.array(m.eps),
                      f"median_cost_{k}": np.array(m.median_cost)}
        return state

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> OTDebiaser:
        maps = [EntropicMap(state[f"support_{k}"], state[f"log_v_{k}"], float(state[f"eps_{k}"]),
                            float(state[f"median_cost_{k}"])) for k in range(int(state["n_maps"]))]
        return cls(maps, float(state["sigma_t"]), float(state["lambda_doy"]), float(state["lambda_static"]),
                   state["static_segments"], state["static"])


def _subsample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` rows of ``points`` drawn without replacement (all of them, in order, when fewer)."""
    return points if len(points) <= n else points[np.sort(rng.choice(len(points), n, replace=False))]
