"""Training the sweep objective's dev folds: in this process or one child process per fold (a clean DDP
launch each); each fold's best validation UAR and its per-epoch curve."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import shutil
import statistics
import sys
from pathlib import Path

from mtl_aug.sweep.lightning_args import _make_cli

METRIC = "val_uar_mean"
TAIL_EPOCHS = 10
RESULT_ENV = "MTL_AUG_SWEEP_RESULT"
log = logging.getLogger(__name__)


def train_fold_in_child(opts: argparse.Namespace, common: list[str], fold: str,
                          out_dir: Path) -> tuple[float, dict, bool]:
    """One dev fold as ``python -m mtl_aug.sweep.objective --dev-folds=<fold>`` in a child process (a clean
    DDP launch per fold); returns what ``train_fold`` returns, read from the child's result file."""
    import subprocess

    result_file = out_dir / f"fold_{fold}.result.json"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "mtl_aug.sweep.objective", f"--dev-folds={fold}", f"--result={result_file}",
           f"--out={out_dir}", "--fold-processes=never", "--no-wandb",
           *(["--keep-checkpoints"] if opts.keep_checkpoints else []), *common]
    env = {k: v for k, v in os.environ.items() if k != RESULT_ENV}
    code = subprocess.call(cmd, env=env)
    if code != 0 or not result_file.exists():
        raise RuntimeError(f"dev fold {fold}: training process failed (exit {code})")
    child = json.loads(result_file.read_text())
    return float(child["folds"][fold]), {"epochs": child["epochs"][fold],
                                         "val_uar_curve": child.get("curves", {}).get(fold, []),
                                         "fold_info": {"val": child["val_speakers"].get(fold, [])}}, True


def train_fold(args: list[str], keep_checkpoints: bool) -> tuple[float, dict, bool]:
    """One dev fold: fit (no test), return (best val UAR, result dict, is_global_zero)."""
    from mtl_aug.training import run_training

    cli = _make_cli(args)
    result = run_training(cli, test=False)
    trainer = cli.trainer
    score = result.get("best_val_uar")
    if score is None:  # no monitored checkpoint (the default tests the final weights): that model's val/uar
        last = trainer.callback_metrics.get("val/uar")
        score = None if last is None else float(last)
        log.info("no monitored checkpoint: the score is the last epoch's val/uar (%s)", score)
    if score is None or not math.isfinite(score):
        raise RuntimeError(f"fold {result.get('fold')}: no validation UAR was logged")
    zero = trainer.is_global_zero
    if zero:
        result["val_uar_curve"] = val_curve(trainer)
    ckpt = result.get("best_checkpoint")
    if ckpt and not keep_checkpoints and zero:
        shutil.rmtree(Path(ckpt).parent, ignore_errors=True)
        result["best_checkpoint"] = None
    del cli, trainer
    gc.collect()
    return float(score), result, zero


def val_curve(trainer) -> list[float]:
    """Validation UAR per epoch, read back from the CSV logger's ``metrics.csv`` ([] without one)."""
    import csv

    log_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger else None
    path = Path(log_dir) / "metrics.csv" if log_dir else None
    if path is None or not path.exists():
        return []
    with open(path, newline="") as fh:
        return [float(r["val/uar"]) for r in csv.DictReader(fh) if r.get("val/uar")]


def tail_mean(curve: list[float], n: int = TAIL_EPOCHS) -> float | None:
    """Mean of the last ``n`` epochs' validation UAR: the level a fixed-length schedule ends at, without the
    optimism of the best epoch (a max over noisy epochs)."""
    return statistics.fmean(curve[-n:]) if curve else None
