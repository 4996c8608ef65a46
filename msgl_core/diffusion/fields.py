"""The residual prior's view of a domain: the coarsening operator, the reach graph and per reach-day inputs.

Built from a :class:`~msgl_core.data.dataset.PreparedData` (numpy arrays; the one module that turns labelled
data into arrays is :mod:`msgl_core.data.dataset`) and a base run's fine prediction. A fine field splits into
``x = R C'x + r`` with ``C'r = 0``: the segment level and the within-segment anomaly ``r`` that the prior
generates (docs/probabilistic.md §4, §6). Conditioning items (config ``ot_diffusion.conditioning``):

* ``coarse``: the debiased coarse value of the reach's segment, broadcast, standardised by the fine target
  scaler (one global pair, so it stays linear); NaN (no source) becomes 0;
* ``static``: the reach's standardised statics and its length share ``w_i`` of the segment;
* ``doy``: sin and cos of the day of year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from msgl_core.data.dataset import PreparedData
from msgl_core.graph.coarsening import CoarseningOperator
from msgl_core.graph.river import FROM_UPSTREAM


@dataclass(frozen=True)
class ResidualDomain:
    """The fine graph as the denoiser and the projection see it.

    Attributes:
        operator: C' from the crosswalk and the reach lengths.
        downstream_edges: (2, E) int64 reach → its downstream reach.
        static: (N_f, S + 1) float32, standardised reach statics and the length share w_i.
    """

    operator: CoarseningOperator
    downstream_edges: Tensor
    static: Tensor


def residual_domain(prepared: PreparedData) -> ResidualDomain:
    """The :class:`ResidualDomain` of a prepared run domain.

    Raises ValueError (from :meth:`CoarseningOperator.from_crosswalk`) for a reach length that is not > 0.
    """
    operator = CoarseningOperator.from_crosswalk(prepared.parent, prepared.reach_length_m, len(prepared.segment_ids))
    river = prepared.river_fine
    downstream = river.edge_index[:, river.edge_type == FROM_UPSTREAM]
    static = np.concatenate([prepared.x_static_fine, operator.weights.numpy()[:, None]], axis=1)
    return ResidualDomain(operator, downstream.clone(), torch.as_tensor(static, dtype=torch.float32))


def coarsen(operator: CoarseningOperator, fine: np.ndarray) -> np.ndarray:
    """``C'x``: the length-weighted segment means of fine fields. Shapes: fine (..., N_f) °C → (..., N_c) °C, float64."""
    return operator.apply(torch.as_tensor(fine, dtype=torch.float64)).numpy()


def within_segment(operator: CoarseningOperator, fine: np.ndarray) -> np.ndarray:
    """``x − R C'x``: the within-segment anomaly of fine fields.

    Shapes: fine (..., N_f) °C → (..., N_f) °C with zero length-weighted mean on every segment.
    """
    x = np.asarray(fine, dtype=np.float64)
    return x - coarsen(operator, x)[..., operator.parent.numpy()]


class Conditioning:
    """Per reach-day conditioning features c of the denoiser.

    Args:
        domain: the :class:`ResidualDomain`.
        coarse_z: (time, N_c) debiased coarse temperature, standardised (NaN allowed).
        time: (time,) dates of the record.
        items: conditioning items, a subset of :data:`msgl_core.config.CONDITIONING`.

    Shapes: ``cond(days)`` with days (D,) record positions → (D, N_f, F_c) float32; F_c = :attr:`width`.
    """

    def __init__(self, domain: ResidualDomain, coarse_z: np.ndarray, time: pd.DatetimeIndex,
                 items: tuple[str, ...]) -> None:
        self.domain, self.items = domain, items
        self.coarse = torch.as_tensor(np.nan_to_num(coarse_z, nan=0.0), dtype=torch.float32)
        angle = 2 * np.pi * time.day_of_year.to_numpy() / 365.25
        self.doy = torch.as_tensor(np.stack([np.sin(angle), np.cos(angle)], axis=-1), dtype=torch.float32)
        sizes = {"coarse": 1, "static": domain.static.shape[1], "doy": 2}
        self.width = sum(sizes[item] for item in items)

    def __call__(self, days: np.ndarray) -> Tensor:
        index = torch.as_tensor(days, dtype=torch.int64)
        n_days, n_reaches = len(index), self.domain.operator.n_reaches
        parts = []
        for item in self.items:
            if item == "coarse":
                parts.append(self.coarse[index].index_select(1, self.domain.operator.parent)[..., None])
            elif item == "static":
                parts.append(self.domain.static.expand(n_days, -1, -1))
            else:
                parts.append(self.doy[index][:, None, :].expand(-1, n_reaches, -1))
        if not parts:
            return torch.zeros(n_days, n_reaches, 0)
        return torch.cat(parts, dim=-1)
