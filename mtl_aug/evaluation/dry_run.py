"""``--dry-run`` of cv and cross: every run with its state, and the first run's configuration parsed (no data, no
training)."""

from __future__ import annotations

import shlex
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

from mtl_aug import recipes

from .runs import Run


def dry_run(run_list: Sequence[Run], out: Path, force: bool = False) -> int:
    """Print every run with its state and the first run's arguments; parse them (no data, no training).
    With ``force`` every run is to do, finished or not, as in :func:`.runs.run_all`."""
    from mtl_aug.training import make_cli

    for r in run_list:
        res = r.load()
        state = ("finished (redone: --force)" if force else (
            "finished, OTHER RECIPE" if recipes.other_recipe(r.args, res) else "finished")) if res else (
            "partial (will be redone)" if r.run_dir.exists() else "to run")
        print(f"{r.name:<20} {state:<26} {r.run_dir}")
    if run_list and recipes.is_baseline(run_list[0].args):
        from mtl_aug.baseline.run import parse_args

        print("first run (baseline): " + shlex.join(run_list[0].args))
        parse_args(run_list[0].args)
    elif run_list:
        print("first run: python -m mtl_aug train " + shlex.join(run_list[0].args))
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        with tempfile.TemporaryDirectory() as tmp:  # parse + instantiate, with the logs in a throwaway dir
            args = [a for a in run_list[0].args if not a.startswith(("--trainer.default_root_dir=",
                                                                     "--trainer.logger.init_args.save_dir="))]
            make_cli(args + [f"--trainer.default_root_dir={tmp}", f"--trainer.logger.init_args.save_dir={tmp}"],
                     run=False)
    if run_list:
        print(f"configuration OK; {sum(1 for r in run_list if force or not r.load())} of {len(run_list)} runs to do -> {out}")
    return 0
