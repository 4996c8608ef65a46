"""The ``ot_diffusion`` run on the tiny bundle: config, base run, files, ensemble invariants, reload, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from typer.testing import CliRunner

from msgl_core.cli import app
from msgl_core.config import DEBIAS_METHODS, OTDiffusionConfig, RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.data.dataset import prepare
from msgl_core.debias.options import DEBIASERS
from msgl_core.diffusion.fields import residual_domain, within_segment
from msgl_core.ensemble_runs import CALIBRATION, DEBIAS, DENOISER, MEMBERS, base_config, check_base, read_members
from msgl_core.runs import is_complete, load_model, load_run, run_path, train_or_load, write_predictions
from tests.tiny_bundle import PERIODS

FAST = {"members": 4, "steps": 4, "pretrain_epochs": 2, "finetune_epochs": 1, "batch_days": 8,
        "debias": {"n_support": 50}}


def _cfg(**ot: object) -> RunConfig:
    return RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 2, "device": "cpu", **PERIODS,
                                "variant": "ot_diffusion", "ot_diffusion": {**FAST, **ot}})


@pytest.fixture(scope="module")
def exact_run(tiny_data: MultiscaleData, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A run without coarse noise or inflation, so every member meets C'x = y' exactly."""
    cfg = _cfg(coarse_noise=False, spread_inflation=False)
    return train_or_load(cfg, tiny_data, runs_dir=tmp_path_factory.mktemp("ot_runs"), progress=False)


def test_the_config_block_is_strict() -> None:
    with pytest.raises(ValueError, match="unknown ot_diffusion key 'member'; did you mean 'members'"):
        OTDiffusionConfig.from_dict({"member": 4})
    with pytest.raises(ValueError, match="unknown debias key 'epsilon'"):
        OTDiffusionConfig.from_dict({"debias": {"epsilon": 0.1}})
    with pytest.raises(ValueError, match="members must be >= 2"):
        OTDiffusionConfig(members=1)
    with pytest.raises(ValueError, match="conditioning must list distinct items"):
        OTDiffusionConfig.from_dict({"conditioning": ["coarse", "drivers"]})
    with pytest.raises(ValueError, match="base_variant must be a deterministic variant, not ot_diffusion"):
        OTDiffusionConfig(base_variant="ot_diffusion")
    with pytest.raises(ValueError, match="coarse_source must be one of model, simulation"):
        OTDiffusionConfig(coarse_source="prms")
    assert DEBIAS_METHODS == tuple(DEBIASERS)


def test_the_block_keys_only_the_probabilistic_run() -> None:
    msgl = RunConfig(variant="msgl")
    assert msgl.key("d") == msgl.with_overrides(ot_diffusion={"members": 8}).key("d")
    ot = RunConfig(variant="ot_diffusion")
    assert ot.key("d") != ot.with_overrides(ot_diffusion={"members": 8}).key("d")
    again = RunConfig.from_yaml_text(ot.with_overrides(ot_diffusion={"members": 8, "conditioning": []}).to_yaml())
    assert again.ot_diffusion.members == 8 and again.ot_diffusion.conditioning == ()


def test_the_base_run_shares_split_mask_seed_and_holdout() -> None:
    cfg = _cfg().with_overrides(sparsity=0.5, seed=3, holdout_segments=[102])
    base = base_config(cfg)
    assert base.variant == "msgl" and base.ot_diffusion == OTDiffusionConfig()
    assert (base.sparsity, base.seed, base.holdout_segments) == (0.5, 3, (102,))
    check_base(cfg, base)
    with pytest.raises(ValueError, match="base run's sparsity is 1.0"):
        check_base(cfg, dataclasses.replace(base, sparsity=1.0))


