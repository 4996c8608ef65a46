"""The coarsening operator C' (fine reaches → coarse segments) and its closed-form projections.

C' is the length-weighted mean of a segment's reaches: ``C'[j, i] = w_i = ℓ_i / Σ_{k∈S_j} ℓ_k`` for
reach i on segment j, 0 elsewhere, so every row sums to 1 and the row supports are disjoint (each reach
lies on one segment). This is the known linear down-sampling of Wan et al., "Debias Coarsely, Sample
Conditionally: Statistical Downscaling through Optimal Transport and Probabilistic Diffusion Models",
NeurIPS 2023, arXiv 2305.15618, written for a river crosswalk (docs/probabilistic.md §1).

Because the supports are disjoint, ``C'C'ᵀ = diag(q)`` with ``q_j = Σ_{i∈S_j} w_i²``, so the
pseudo-inverse is ``(C')† = C'ᵀ diag(1/q)`` and every projection onto ``{x : C'x = y}`` is a per-segment
correction computed with one scatter-add (no SVD). All functions are pure torch, batched over leading
dims, and differentiable.

The constraint survives standardisation only with one global scalar (``C'1 = 1``):
:class:`GlobalScaler` is the only scaler the probabilistic variant accepts, and it cannot hold per-reach
statistics.

Example:
    >>> import torch
    >>> op = CoarseningOperator.from_crosswalk([0, 1, 1], [1.0, 1.0, 3.0], n_segments=2)
    >>> op.apply(torch.tensor([5.0, 4.0, 8.0]))
    tensor([5., 7.])
    >>> op.project(torch.tensor([5.0, 4.0, 8.0]), torch.tensor([6.0, 6.0]), metric="length")
    tensor([6., 3., 7.])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

#: Metric of a projection: ``euclidean`` minimises Σ (x_i − z_i)² (the paper's form); ``length``
#: minimises Σ ℓ_i (x_i − z_i)², a uniform shift of each segment's reaches for any reach lengths.
Metric = Literal["euclidean", "length"]
METRICS: tuple[str, ...] = ("euclidean", "length")


def segment_sum(values: Tensor, parent: Tensor, n_segments: int) -> Tensor:
    """Sum of ``values`` over each segment's reaches.

    Shapes:
        values: (..., reaches); parent: (reaches,) int64 segment position of each reach.
        returns: (..., n_segments), same dtype as ``values``.
    """
    out = values.new_zeros(values.shape[:-1] + (n_segments,))
    return out.index_add(-1, parent, values)


@dataclass(frozen=True)
class CoarseningOperator:
    """C' stored as a parent index and per-reach weights: the sparse (N_c, N_f) matrix with disjoint rows,
    applied with one scatter-add.

    Attributes:
        parent: (N_f,) int64, position of each reach's segment in [0, N_c).
        weights: (N_f,) float64, ``w_i = ℓ_i / L_j``; they sum to 1 over each segment.
        n_segments: N_c.

    Build it with :meth:`from_crosswalk`. Methods accept any floating dtype and cast the weights to it.
    """

    parent: Tensor
    weights: Tensor
    n_segments: int

    @classmethod
    def from_crosswalk(cls, parent: ArrayLike, lengths: ArrayLike, n_segments: int) -> CoarseningOperator:
        """C' from the crosswalk (each reach's parent segment position) and the reach lengths.

        Args:
            parent: (N_f,) int, segment position of each reach, in [0, n_segments).
            lengths: (N_f,) reach lengths ℓ_i (any unit, m in the dataset), finite and > 0.
            n_segments: N_c.

        Raises ValueError if the shapes differ, a parent is out of range or not an integer, a length is
        not finite and positive, or a segment has no reach (its row of C' would be empty).
        """
        parent_array = np.asarray(parent)
        length_array = np.asarray(lengths, dtype=np.float64)
        if parent_array.ndim != 1 or length_array.shape != parent_array.shape:
            raise ValueError(f"parent and lengths must be 1-D of the same length, got shapes {parent_array.shape} "
                             f"and {length_array.shape}")
        if parent_array.size and not np.issubdtype(parent_array.dtype, np.integer):
            raise ValueError(f"parent must hold integer segment positions, got dtype {parent_array.dtype}")
        if parent_array.size and (parent_array.min() < 0 or parent_array.max() >= n_segments):
            raise ValueError(f"parent positions must lie in [0, {n_segments})")
        if not (np.isfinite(length_array) & (length_array > 0)).all():
            bad = np.flatnonzero(~(np.isfinite(length_array) & (length_array > 0)))
            raise ValueError(f"reach lengths must be finite and > 0; reaches at positions {bad[:10].tolist()} are not")
        counts = np.bincount(parent_array.astype(np.int64), minlength=n_segments)
        if (counts == 0).any():
            raise ValueError(f"segments at positions {np.flatnonzero(counts == 0)[:10].tolist()} have no reach")
        totals = np.bincount(parent_array, weights=length_array, minlength=n_segments)
        weights = length_array / totals[parent_array]
        return cls(torch.as_tensor(parent_array, dtype=torch.int64), torch.as_tensor(weights), int(n_segments))

    @property
    def n_reaches(self) -> int:
        """N_f."""
        return int(self.parent.numel())

    def to(self, device: torch.device | str) -> CoarseningOperator:
        """The same operator with its tensors on ``device``."""
        return CoarseningOperator(self.parent.to(device), self.weights.to(device), self.n_segments)

    def _w(self, x: Tensor) -> Tensor:
        return self.weights.to(device=x.device, dtype=x.dtype)

    def q(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """(N_c,) ``q_j = Σ_{i∈S_j} w_i²``, the diagonal of C'C'ᵀ."""
        w = self.weights.to(dtype)
        return segment_sum(w * w, self.parent.to(w.device), self.n_segments)

    def apply(self, x: Tensor) -> Tensor:
        """C'x: the length-weighted segment means. Shapes: x (..., N_f) → (..., N_c), same units (°C)."""
        return segment_sum(self._w(x) * x, self.parent.to(x.device), self.n_segments)

    def broadcast(self, y: Tensor) -> Tensor:
        """R y: each reach takes its segment's value (C'R = I). Shapes: y (..., N_c) → (..., N_f)."""
        return y.index_select(-1, self.parent.to(y.device))

    def to_dense(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """C' as a dense (N_c, N_f) matrix (for tests and small graphs)."""
        dense = torch.zeros(self.n_segments, self.n_reaches, dtype=dtype)
        dense[self.parent, torch.arange(self.n_reaches)] = self.weights.to(dtype)
        return dense

    def pinv(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The closed-form pseudo-inverse (C')† = C'ᵀ diag(1/q), dense (N_f, N_c)."""
        return self.to_dense(dtype).T / self.q(dtype)

    def _gain(self, x: Tensor, metric: Metric, tau: float) -> Tensor:
        """(N_f,) per-reach gain g_i with ``P(z)_i = z_i − g_i ((C'z)_j − y_j)``.

        With metric weights m_i (1 for ``euclidean``, w_i for ``length``) the minimiser of Σ m_i (x_i − z_i)²
        under the Gaussian observation ``y = C'x + N(0, τ²)`` is ``g_i = (w_i/m_i) / (Σ_{k∈S_j} w_k²/m_k + τ²)``;
        τ = 0 is the hard projection.
        """
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        if not (math.isfinite(tau) and tau >= 0):
            raise ValueError(f"tau must be a finite number >= 0 (°C), got {tau}")
        w = self._w(x)
        ratio = w if metric == "euclidean" else torch.ones_like(w)  # w_i / m_i
        denominator = segment_sum(w * ratio, self.parent.to(x.device), self.n_segments) + tau**2
        return ratio / denominator.index_select(0, self.parent.to(x.device))

    def project(self, z: Tensor, y: Tensor, metric: Metric = "euclidean", tau: float = 0.0) -> Tensor:
        """Projection of ``z`` onto ``{x : C'x = y}`` (hard, τ = 0) or its Gaussian soft version (τ > 0).

        ``P(z)_i = z_i − g_i ((C'z)_j − y_j)`` for reach i on segment j, with the gain g of the metric:
        ``euclidean`` (``g_i = w_i/(q_j + τ²)``; a uniform shift when a segment's lengths are equal) or
        ``length`` (``g_i = 1/(1 + τ²)``: a uniform shift for any lengths). A single-reach segment is set
        to ``y_j`` exactly by the hard projection. τ → ∞ leaves ``z`` unchanged.

        Shapes:
            z: (..., N_f); y: (..., N_c), broadcastable against z's leading dims; same units (°C or
            standardised with one global scalar). Returns (..., N_f).

        Raises ValueError for an unknown metric or a negative or non-finite ``tau``.
        """
        misfit = self.apply(z) - y
        return z - self._gain(z, metric, tau) * self.broadcast(misfit)

    def project_residual(self, r: Tensor, metric: Metric = "euclidean") -> Tensor:
        """P₀(r): the hard projection onto the null space ``{r : C'r = 0}``; with the Euclidean metric it is
        ``r − (C')†C'r``, the orthogonal projection. Shapes: r (..., N_f) → (..., N_f)."""
        return r - self._gain(r, metric, 0.0) * self.broadcast(self.apply(r))


@dataclass(frozen=True)
class GlobalScaler:
    """One global mean and std (°C) for every reach: the only standardisation that keeps C'x = y.

    Since ``C'1 = 1``, ``C'((x − μ)/σ) = (C'x − μ)/σ``; per-reach statistics would break this, so they
    cannot be stored here.

    Attributes:
        mean: μ, °C. std: σ > 0, °C.

    Raises ValueError if ``mean`` or ``std`` is not one finite number, or ``std`` <= 0.
    """

    mean: float
    std: float

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = np.asarray(getattr(self, name))
            if value.size != 1:
                raise ValueError(f"GlobalScaler.{name} must be one number for every reach, got shape {value.shape}: "
                                 "a per-reach scaler breaks the coarsening constraint C'x = y")
            if not np.isfinite(value).all():
                raise ValueError(f"GlobalScaler.{name} must be finite, got {value.item()}")
            object.__setattr__(self, name, float(value.item()))
        if self.std <= 0:
            raise ValueError(f"GlobalScaler.std must be > 0, got {self.std}")

    def apply(self, x: Tensor) -> Tensor:
        """(x − μ)/σ, any shape."""
        return (x - self.mean) / self.std

    def invert(self, z: Tensor) -> Tensor:
        """z σ + μ, any shape (°C)."""
        return z * self.std + self.mean
