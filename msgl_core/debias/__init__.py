"""Stage 1 of the probabilistic downscaling: debiasing the coarse source (Wan et al., NeurIPS 2023,
arXiv 2305.15618): ``none``, ``linear``, ``quantile_mapping`` or entropic ``ot`` (POT), with leakage guards.
See docs/probabilistic.md §2."""

from msgl_core.debias.base import Debiaser, IdentityDebiaser, season
from msgl_core.debias.entropic_ot import EntropicMap, OTDebiaser
from msgl_core.debias.linear import LinearDebiaser
from msgl_core.debias.options import DEBIASERS, DebiasOptions, fit_debiaser, load_debiaser, save_debiaser
from msgl_core.debias.quantile_mapping import QuantileMappingDebiaser
from msgl_core.debias.scope import FitSamples, FitScope, check_scope, fit_samples

__all__ = ["DEBIASERS", "Debiaser", "DebiasOptions", "EntropicMap", "FitSamples", "FitScope", "IdentityDebiaser",
           "LinearDebiaser", "OTDebiaser", "QuantileMappingDebiaser", "check_scope", "fit_debiaser", "fit_samples",
           "load_debiaser", "save_debiaser", "season"]
