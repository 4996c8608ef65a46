"""The strict ``dynamic_graph`` config block and its place in the run identity."""

from __future__ import annotations

import hashlib
import json

import pytest

from msgl_core.config import RUN_FORMAT, DynamicGraphConfig, RunConfig


def test_defaults_and_round_trip() -> None:
    cfg = RunConfig.from_dict({"variant": "msgl_dyn", "dynamic_graph": {"k": 4, "edges": "river", "jk": "max"}})
    assert cfg.dynamic_graph == DynamicGraphConfig(k=4, edges="river", jk="max")
    assert RunConfig().dynamic_graph == DynamicGraphConfig(blocks=3, k=8, edges="union", jk="cat", knn_features="fine",
                                                           temporal_kernel=None, dropout=0.1)
    assert RunConfig.from_yaml_text(cfg.to_yaml()) == cfg
    assert cfg.with_overrides(epochs=3).dynamic_graph == cfg.dynamic_graph


@pytest.mark.parametrize(("values", "message"), [
    ({"kk": 3}, "unknown dynamic_graph key 'kk'; did you mean 'k'"),
    ({"per_day": True}, "unknown dynamic_graph key 'per_day'"),
    ({"edges": "all"}, "dynamic_graph.edges must be one of union, river, knn"),
    ({"jk": "lstm"}, "dynamic_graph.jk must be one of cat, max, none"),
    ({"knn_features": "fine+coarse"}, "dynamic_graph.knn_features must be one of fine"),
    ({"k": 0}, r"dynamic_graph.k must be >= 1"),
    ({"blocks": 2.5}, "dynamic_graph.blocks must be an integer"),
    ({"temporal_kernel": 0}, "dynamic_graph.temporal_kernel must be >= 1"),
    ({"init_length_km": -1.0}, "dynamic_graph.init_length_km must be > 0 km"),
    ({"dropout": 1.0}, r"dynamic_graph.dropout must be in \[0, 1\)"),
])  # fmt: skip
def test_rejects_unknown_keys_and_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict({"dynamic_graph": values})


def test_rejects_a_block_that_is_not_a_mapping() -> None:
    with pytest.raises(ValueError, match="dynamic_graph must be a mapping"):
        RunConfig.from_dict({"dynamic_graph": 3})


def test_in_the_identity_only_of_the_variants_that_read_it() -> None:
    changed = {"dynamic_graph": {"k": 4}}
    for name in ("msgl", "rgcn_fine", "stgcn"):
        base = RunConfig(variant=name)
        assert base.with_overrides(**changed).key("data") == base.key("data")
        # The key hashes exactly what it hashed before the block existed, so cached runs keep their names.
        before = {k: v for k, v in base.to_dict().items()
                  if k not in ("device", "threads", "dynamic_graph", "ot_diffusion", "buffer_segments",
                                   "reservoir_features")}
        text = json.dumps({"config": before, "data": "data", "run_format": RUN_FORMAT}, sort_keys=True)
        assert base.key("data") == hashlib.sha256(text.encode()).hexdigest()[:16]
    for name in ("msgl_dyn", "dyn_stgcn"):
        base = RunConfig(variant=name)
        assert base.with_overrides(**changed).key("data") != base.key("data")
