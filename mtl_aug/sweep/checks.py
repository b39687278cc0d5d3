"""``python -m mtl_aug sweep SWEEP.yaml --check``: every parameter at its bounds (or each of its values) parses
with the project's LightningCLI and lands where it should, without training."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from mtl_aug.sweep.config import Sweep

OBJECTIVE_MODULE = "mtl_aug.sweep.objective"


def check_trial_flags(sweep: Sweep, params: dict) -> None:
    """Parse one trial's command with LightningCLI in this process (objective programs only)."""
    import yaml

    from mtl_aug.sweep import objective

    cmd = sweep.render(params, interpreter=sys.executable, json_file=os.devnull)
    if OBJECTIVE_MODULE not in cmd:
        raise ValueError(f"--check knows the `-m {OBJECTIVE_MODULE}` program only; this command is {cmd}")
    argv = cmd[cmd.index(OBJECTIVE_MODULE) + 1:]
    opts, common = objective.parse(argv)
    resolved = objective.check_cli_args(objective.fold_args(common, opts.folds[0], Path("runs/sweeps/_check")))
    objective.check_dev_folds(resolved, opts.folds)
    for name, want in params.items():
        if name == "config":  # a config file: its settings were parsed above, it is not itself a setting
            continue
        got = objective.lookup(resolved, nested_name(name, want))
        if isinstance(want, str) and not isinstance(got, str):  # e.g. "null" -> None, "[1,2]" -> [1, 2]
            want = yaml.safe_load(want)
        if isinstance(got, float) or isinstance(want, float):
            same = isinstance(got, (int, float)) and math.isclose(float(got), float(want), rel_tol=1e-9)
        else:
            same = got == want
        if not same:
            raise ValueError(f"--{name}={want} reached LightningCLI as {got!r}")


def nested_name(name: str, value: Any = None) -> str:
    """Where a parameter lands in the resolved config: a flat ``model.*`` shorthand (``model.w_recon``) at the
    nested key it stands for (``model.reconstruction.init_args.weight``)."""
    from mtl_aug.tasks import legacy

    head, _, key = name.partition(".")
    paths = legacy.flag_paths(key, value) if head == "model" else None
    return f"model.{paths[0]}" if paths else name


def check(sweep: Sweep) -> list[dict]:
    """Every parameter at its bounds (or each of its values) parses and lands where it should."""
    corners = sweep.corner_trials()
    for params in corners:
        check_trial_flags(sweep, params)
    return corners
