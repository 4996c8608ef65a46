"""Models: the RGCN cell and baseline (Jia et al., SDM 2021) and MSGL (Fan et al., AAAI-25)."""

from msgl_core.models.msgl import MSGL, MSGLOutput
from msgl_core.models.rgcn import RGCN
from msgl_core.models.rgcn_layer import RGCNLayer

__all__ = ["MSGL", "MSGLOutput", "RGCN", "RGCNLayer"]
