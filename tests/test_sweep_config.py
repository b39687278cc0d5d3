"""The sweep YAMLs in experiments/sweeps/: W&B's format, every parameter accepted by LightningCLI,
the metric logged under that exact name; and the checks that reject what W&B or LightningCLI would."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from mtl_aug.sweep import objective
from mtl_aug.sweep.config import METHODS, SweepConfigError, check_config, load_sweep, sweep_from_config
from mtl_aug.sweep.checks import check
from mtl_aug.sweep.runner import main

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))
VALIDATION_METRICS = {"val/uar", objective.METRIC}


def _minimal(**over) -> dict:
    cfg = {"method": "grid", "metric": {"name": "val_uar_mean", "goal": "maximize"},
           "command": ["${env}", "${interpreter}", "-m", "mtl_aug.sweep.objective", "--dev-folds=03", "${args}"],
           "parameters": {"model.w_aug": {"values": [0.5, 1.0]}}}
    cfg.update(over)
    return cfg


def test_the_three_sweeps_exist():
    assert {p.stem for p in SWEEPS} >= {"loss_weights", "augmentation", "smoke"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_yaml_is_in_wandb_format(path):
    raw = yaml.safe_load(path.read_text())
    for key in ("program", "command", "method", "metric", "parameters"):
        assert key in raw, f"{path.name}: no `{key}`"
    assert raw["method"] in METHODS
    # the validation UAR, maximised; never a test-speaker metric
    assert raw["metric"]["name"] in VALIDATION_METRICS and raw["metric"]["goal"] == "maximize"
    cmd = [str(c) for c in raw["command"]]
    assert cmd[:2] == ["${env}", "${interpreter}"] and "${args}" in cmd
    assert all(len(c.split()) == 1 for c in cmd), "every command item must be one token"
    assert (REPO / raw["program"]).exists()
    assert check_config(raw) == []
    sweep = load_sweep(path)
    assert sweep.metric == raw["metric"]["name"]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_parameter_reaches_lightning_cli(path):
    """Each parameter at its bounds (or each of its values), rendered as W&B renders ${args}, is accepted
    by the project's LightningCLI and lands on the key it names, with the right value."""
    sweep = load_sweep(path)
    corners = check(sweep)  # raises on the first flag LightningCLI rejects or mis-reads
    for p in sweep.parameters:
        assert {repr(t[p.name]) for t in corners} >= {repr(v) for v in p.corners()}


def test_metric_names_are_the_ones_logged():
    # val/uar: the module's validation MetricCollection (prefix "val/") holds "uar"
    from mtl_aug.metrics import emotion_metrics

    assert "val/uar" in emotion_metrics(4, prefix="val/").keys()
    # val_uar_mean: logged by the objective with wandb.log under that exact name (checked on a real
    # offline run in test_sweep_objective.py) and written to its result file
    assert objective.METRIC == "val_uar_mean"
    assert "wandb.log({METRIC:" in inspect.getsource(objective.report_to_wandb)


def test_check_rejects_what_wandb_or_lightning_would():
    assert check_config(_minimal()) == []
    bad = check_config(_minimal(command=["${env}", "${interpreter}", "-m mtl_aug.sweep.objective", "${args}"]))
    assert any("ONE argument" in b for b in bad)
    assert any("no ${args}" in b for b in check_config(_minimal(command=["${env}", "${interpreter}", "x.py"])))
    assert any("method" in b for b in check_config(_minimal(method="hyperopt")))
    assert any("metric" in b for b in check_config(_minimal(metric={"goal": "maximize"})))
    assert any("goal" in b for b in check_config(_minimal(metric={"name": "x", "goal": "max"})))
    assert any("not less than max" in b for b in check_config(_minimal(parameters={"a": {"min": 2, "max": 1}})))
    assert any("grid search" in b for b in check_config(
        _minimal(parameters={"a": {"distribution": "uniform", "min": 0.0, "max": 1.0}})))
    assert any("null" in b for b in check_config(_minimal(parameters={"a": {"values": [None, 1]}})))
    assert any("nested" in b for b in check_config(_minimal(parameters={"model": {"parameters": {"a": {"value": 1}}}})))
    assert any("unknown distribution" in b for b in check_config(
        _minimal(method="random", parameters={"a": {"distribution": "zipf", "min": 1, "max": 2}})))
    with pytest.raises(SweepConfigError):
        sweep_from_config(_minimal(parameters={}))


def test_distribution_inferred_like_wandb():
    s = sweep_from_config(_minimal(method="random", parameters={
        "i": {"min": 1, "max": 4}, "f": {"min": 0.1, "max": 1}, "c": {"values": [1, 2]}, "k": {"value": 3}}))
    kinds = {p.name: p.distribution for p in s.parameters}
    assert kinds == {"i": "int_uniform", "f": "uniform", "c": "categorical", "k": "constant"}


def test_lightning_rejects_a_bad_value(tmp_path):
    s = sweep_from_config(_minimal(command=[
        "${env}", "${interpreter}", "-m", "mtl_aug.sweep.objective", "--base-config=experiments/base.yaml",
        "--base-config=experiments/corpora/synthetic.yaml", "--dev-folds=F01", "${args}"],
        parameters={"model.w_aug": {"values": ["abc"]}}))
    with pytest.raises(ValueError, match="model.w_aug"):
        check(s)


def test_runner_refuses_a_test_metric(tmp_path, capsys):
    cfg = _minimal(metric={"name": "test/uar", "goal": "maximize"})
    path = tmp_path / "leak.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    assert "leaks the test speakers" in capsys.readouterr().err
