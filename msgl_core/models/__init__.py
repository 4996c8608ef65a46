"""Models: the RGCN cell and baseline (Jia et al., SDM 2021), MSGL (Fan et al., AAAI-25) and the
RGCN pair of its downscaling baselines."""

from msgl_core.models.msgl import MSGL, MSGLOutput
from msgl_core.models.rgcn import RGCN
from msgl_core.models.rgcn_layer import RGCNLayer
from msgl_core.models.two_scale_rgcn import TwoScaleRGCN

__all__ = ["MSGL", "MSGLOutput", "RGCN", "RGCNLayer", "TwoScaleRGCN"]
