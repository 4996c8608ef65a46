"""Probabilistic downscaling: ``ot_diffusion``, "Debias Coarsely, Sample Conditionally" (Wan et al., NeurIPS 2023,
arXiv 2305.15618) on our river graphs (docs/probabilistic.md), and its three baselines without diffusion,
``ot_broadcast`` (the same debiased coarse level, broadcast), ``msgl_gaussian`` (the base run plus seasonal
Gaussian noise fitted on validation residuals) and ``msgl_seeds`` (the base runs of M consecutive seeds as the M
members: training stochasticity as the only spread).

They do not train through the loop: :func:`msgl_core.runs.train_or_load` hands them to
:mod:`msgl_core.ensemble_runs`, which trains or loads the base run (``ot_diffusion.base_variant``), then, for
``ot_diffusion``, debiases its coarse level (Stage 1), trains the residual diffusion prior (Stage 2) and samples
calibrated members that meet the coarsening constraint exactly (Stage 3).
"""

from __future__ import annotations

from typing import NoReturn

from msgl_core.registry import Ensemble, Variant, register

CITATION = ("Wan et al., Debias Coarsely, Sample Conditionally: Statistical Downscaling through Optimal Transport "
            "and Probabilistic Diffusion Models, NeurIPS 2023, arXiv:2305.15618")


def _no_network(*_: object) -> NoReturn:
    raise ValueError("an ensemble variant has no single network: it is trained by msgl_core.ensemble_runs and holds "
                     "an ensemble (see docs/probabilistic.md §6)")


def _ensemble(name: str, title: str, description: str, kind: Ensemble, coarse_obs: bool) -> Variant:
    return register(Variant(
        name=name, title=title, description=description, citation=CITATION, family="probabilistic downscaling",
        uses_fine_obs=True, uses_coarse_obs=coarse_obs, uses_simulation=False, build=_no_network, stages=(),
        predict_fine=_no_network, ensemble=kind))


_ensemble("ot_diffusion", "OT debiasing + conditional graph diffusion (ensembles)",
          "ensemble around a cached msgl run: OT-debiased coarse level, diffusion within segments", "diffusion", True)
_ensemble("ot_broadcast", "OT debiasing, broadcast (ensemble baseline, no diffusion)",
          "the OT-debiased coarse level with seasonal coarse noise, broadcast to the reaches", "broadcast", True)
_ensemble("msgl_gaussian", "MSGL + Gaussian noise (ensemble baseline)",
          "a cached msgl run plus seasonal Gaussian noise fitted on validation residuals", "gaussian_noise", False)
_ensemble("msgl_seeds", "MSGL seed ensemble (ensemble baseline)",
          "the msgl runs of seeds s, s+1, …, s+M−1 (trained or loaded) as the M members; ask for a few (--members 3)",
          "seeds", False)
