"""The one place where labelled xarray data become torch tensors.

``prepare(data, cfg)`` selects the run's domain (a sub-basin or the whole DRB), builds the graph
matrices (docs/methods.md §4.1–4.2), applies the sparsity mask and the ungauged hold-out, fits the scalers on
training days (docs/methods.md §2.8) and returns :class:`PreparedData`. ``batch(prepared, window)`` then
cuts one window. Fine-scale drivers are gathered from the parent segments per window (they are
not materialised for the whole record).

Model inputs, in the same semantic order at both scales (MSGL shares one RGCN between them):
``slope, elevation_m, width_m, seg_tave_air, seginc_swrad, seg_rain, seginc_potet``; with
``reservoir_features: true`` the statics are followed by ``dam_proximity, dam_log_storage, dam_regulation``
(:func:`msgl_core.data.reservoirs.dam_features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor

from msgl_core.config import RunConfig
from msgl_core.data.basins import check_domain, subnetwork
from msgl_core.data.build import MultiscaleData
from msgl_core.data.bundle import DRIVER_UNITS
from msgl_core.data.masking import kept_count, sparsity_mask
from msgl_core.data.reservoirs import DAM_ATTRIBUTES, DAM_FEATURES, dam_features
from msgl_core.data.splits import SPLITS, Window, split_days, windows
from msgl_core.data.timeseries import AIR_TEMP, OBS, SIM, STATIC
from msgl_core.dims import PARENT_SEGMENT, REACH, SEGMENT, TIME
from msgl_core.graph import RiverEdges, mixed_matrix, river_edges, to_sparse, updown_adjacency

STATIC_FEATURES = tuple(STATIC)
DRIVERS = tuple(DRIVER_UNITS)
FEATURES = STATIC_FEATURES + DRIVERS


@dataclass(frozen=True)
class Scaler:
    """Per-feature z-scoring: ``(x - mean) / std``; ``mean``, ``std``: (features,) in input units."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardise ``x`` (..., features)."""
        return (x - self.mean) / self.std

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply`."""
        return z * self.std + self.mean


@dataclass(frozen=True)
class Batch:
    """One window of both scales, standardised; NaN marks a missing target.

    Shapes:
        x_coarse: (segments, time, features); x_fine: (reaches, time, features)
        y_coarse, sim_coarse: (segments, time); y_fine, sim_fine: (reaches, time)
        (targets NaN outside the window's scored days)
    """

    x_coarse: Tensor
    x_fine: Tensor
    y_coarse: Tensor
    y_fine: Tensor
    sim_coarse: Tensor
    sim_fine: Tensor

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``."""
        return Batch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class PreparedData:
    """A run's domain as arrays, ready to cut into :class:`Batch` windows.

    Attributes:
        segment_ids: (segments,) ``seg_id_nat``, ascending; reach_ids: (reaches,) reach ids.
        time: (time,) daily dates of the whole record.
        parent: (reaches,) position of each reach's parent segment.
        adjacency_coarse, adjacency_fine, mixed: sparse graph matrices (docs/methods.md §4.1–4.2).
        x_static_coarse: (segments, S), x_static_fine: (reaches, S), standardised statics (S = 3, or 6 with
            ``reservoir_features``: :func:`static_features`).
        drivers: (segments, time, 4) raw coarse drivers; air_correction: (reaches,) °C.
        driver_scalers: coarse and fine :class:`Scaler` of the 4 drivers.
        y_coarse: (time, segments) °C targets (hold-out removed); y_fine: (time, reaches) °C
            targets after sparsity masking and hold-out; y_fine_all: unmasked fine observations, °C.
        sim_coarse: (time, segments) PRMS-SNTemp °C.
        target_scalers: scalers of coarse and fine water temperature (fine fitted on the kept
            training observations; used to un-scale predictions).
        windows: split name → list of windows.
        holdout_reaches: (reaches,) bool, reaches of the hold-out segments.
        river_fine: typed edges between directly flow-connected reaches, with channel lengths in km
            (:func:`msgl_core.graph.river_edges`; the dynamic-graph variants).
        positions_fine: (reaches, 2) float32 Tensor, reach midpoints in km, EPSG:5070 x and y.
        reach_length_m: (reaches,) reach lengths, m (the weights of the coarsening operator C').
    """

    segment_ids: np.ndarray
    reach_ids: np.ndarray
    time: pd.DatetimeIndex
    parent: np.ndarray
    adjacency_coarse: Tensor
    adjacency_fine: Tensor
    mixed: Tensor
    x_static_coarse: np.ndarray
    x_static_fine: np.ndarray
    drivers: np.ndarray
    air_correction: np.ndarray
    driver_scalers: dict[str, Scaler]
    y_coarse: np.ndarray
    y_fine: np.ndarray
    y_fine_all: np.ndarray
    sim_coarse: np.ndarray
    target_scalers: dict[str, Scaler]
    windows: dict[str, list[Window]]
    holdout_reaches: np.ndarray
    river_fine: RiverEdges
    positions_fine: Tensor
    reach_length_m: np.ndarray
    split_days: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_features(self) -> int:
        """Number of input features F: the statics, then the drivers."""
        return self.x_static_fine.shape[1] + len(DRIVERS)


def prepare(data: MultiscaleData, cfg: RunConfig) -> PreparedData:
    """Arrays of ``cfg.basin`` for training, evaluation and prediction.

    Raises ValueError for an unknown basin, a hold-out or buffer segment outside the basin, or a training
    period without fine observations after masking.
    """
    check_domain(data.network, cfg.basin, cfg.holdout_segments + cfg.buffer_segments)
    net = subnetwork(data.network, cfg.basin)
    segment_ids = net.segments.index.to_numpy()
    reach_ids = net.reaches.index.to_numpy()
    coarse = data.coarse.sel({SEGMENT: segment_ids})
    fine = data.fine.sel({REACH: reach_ids})
    time = pd.DatetimeIndex(coarse[TIME].values)
    days = split_days(time, cfg)
    parent = net.reach_parent_index

    # Graph matrices.
    reach_updown = net.reach_updown()
    outlets = pd.Index(reach_ids).get_indexer(net.segments["outlet_reach"])
    adjacency_coarse = to_sparse(updown_adjacency(net.segment_updown))
    adjacency_fine = to_sparse(updown_adjacency(reach_updown))
    mixed = to_sparse(mixed_matrix(reach_updown[:, outlets], parent))
    river_fine = river_edges(net.reach_to_index, net.reaches["length_m"].to_numpy())

    # Targets: hold-out and buffer withheld, then the nested sparsity mask over training + validation days.
    holdout_reaches = np.isin(segment_ids, cfg.holdout_segments)[parent]
    withheld_segments = np.isin(segment_ids, cfg.holdout_segments + cfg.buffer_segments)
    fit_days = days["train"] | days["val"]
    y_coarse = coarse[OBS].values.astype(np.float64)
    y_coarse[np.ix_(fit_days, withheld_segments)] = np.nan
    y_fine_all = fine[OBS].values.astype(np.float64)
    y_fine = y_fine_all.copy()
    y_fine[np.ix_(fit_days, withheld_segments[parent])] = np.nan
    keep = sparsity_mask(~np.isnan(y_fine), fit_days, cfg.sparsity, cfg.mask_seed)
    y_fine[~keep] = np.nan
    train_fine = y_fine[days["train"]]
    if not np.isfinite(train_fine).any():
        raise ValueError(f"basin {cfg.basin!r} has no fine observations in the training periods at "
                         f"sparsity {cfg.sparsity}")
    target_scalers = {
        "coarse": _scalar_scaler(y_coarse[days["train"]], fallback=train_fine),
        "fine": _scalar_scaler(train_fine),
    }

    # Inputs: statics and drivers, scaled with training-day statistics per scale.
    drivers = np.stack([coarse[name].values for name in DRIVERS], axis=-1).transpose(1, 0, 2)
    air_correction = fine["air_temp_correction_c"].values.astype(np.float64)
    driver_scalers = _driver_scalers(drivers[:, days["train"]], parent, air_correction)
    return PreparedData(
        segment_ids=segment_ids, reach_ids=reach_ids, time=time, parent=parent,
        adjacency_coarse=adjacency_coarse, adjacency_fine=adjacency_fine, mixed=mixed,
        x_static_coarse=_standardise(static_features(coarse, cfg.reservoir_features)),
        x_static_fine=_standardise(static_features(fine, cfg.reservoir_features)),
        drivers=drivers.astype(np.float32), air_correction=air_correction, driver_scalers=driver_scalers,
        y_coarse=y_coarse, y_fine=y_fine, y_fine_all=y_fine_all,
        sim_coarse=coarse[SIM].values.astype(np.float64), target_scalers=target_scalers,
        windows={name: windows(time, getattr(cfg, f"{name}_periods"), cfg.window) for name in SPLITS},
        holdout_reaches=holdout_reaches, river_fine=river_fine,
        positions_fine=torch.as_tensor(net.reach_midpoints_km(), dtype=torch.float32),
        reach_length_m=net.reaches["length_m"].to_numpy(dtype=np.float64), split_days=days,
    )


def static_features(ds: xr.Dataset, reservoir_features: bool) -> np.ndarray:
    """(nodes, S) raw statics of one scale's dataset: :data:`STATIC_FEATURES` (S = 3), then, with
    ``reservoir_features``, :data:`~msgl_core.data.reservoirs.DAM_FEATURES` (S = 6).

    Raises ValueError naming the variable if the processed dataset has no dam attributes (an old cache).
    """
    columns = [ds[name].values.astype(np.float64) for name in STATIC_FEATURES]
    if reservoir_features:
        missing = [name for name in DAM_ATTRIBUTES if name not in ds]
        if missing:
            raise ValueError(f"the processed dataset has no {missing[0]!r} (built before dam attributes): "
                             "rebuild it with `msgl data build --rebuild`")
        dams = dam_features(*(ds[name].values.astype(np.float64) for name in DAM_ATTRIBUTES))
        columns += [dams[:, k] for k in range(len(DAM_FEATURES))]
    return np.stack(columns, axis=-1)


@dataclass(frozen=True)
class ObservationCounts:
    """Observed fine reach-days of a run's domain on its fit days (training and validation periods).

    Attributes:
        observed: all of them.
        holdout: of which on reaches of the hold-out and buffer segments (withheld from the model).
        eligible: ``observed - holdout``: those the sparsity mask draws from.
        kept: of which the mask keeps (:func:`~msgl_core.data.masking.kept_count`): exactly the number of
            fine targets :func:`prepare` gives the model on fit days.
        train_eligible: eligible ones in the training periods.
    """

    observed: int
    holdout: int
    eligible: int
    kept: int
    train_eligible: int


def observation_counts(data: MultiscaleData, cfg: RunConfig) -> ObservationCounts:
    """Count ``cfg``'s fine reach-days as :func:`prepare` uses them, without preparing (fast: a cached
    list of the dataset's observed reach-days).

    Raises ValueError for an unknown basin or hold-out or buffer segments outside it.
    """
    withheld = cfg.holdout_segments + cfg.buffer_segments
    segments = check_domain(data.network, cfg.basin, withheld)
    day, reach = _observed_reach_days(data)
    parents = data.fine[PARENT_SEGMENT].values[reach]
    inside = np.isin(parents, segments)
    held = np.isin(parents, withheld)
    days = split_days(pd.DatetimeIndex(data.fine[TIME].values), cfg)
    fit = (days["train"] | days["val"])[day] & inside
    eligible = int((fit & ~held).sum())
    return ObservationCounts(observed=int(fit.sum()), holdout=int((fit & held).sum()), eligible=eligible,
                             kept=kept_count(eligible, cfg.sparsity),
                             train_eligible=int((days["train"][day] & inside & ~held).sum()))


_OBSERVED: dict[str, tuple[np.ndarray, ...]] = {}


def _observed_reach_days(data: MultiscaleData) -> tuple[np.ndarray, ...]:
    """(day index, reach index) of every observed fine reach-day, cached per processed dataset."""
    key = str(data.path)
    if key not in _OBSERVED:
        _OBSERVED[key] = np.nonzero(np.isfinite(data.fine[OBS].values))
    return _OBSERVED[key]


def batch(prepared: PreparedData, window: Window) -> Batch:
    """Cut ``window`` out of ``prepared``: standardised inputs and targets as float32 tensors.

    Targets are NaN on the window's unscored days (see :class:`msgl_core.data.splits.Window`).
    """
    days = slice(window.start, window.stop)
    raw = prepared.drivers[:, days]
    fine_raw = raw[prepared.parent].astype(np.float64)
    fine_raw[..., DRIVERS.index(AIR_TEMP)] += prepared.air_correction[:, None]
    x_coarse = _with_static(prepared.x_static_coarse, prepared.driver_scalers["coarse"].apply(raw))
    x_fine = _with_static(prepared.x_static_fine, prepared.driver_scalers["fine"].apply(fine_raw))
    scored = np.arange(window.start, window.stop) >= window.score_from

    def target(values: np.ndarray, scaler: Scaler) -> Tensor:
        z = scaler.apply(values[days]).T.copy()
        z[:, ~scored] = np.nan
        return torch.from_numpy(z.astype(np.float32))

    fine_sim = prepared.sim_coarse[:, prepared.parent]
    return Batch(
        x_coarse=torch.from_numpy(x_coarse), x_fine=torch.from_numpy(x_fine),
        y_coarse=target(prepared.y_coarse, prepared.target_scalers["coarse"]),
        y_fine=target(prepared.y_fine, prepared.target_scalers["fine"]),
        sim_coarse=target(prepared.sim_coarse, prepared.target_scalers["coarse"]),
        sim_fine=target(fine_sim, prepared.target_scalers["fine"]),
    )


def _with_static(static: np.ndarray, dynamic: np.ndarray) -> np.ndarray:
    """(nodes, S) statics broadcast over (nodes, time, 4) drivers → (nodes, time, S + 4) float32."""
    tiled = np.broadcast_to(static[:, None, :], dynamic.shape[:2] + (static.shape[1],))
    return np.concatenate([tiled, dynamic], axis=-1).astype(np.float32)


def _standardise(x: np.ndarray) -> np.ndarray:
    """Column-wise z-score over nodes (ddof 0; constant columns become 0)."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _scalar_scaler(values: np.ndarray, fallback: np.ndarray | None = None) -> Scaler:
    """One mean/std pair over all finite ``values`` (over ``fallback``'s if ``values`` has none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 and fallback is not None:
        finite = fallback[np.isfinite(fallback)]
    std = finite.std() if finite.size > 1 else 1.0
    return Scaler(np.array(finite.mean()), np.array(std if std > 0 else 1.0))


def _driver_scalers(train_drivers: np.ndarray, parent: np.ndarray, air_correction: np.ndarray) -> dict[str, Scaler]:
    """Driver scalers per scale over training days (docs/methods.md §2.8); the fine one without materialising
    (reaches, time): per-segment moments gathered by parent, with the air-temperature shift."""
    x = train_drivers.astype(np.float64)
    seg_mean, seg_sq = x.mean(axis=1), (x**2).mean(axis=1)
    coarse = Scaler(seg_mean.mean(axis=0), np.sqrt(seg_sq.mean(axis=0) - seg_mean.mean(axis=0) ** 2) + 1e-10)
    shift = np.zeros((len(parent), x.shape[-1]))
    shift[:, DRIVERS.index(AIR_TEMP)] = air_correction
    fine_mean = seg_mean[parent] + shift
    fine_sq = seg_sq[parent] + 2 * shift * seg_mean[parent] + shift**2
    mean = fine_mean.mean(axis=0)
    fine = Scaler(mean, np.sqrt(np.maximum(fine_sq.mean(axis=0) - mean**2, 0)) + 1e-10)
    return {"coarse": coarse, "fine": fine}
