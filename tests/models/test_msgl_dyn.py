"""MSGLDyn and DynSTGCN on the tiny bundle's domain (10 reaches, 5 segments), and their registry entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from msgl_core.config import DynamicGraphConfig, RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.data.dataset import PreparedData, batch, prepare
from msgl_core.graph import RiverEdges
from msgl_core.models import MSGL, DynSTGCN, MSGLDyn
from msgl_core.registry import get_variant, variants_by_family
from msgl_core.runs import train_or_load
from tests.tiny_bundle import PERIODS

HIDDEN = 8


@pytest.fixture(scope="module")
def prepared(tiny_data: MultiscaleData) -> PreparedData:
    return prepare(tiny_data, RunConfig.from_dict({"basin": "drb", "window": 20, **PERIODS}))


def msgl_pair(prepared: PreparedData, seed: int = 3, **graph: object) -> tuple[MSGL, MSGLDyn]:
    args = (prepared.n_features, prepared.adjacency_coarse, prepared.adjacency_fine, prepared.mixed)
    torch.manual_seed(seed)
    static = MSGL(*args, hidden=HIDDEN)
    torch.manual_seed(seed)
    dynamic = MSGLDyn(*args, prepared.river_fine, prepared.positions_fine, hidden=HIDDEN,
                      graph=DynamicGraphConfig(**graph))  # type: ignore[arg-type]
    return static, dynamic


class TestMSGLDyn:
    def test_prediction_shape(self, prepared: PreparedData) -> None:
        _, model = msgl_pair(prepared)
        window = batch(prepared, prepared.windows["train"][0])
        out = model(window.x_coarse, window.x_fine)
        assert out.y_fine.shape == (len(prepared.reach_ids), window.x_fine.shape[1], 1)
        assert out.y_coarse.shape == (len(prepared.segment_ids), window.x_fine.shape[1], 1)

    def test_tasks_0_and_1_are_msgl_at_initialisation(self, prepared: PreparedData) -> None:
        static, dynamic = msgl_pair(prepared)
        for name, value in static.state_dict().items():
            assert torch.equal(dynamic.state_dict()[name], value), name  # MSGL's modules drawn first, the same way
        window = batch(prepared, prepared.windows["train"][0])
        a, b = static.eval()(window.x_coarse, window.x_fine), dynamic.eval()(window.x_coarse, window.x_fine)
        assert torch.equal(a.y_coarse, b.y_coarse) and a.y_interp is not None and b.y_interp is not None
        assert torch.equal(a.y_interp, b.y_interp) and torch.equal(a.h_mixed, b.h_mixed)
        assert not torch.equal(a.y_fine, b.y_fine)  # only task 2 reads the dynamic blocks

    def test_jk_cat_reads_every_level(self, prepared: PreparedData) -> None:
        _, model = msgl_pair(prepared, blocks=2)
        assert model.readout.projection is not None and model.readout.projection.in_features == 3 * HIDDEN
        assert [block.temporal for block in model.blocks] == [None, None]  # temporal_kernel defaults to 1 (off)
        _, mixing = msgl_pair(prepared, blocks=3, temporal_kernel=2)
        assert [b.temporal.conv.dilation[0] for b in mixing.blocks if b.temporal is not None] == [1, 2, 4]

    def test_graph_buffers_are_not_saved(self, prepared: PreparedData) -> None:
        static, dynamic = msgl_pair(prepared)
        graph = {"river_edge_index", "river_edge_type", "river_channel_km", "positions"}
        assert graph <= {name for name, _ in dynamic.named_buffers()} and not graph & set(dynamic.state_dict())
        new = set(dynamic.state_dict()) - set(static.state_dict())
        assert new and all(name.startswith(("blocks.", "readout.")) for name in new)
        assert {id(p) for p in dynamic.shared_parameters()} == {id(p) for p in dynamic.rgcn.parameters()}  # MGDA: RGCN

    def test_rejects_a_river_of_another_size(self, prepared: PreparedData) -> None:
        river = prepared.river_fine
        smaller = RiverEdges(river.edge_index[:, :0], river.edge_type[:0], river.channel_km[:0], river.nodes - 1)
        with pytest.raises(ValueError, match="must cover the"):
            MSGLDyn(prepared.n_features, prepared.adjacency_coarse, prepared.adjacency_fine, prepared.mixed,
                    smaller, prepared.positions_fine[:-1])


class TestDynSTGCN:
    def build(self, prepared: PreparedData, **graph: object) -> DynSTGCN:
        torch.manual_seed(0)
        return DynSTGCN(prepared.n_features, prepared.river_fine, prepared.positions_fine, hidden=HIDDEN,
                        graph=DynamicGraphConfig(**graph))  # type: ignore[arg-type]

    def test_shape_and_every_parameter_learns(self, prepared: PreparedData) -> None:
        model = self.build(prepared)
        x = batch(prepared, prepared.windows["train"][0]).x_fine
        out = model(x)
        assert out.shape == (len(prepared.reach_ids), x.shape[1], 1)
        (out * torch.randn_like(out)).sum().backward()
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}

    def test_causal_with_river_edges_within_its_receptive_field(self, prepared: PreparedData) -> None:
        model = self.build(prepared, edges="river", blocks=2).double().eval()
        x = batch(prepared, prepared.windows["train"][0]).x_fine.double()
        changed = x.clone()
        changed[:, 5] += 1.0
        with torch.no_grad():
            delta = (model(changed) - model(x)).abs().squeeze(-1)
        assert (delta[:, :5] == 0).all()  # no earlier day
        assert (delta[:, 5 : 5 + 9].amax(dim=0) > 0).all()  # 1 + 2 blocks x 2 kernel-3 convolutions x 2 days
        assert (delta[:, 5 + 9 :] == 0).all()

    def test_rejects_bad_input(self, prepared: PreparedData) -> None:
        model = self.build(prepared)
        with pytest.raises(ValueError, match="x must be"):
            model(torch.randn(3, 4, prepared.n_features))
        with pytest.raises(ValueError, match="positions must be"):
            DynSTGCN(prepared.n_features, prepared.river_fine, prepared.positions_fine[:-1])


def test_registry_lists_both_with_citations() -> None:
    families = variants_by_family()
    assert "msgl_dyn" in [v.name for v in families["multi-scale"]]
    assert "dyn_stgcn" in [v.name for v in families["fine-only graph baselines"]]
    for name in ("msgl_dyn", "dyn_stgcn"):
        citation = get_variant(name).citation
        assert "Dynamic Multi-Scale Graph Embeddings" in citation and "Dynamic Graph CNN" in citation
        assert "Jumping Knowledge" in citation
    assert "Multi-Scale Graph Learning for Anti-Sparse Downscaling" in get_variant("msgl_dyn").citation
    assert "Spatio-Temporal Graph Convolutional Networks" in get_variant("dyn_stgcn").citation
    assert not get_variant("dyn_stgcn").uses_coarse_obs and get_variant("msgl_dyn").uses_coarse_obs


@pytest.mark.parametrize("name", ["msgl_dyn", "dyn_stgcn"])
def test_two_epochs_lower_the_training_loss(tiny_data: MultiscaleData, tmp_path: Path, name: str) -> None:
    cfg = RunConfig.from_dict({"variant": name, "basin": "drb", "window": 20, "epochs": 2, "device": "cpu",
                               "learning_rate": 0.02, "dynamic_graph": {"blocks": 2, "k": 4}, **PERIODS})
    run = train_or_load(cfg, tiny_data, runs_dir=tmp_path, progress=False)
    losses = run.history()["train_loss"].tolist()
    assert len(losses) == 2 and losses[1] < losses[0]
    assert bool(run.predictions()["prediction"].notnull().all())