def test_a_run_writes_its_files_and_its_base_run(exact_run, tiny_data: MultiscaleData) -> None:  # noqa: ANN001
    for name in (DEBIAS, DENOISER, CALIBRATION, MEMBERS, "predictions.nc", "metrics.json", "history.csv"):
        assert (exact_run.path / name).is_file(), name
    base = base_config(exact_run.config)
    assert is_complete(run_path(base, tiny_data.path.name, exact_run.path.parent))
    calibration = json.loads((exact_run.path / CALIBRATION).read_text())
    assert calibration["base_run"] == run_path(base, tiny_data.path.name, exact_run.path.parent).name
    assert calibration["inflation"] == 1.0 and calibration["sigma_c"] == [0.0] * 4
    assert "base run" in calibration["prior_learned_from"]
    assert len(exact_run.history()) == 3  # 2 pretrain + 1 finetune epochs
    state = torch.load(exact_run.path / DENOISER, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())


def test_members_meet_the_coarsening_constraint(exact_run, tiny_data: MultiscaleData) -> None:  # noqa: ANN001
    members = read_members(exact_run.path)
    summary = exact_run.predictions()
    assert members.sizes["member"] == 4
    operator = residual_domain(prepare(tiny_data, exact_run.config)).operator
    coarse = operator.apply(torch.as_tensor(members.values, dtype=torch.float64)).numpy()  # (M, D, N_c)
    debiased = summary["coarse_debiased"].sel(time=members["time"]).values
    assert np.nanmax(np.abs(coarse - debiased[None])) < 0.02  # int16 hundredths on both sides
    # Members differ within segments, about the ensemble mean.
    anomaly = within_segment(operator, members.values)
    assert np.nanstd(anomaly, axis=0).max() > 0


def test_the_summary_is_ordered_and_bounded(exact_run) -> None:  # noqa: ANN001
    ds = exact_run.predictions()
    sampled = ds["n_members"].values > 0
    assert (ds["n_members"].values[sampled] == 4).all()
    assert np.isnan(ds["prediction"].values[~sampled]).all()
    quantiles = [ds[f"prediction_q{q:02d}"].values[sampled] for q in (5, 25, 50, 75, 95)]
    assert all((a <= b + 1e-6).all() for a, b in zip(quantiles, quantiles[1:], strict=False))
    for name in ("p_exceed_20", "p_exceed_25"):
        p = ds[name].values[sampled]
        assert ((p >= 0) & (p <= 1)).all()
    assert np.isfinite(ds["base_prediction"].values).all()
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name


def test_scores_and_reload(exact_run, tiny_data: MultiscaleData) -> None:  # noqa: ANN001
    record = exact_run.metrics.probabilistic
    assert record is not None and record.n_members == 4
    scores = record.fine.overall
    assert scores.n_obs == exact_run.metrics.fine.overall.n_obs > 0
    assert 0 < scores.crps < 20 and 0 <= scores.coverage_90 <= 1
    again = train_or_load(exact_run.config, tiny_data, runs_dir=exact_run.path.parent, progress=False)
    assert again.path == exact_run.path and again.metrics.to_json() == exact_run.metrics.to_json()


def test_a_seeded_run_repeats_exactly(exact_run, tiny_data: MultiscaleData, tmp_path: Path) -> None:  # noqa: ANN001
    other = train_or_load(exact_run.config, tiny_data, runs_dir=tmp_path, progress=False)
    assert other.path.name == exact_run.path.name
    xr.testing.assert_equal(read_members(other.path), read_members(exact_run.path))


def test_predict_writes_the_stored_summary_and_members(exact_run, tiny_data: MultiscaleData,  # noqa: ANN001
                                                       tmp_path: Path) -> None:
    out = write_predictions(exact_run, tiny_data, tmp_path / "ens.nc", members=True)
    xr.testing.assert_equal(xr.open_dataset(out).load(), exact_run.predictions())
    assert (tmp_path / "ens_members.nc").is_file()
    with pytest.raises(ValueError, match="probabilistic run"):
        load_model(exact_run, tiny_data)
    base = load_run(run_path(base_config(exact_run.config), tiny_data.path.name, exact_run.path.parent))
    with pytest.raises(ValueError, match="deterministic run"):
        write_predictions(base, tiny_data, tmp_path / "base.nc", members=True)


