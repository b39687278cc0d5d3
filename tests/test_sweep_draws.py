"""Trials of a sweep: every W&B distribution draws in range, seeded draws repeat, the grid enumerates
every combination in W&B's order, and the command renders as a W&B agent renders it."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from mtl_aug.sweep.config import Parameter, flags, render_command, sweep_from_config

SPECS = {
    "categorical": {"values": [1, "a", [0.9, 1.1]]},
    "categorical_w_probabilities": {"values": [1, 2, 3], "probabilities": [0.2, 0.0, 0.8]},
    "constant": {"value": 7},
    "int_uniform": {"distribution": "int_uniform", "min": 2, "max": 5},
    "uniform": {"distribution": "uniform", "min": -1.0, "max": 3.0},
    "q_uniform": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
    "q_uniform_int": {"distribution": "q_uniform", "min": 0, "max": 100, "q": 10},
    "log_uniform": {"distribution": "log_uniform", "min": -4.0, "max": 0.0},
    "log_uniform_values": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
    "q_log_uniform_values": {"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 1},
    "inv_log_uniform_values": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10.0},
    "normal": {"distribution": "normal", "mu": 1.0, "sigma": 0.5},
    "log_normal": {"distribution": "log_normal"},
    "beta": {"distribution": "beta", "a": 2.0, "b": 5.0},
    "q_beta": {"distribution": "q_beta", "q": 0.1},
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_draws_are_in_range(name):
    import random

    p = Parameter.from_config("x", SPECS[name])
    rng = random.Random(0)
    draws = [p.sample(rng) for _ in range(500)]
    assert all(p.in_range(v) for v in draws), [v for v in draws if not p.in_range(v)][:5]
    spec = p.spec
    if p.distribution == "int_uniform":
        assert all(isinstance(v, int) for v in draws) and set(draws) == set(range(2, 6))  # max included
    if "q" in spec:
        assert all(math.isclose(v / spec["q"], round(v / spec["q"]), abs_tol=1e-9) for v in draws)
        if isinstance(spec["q"], int):
            assert all(isinstance(v, int) for v in draws)
    if p.distribution in ("categorical", "categorical_w_probabilities"):
        assert all(v in spec["values"] for v in draws)
    if p.distribution == "categorical_w_probabilities":
        assert 2 not in draws  # probability 0
    if p.distribution == "log_uniform_values":  # uniform in log space: about half the draws below 10^-2.5
        below = sum(v < 10 ** -2.5 for v in draws) / len(draws)
        assert 0.4 < below < 0.6


def _random_sweep(params=None, method="random"):
    return sweep_from_config({
        "method": method, "metric": {"name": "val_uar_mean", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", "${program}", "${args}"], "program": "train.py",
        "parameters": params or {"model.w_recon": {"distribution": "log_uniform_values", "min": 0.05, "max": 5.0},
                                 "model.n_time_masks": {"min": 1, "max": 3},
                                 "model.speed_factors": {"values": [[0.9, 1.1], [0.8, 1.2]]}}})


def test_seeded_draws_repeat_and_do_not_depend_on_count():
    s = _random_sweep()
    first = s.trials(5, seed=3)
    assert first == s.trials(5, seed=3) == _random_sweep().trials(5, seed=3)
    assert s.trials(2, seed=3) == first[:2]  # a resumed or extended sweep gets the same trials
    assert s.trials(5, seed=4) != first
    assert len({json.dumps(t, sort_keys=True) for t in first}) == 5


def test_grid_enumerates_every_combination_in_wandb_order():
    s = _random_sweep({"b": {"values": ["x", "y"]}, "a": {"min": 1, "max": 3}, "c": {"value": 0.5},
                       "d": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.5}}, method="grid")
    grid = s.trials(None, seed=0)
    # names sorted, last varying fastest; int_uniform -> min..max; q_uniform -> arange(min, max, q)
    expected = [dict(a=a, b=b, c=0.5, d=d) for a, b, d in itertools.product([1, 2, 3], ["x", "y"], [0.0, 0.5])]
    assert grid == expected
    assert s.trials(4, seed=0) == expected[:4]  # --count caps


def test_bayes_uses_random_draws():
    s = _random_sweep(method="bayes")
    assert s.trials(3, seed=0) == _random_sweep().trials(3, seed=0)
    with pytest.raises(ValueError, match="--count"):
        s.trials(None, seed=0)


def test_command_renders_like_the_wandb_agent(tmp_path, monkeypatch):
    from wandb.sdk.launch.sweeps import utils as wandb_utils

    params = {"model.w_recon": 0.5, "model.speed_factors": [0.9, 1.1], "model.augment": True}
    monkeypatch.setenv("MY_FOLDS", "03,08")
    cmd = render_command(["${env}", "${interpreter}", "${program}", "--dev-folds=${envvar:MY_FOLDS}", "${args}"],
                         params, program="prog.py", interpreter="/venv/python")
    want_flags = wandb_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})["args"]
    assert cmd == ["/usr/bin/env", "/venv/python", "prog.py", "--dev-folds=03,08", *want_flags]
    assert want_flags == ["--model.w_recon=0.5", "--model.speed_factors=[0.9, 1.1]", "--model.augment=True"]
    assert flags(params) == want_flags
    # ${args_json_file}: the parameters as a JSON file
    out = render_command(["${interpreter}", "p.py", "${args_json_file}"], params, program=None,
                         interpreter="py", json_file=tmp_path / "a.json")
    assert out == ["py", "p.py", str(tmp_path / "a.json")]
    assert json.loads((tmp_path / "a.json").read_text()) == params
