"""``msgl_dyn`` and ``dyn_stgcn``: dynamic graph blocks (river edges plus a kNN graph recomputed every forward
pass) with a jumping-knowledge concatenation of all levels (docs/dynamic_graph.md).

``msgl_dyn`` is MSGL (same data, MGDA step, stages and prediction) whose task-2 head reads the blocks'
read-out instead of the fine RGCN states; ``dyn_stgcn`` is its single-scale ablation, trained like the
fine-only baselines (docs/methods.md §8.1) on the sparse fine observations alone. Both read the
``dynamic_graph`` config block.
"""

from __future__ import annotations

from msgl_core.config import RunConfig
from msgl_core.data.dataset import PreparedData
from msgl_core.models import DynSTGCN, MSGLDyn
from msgl_core.registry import Stage, Variant, register
from msgl_core.variants import fine_only
from msgl_core.variants import msgl as msgl_variant

DYNAMIC = ("'Dynamic Multi-Scale Graph Embeddings for Cross-Modal Representation of Physical Fields' (abstract); "
           "Wang et al., Dynamic Graph CNN for Learning on Point Clouds, ACM TOG 2019, doi:10.1145/3326362; "
           "Xu et al., Representation Learning on Graphs with Jumping Knowledge Networks, ICML 2018, arXiv:1806.03536")
STGCN_CITATION = ("Yu et al., Spatio-Temporal Graph Convolutional Networks: A Deep Learning Framework for Traffic "
                  "Forecasting, IJCAI 2018, arXiv:1709.04875")


def build_msgl_dyn(prepared: PreparedData, cfg: RunConfig) -> MSGLDyn:
    """MSGL with dynamic graph blocks on the domain's graphs, the river edges and reach positions."""
    return MSGLDyn(prepared.n_features, prepared.adjacency_coarse, prepared.adjacency_fine, prepared.mixed,
                   prepared.river_fine, prepared.positions_fine, hidden=cfg.hidden, heads=cfg.heads,
                   dropout=cfg.dropout, graph=cfg.dynamic_graph)


def build_dyn_stgcn(prepared: PreparedData, cfg: RunConfig) -> DynSTGCN:
    """The single-scale dynamic-graph stack on the domain's fine reaches."""
    return DynSTGCN(prepared.n_features, prepared.river_fine, prepared.positions_fine, hidden=cfg.hidden,
                    graph=cfg.dynamic_graph)


register(Variant(
    name="msgl_dyn",
    title="MSGL with dynamic graph blocks",
    family="multi-scale",
    description="MSGL whose fine branch adds dynamic graph blocks (river edges plus a kNN graph in feature "
                "space, recomputed every pass) and a jumping-knowledge concatenation of all levels",
    citation=f"{msgl_variant.CITATION}; {DYNAMIC}",
    uses_fine_obs=True, uses_coarse_obs=True, uses_simulation=False, build=build_msgl_dyn,
    stages=(Stage("train", msgl_variant.step),), predict_fine=msgl_variant.predict_fine,
    predict_coarse=msgl_variant.predict_coarse,
))
register(Variant(
    name="dyn_stgcn",
    title="Dynamic-graph STGCN (msgl_dyn without the coarse scale)",
    family="fine-only graph baselines",
    description="Gated temporal convolutions around dynamic graph blocks (river + kNN edges) with jumping "
                "knowledge, on the fine graph, sparse fine observations only",
    citation=f"{DYNAMIC}; {STGCN_CITATION}",
    uses_fine_obs=True, uses_coarse_obs=False, uses_simulation=False, build=build_dyn_stgcn,
    stages=(Stage("train", fine_only.step),), predict_fine=fine_only.predict_fine,
))