def test_cli_trains_and_evaluates_an_ensemble(tmp_path: Path, tiny_bundle: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"basin": "drb", "window": 20, "epochs": 2, "variant": "ot_diffusion",
                                      "ot_diffusion": FAST, **{k: [list(p) for p in v] for k, v in PERIODS.items()}}))
    common = ["--data-dir", str(tiny_bundle), "--cache-dir", str(tmp_path / "cache")]
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--config", str(config), "--members", "3", "--device", "cpu",
                                 "--runs-dir", str(tmp_path / "runs"), *common])
    assert result.exit_code == 0, result.output
    assert "ensemble (3 members): CRPS" in result.stdout
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("ot_diffusion"))
    result = runner.invoke(app, ["evaluate", "--run-dir", str(run_dir), *common])
    assert result.exit_code == 0, result.output
    assert "CRPSS" in result.stdout and "base-run fields" in result.stdout
    result = runner.invoke(app, ["train", "--config", str(config), "--variant", "msgl", "--members", "3", *common])
    assert result.exit_code == 2 and "--members is an option of the ensemble variants" in result.output


def test_the_two_baselines_without_diffusion(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    cfg = _cfg()
    broadcast = train_or_load(cfg.with_overrides(variant="ot_broadcast"), tiny_data, runs_dir=tmp_path, progress=False)
    members = read_members(broadcast.path)
    operator = residual_domain(prepare(tiny_data, cfg)).operator
    assert np.nanmax(np.abs(within_segment(operator, members.values))) < 0.01  # the segment value on every reach
    assert not (broadcast.path / DENOISER).exists() and broadcast.history().empty
    gaussian = train_or_load(cfg.with_overrides(variant="msgl_gaussian"), tiny_data, runs_dir=tmp_path, progress=False)
    members = read_members(gaussian.path)
    base = load_run(run_path(base_config(cfg), tiny_data.path.name, tmp_path)).predictions()
    spread = members.std("member").values
    assert (spread > 0).all()
    sigma = json.loads((gaussian.path / CALIBRATION).read_text())["sigma_c"]
    assert np.nanmax(np.abs(members.values - base["prediction"].sel(time=members["time"]).values[None])) \
        < 6 * max(sigma) + 0.01
    for run in (broadcast, gaussian):
        scores = run.metrics.ensemble_scores()
        assert np.isfinite(scores["crps"]) and np.isfinite(scores["crpss"])
    assert np.isnan(load_run(run_path(base_config(cfg), tiny_data.path.name, tmp_path)).metrics.ensemble_scores()["ssr"])


def test_the_seed_ensemble_is_the_base_runs_of_consecutive_seeds(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    cfg = _cfg(members=3).with_overrides(variant="msgl_seeds", seed=4)
    run = train_or_load(cfg, tiny_data, runs_dir=tmp_path, progress=False)
    members = read_members(run.path)
    assert members.sizes["member"] == 3
    for k, seed in enumerate((4, 5, 6)):  # member k is the msgl run of seed 4 + k, on the sampled days
        base = load_run(run_path(dataclasses.replace(base_config(cfg), seed=seed), tiny_data.path.name, tmp_path))
        expected = base.predictions()["prediction"].sel(time=members["time"]).values
        np.testing.assert_allclose(members.isel(member=k).values, expected, rtol=1e-6)
    assert run.metrics.probabilistic is not None and run.metrics.probabilistic.n_members == 3
    assert np.isfinite(run.metrics.ensemble_scores()["crps"]) and np.isfinite(run.metrics.ensemble_scores()["ssr"])
    assert json.loads((run.path / CALIBRATION).read_text())["prior_learned_from"] == "no diffusion prior"
    with pytest.raises(ValueError, match="at most 10 members"):
        train_or_load(cfg.with_overrides(ot_diffusion={**FAST, "members": 11}), tiny_data, runs_dir=tmp_path,
                      progress=False)
