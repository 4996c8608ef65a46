"""Models: the RGCN cell and baseline (Jia et al., SDM 2021), MSGL (Fan et al., AAAI-25) and its dynamic-graph
variant, the RGCN pair of its downscaling baselines, the fine-only spatio-temporal graph baselines, and the graph
denoiser of the probabilistic downscaling (Wan et al., NeurIPS 2023, arXiv 2305.15618) (one model per file)."""

from msgl_core.models.astgcn import ASTGCN
from msgl_core.models.dcrnn import DCRNN
from msgl_core.models.dyn_stgcn import DynSTGCN
from msgl_core.models.graph_denoiser import GraphDenoiser
from msgl_core.models.gwnet import GraphWaveNet
from msgl_core.models.msgl import MSGL, MSGLOutput
from msgl_core.models.msgl_dyn import MSGLDyn
from msgl_core.models.rgcn import RGCN
from msgl_core.models.rgcn_layer import RGCNLayer
from msgl_core.models.stgcn import STGCN
from msgl_core.models.stgode import STGODE
from msgl_core.models.two_scale_rgcn import TwoScaleRGCN

__all__ = ["ASTGCN", "DCRNN", "DynSTGCN", "GraphDenoiser", "GraphWaveNet", "MSGL", "MSGLDyn", "MSGLOutput", "RGCN",
           "RGCNLayer", "STGCN", "STGODE", "TwoScaleRGCN"]
