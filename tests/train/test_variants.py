"""Every registered variant through the one training path, and what each multi-stage variant trains on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.data.dataset import Batch, prepare
from msgl_core.data.dataset import batch as cut_window
from msgl_core.registry import FAMILIES, Stage, Variant, get_variant, variant_names, variants_by_family
from msgl_core.runs import train_or_load
from msgl_core.train.loop import fit
from msgl_core.variants.msgl import pretrain_targets
from tests.tiny_bundle import N_REACHES, PERIODS, TIME

PAPER_VARIANTS = {"msgl", "async_msgl", "rgcn_fine", "dcrnn", "gwnet", "stgcn", "astgcn", "stgode",
                  "remap", "direct_upscaling", "progressive_upscaling"}


def _cfg(**overrides: object) -> RunConfig:
    values = {"basin": "drb", "window": 20, "epochs": 2, "device": "cpu", "learning_rate": 0.02, **PERIODS}
    return RunConfig.from_dict({**values, **overrides})


def test_variants_are_grouped_by_family_with_a_title() -> None:
    groups = variants_by_family()
    assert list(groups) == list(FAMILIES)
    assert [v.name for v in groups["multi-scale"]] == ["msgl", "async_msgl", "msgl_dyn"]
    assert {v.name for v in groups["downscaling baselines"]} == {"remap", "direct_upscaling", "progressive_upscaling"}
    assert sum(len(g) for g in groups.values()) == len(variant_names())
    assert all(v.title and v.title != v.name for g in groups.values() for v in g if v.name in ("msgl", "remap"))
    base = get_variant("rgcn_fine")
    with pytest.raises(ValueError, match="family 'other' is not one of"):
        Variant("x", "d", "c", "X", "other", True, False, False, base.build, base.stages, base.predict_fine)  # type: ignore[arg-type]


def test_the_registry_holds_the_paper_variants() -> None:
    assert set(variant_names()) >= PAPER_VARIANTS
    assert [s.name for s in get_variant("async_msgl").stages] == ["pretrain", "finetune"]
    assert [s.name for s in get_variant("progressive_upscaling").stages] == ["coarse", "pseudo", "finetune"]
    assert not get_variant("remap").uses_fine_obs and get_variant("async_msgl").uses_simulation


@pytest.mark.parametrize("name", sorted(PAPER_VARIANTS))
def test_every_variant_trains_two_epochs_and_predicts(tiny_data: MultiscaleData, tmp_path: Path, name: str) -> None:
    variant = get_variant(name)
    run = train_or_load(_cfg(variant=name), tiny_data, runs_dir=tmp_path, progress=False)
    history = run.history()
    assert len(history) == 2 * len(variant.stages)
    assert list(history["stage"]) == [s.name for s in variant.stages for _ in range(2)]
    assert list(history["epoch"]) == list(range(1, len(history) + 1))
    predictions = run.predictions()
    assert predictions["prediction"].shape == (len(TIME), N_REACHES)
    assert bool(predictions["prediction"].notnull().all())
    assert np.isfinite(run.test_rmse) and run.test_rmse > 0


def test_remap_gives_every_reach_its_parent_segment_prediction(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    run = train_or_load(_cfg(variant="remap"), tiny_data, runs_dir=tmp_path, progress=False)
    ds = run.predictions()
    coarse = ds["prediction_coarse"].sel(segment=ds["parent_segment"].values.astype(int))
    np.testing.assert_allclose(ds["prediction"].values, coarse.values, atol=0.011)  # int16 hundredths of °C


def test_remap_does_not_depend_on_sparsity(tiny_data: MultiscaleData) -> None:
    variant = get_variant("remap")
    states = [fit(_cfg(variant="remap", sparsity=rho), prepare(tiny_data, _cfg(variant="remap", sparsity=rho)),
                  variant, torch.device("cpu"), progress=False).state_dict for rho in (1.0, 0.3)]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_direct_upscaling_fine_tunes_the_weights_it_pretrained(tiny_data: MultiscaleData) -> None:
    cfg = _cfg(variant="direct_upscaling", epochs=1)
    prepared, variant = prepare(tiny_data, cfg), get_variant("direct_upscaling")
    pretrain_only = dataclasses.replace(variant, stages=variant.stages[:1])
    pretrained = fit(cfg, prepared, pretrain_only, torch.device("cpu"), progress=False).state_dict
    both = fit(cfg, prepared, variant, torch.device("cpu"), progress=False).state_dict
    assert pretrained.keys() == both.keys()
    assert not all(torch.equal(pretrained[k], both[k]) for k in both)  # stage 2 moved the stage-1 weights


def test_async_stage_one_touches_no_validation_or_test_date(tiny_data: MultiscaleData) -> None:
    """Poison every input and target on validation and test days; stage 1 must never see the poison."""
    cfg = _cfg(variant="async_msgl", epochs=1)
    prepared = prepare(tiny_data, cfg)
    held_out = prepared.split_days["val"] | prepared.split_days["test"]
    assert held_out.any() and (~held_out).any()
    poison = 1.0e6
    prepared.drivers[:, held_out] = poison
    for values in (prepared.y_coarse, prepared.y_fine, prepared.sim_coarse):
        values[held_out] = poison
    seen: list[Batch] = []
    variant = get_variant("async_msgl")
    stage = variant.stages[0]

    def recording(model: torch.nn.Module, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig):
        seen.append(batch)
        return stage.step(model, batch, optimizer, cfg)

    stage_one = dataclasses.replace(variant, stages=(Stage(stage.name, recording, stage.select),))
    result = fit(cfg, prepared, stage_one, torch.device("cpu"), progress=False)
    assert len(seen) == len(prepared.windows["train"]) > 0
    for batch in seen:
        for tensor in (batch.x_coarse, batch.x_fine, batch.y_coarse, batch.y_fine, batch.sim_coarse, batch.sim_fine):
            finite = tensor[torch.isfinite(tensor)]
            assert float(finite.abs().max()) < 1.0e3
    assert all(torch.isfinite(v).all() for v in result.state_dict.values())


def test_async_pretraining_uses_simulation_where_observations_are_missing(tiny_data: MultiscaleData) -> None:
    cfg = _cfg(variant="async_msgl")
    prepared = prepare(tiny_data, cfg)
    b = cut_window(prepared, prepared.windows["train"][0])
    targets = pretrain_targets(b)
    observed = ~torch.isnan(b.y_coarse)
    assert observed.any() and (~observed).any()
    assert torch.equal(targets.y_coarse[observed], b.y_coarse[observed])
    assert torch.equal(targets.y_coarse[~observed], b.sim_coarse[~observed])
    assert torch.equal(targets.y_fine, b.sim_fine) and not torch.isnan(targets.y_fine).all()
