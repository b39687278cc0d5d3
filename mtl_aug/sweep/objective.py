"""Sweep objective: mean validation UAR over several dev folds, one training run per fold.

    python -m mtl_aug.sweep.objective --base-config=experiments/base.yaml \\
        --base-config=experiments/corpora/emodb.yaml --base-config=experiments/systems/mtl_aug.yaml \\
        --dev-folds=03,08,09 --model.w_recon=0.5 --model.w_aug=2.0

This is the program of the sweep YAMLs in ``experiments/sweeps/``: a W&B agent (or the offline runner,
``python -m mtl_aug sweep``) appends the trial's ``--name=value`` flags. Every flag that is not one of
this program's own goes to LightningCLI unchanged, once per dev fold, with ``--data.fold=<fold>``.

What it reports, as ``val_uar_mean`` (the sweep's metric):
  the mean over the dev folds of the validation UAR of the checkpoint cv would test: the ModelCheckpoint's
  best ``val/uar`` when it monitors one, else (the default recipe, final averaged weights) the last epoch's. Test speakers are never evaluated (``run_training(cli, test=False)``), so tuning on
  this number does not leak the test speakers. Dev folds should be a few of the corpus's folds; the
  numbers to publish come from ``make cv`` with the chosen values, over every fold.

Where it reports it:
  * ``wandb.log`` once, when W&B is active: under ``wandb agent`` (``WANDB_SWEEP_ID`` set) or with
    ``WANDB_MODE`` set (``offline`` from the offline runner); the mode is W&B's own, from the
    environment. No WandbLogger is used for the folds (each fold logs CSV under the trial's directory),
    so this ``wandb.init`` is the trial's only W&B run.
  * a JSON file at ``$MTL_AUG_SWEEP_RESULT`` (the offline runner sets it) or ``--result``.

``--base-config`` files and any ``--config`` among the flags are put first, in the order given: with
jsonargparse a ``--config`` given after a flag would override that flag, and W&B does not promise
the order of ``${args}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from mtl_aug.sweep.dev_folds import (METRIC, RESULT_ENV, TAIL_EPOCHS, tail_mean, train_fold,  # noqa: F401
                                     train_fold_in_child)
from mtl_aug.sweep.lightning_args import (FOLD_FLAG, check_cli_args, check_dev_folds, fold_args,  # noqa: F401
                                          lookup, multi_process, split_configs)
from mtl_aug.sweep.wandb_report import (rank_zero_env, report_to_wandb, start_wandb, wandb_active,  # noqa: F401
                                        write_json)

TRIAL_DIR_ENV = "MTL_AUG_SWEEP_TRIAL_DIR"


def build_parser() -> argparse.ArgumentParser:
    # argparse, not jsonargparse: only this program's few options are parsed here, everything else is
    # passed to LightningCLI (jsonargparse) untouched, which parse_known_args does cleanly.
    p = argparse.ArgumentParser(
        prog="python -m mtl_aug.sweep.objective", allow_abbrev=False,
        description="Mean validation UAR over dev folds (a W&B sweep program). Other flags go to LightningCLI.")
    p.add_argument("--base-config", action="append", default=[], metavar="YAML",
                   help="LightningCLI config file, before every other flag (repeatable, order kept)")
    p.add_argument("--dev-folds", required=True, metavar="F1,F2,...",
                   help="comma-separated fold names of data_manifests/<corpus>/folds.json (e.g. 03,08,09)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"where the folds' logs go (default: ${TRIAL_DIR_ENV}, else runs/sweeps/<group>/<run>)")
    p.add_argument("--result", default=None, metavar="JSON",
                   help=f"write the result here (default: ${RESULT_ENV})")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each fold's best checkpoint (default: deleted once its score is read)")
    p.add_argument("--no-wandb", action="store_true", help="never log to W&B")
    p.add_argument("--fold-processes", choices=("auto", "always", "never"), default="auto",
                   help="train each dev fold in its own process (auto: when the trainer runs on several devices "
                        "or nodes, so every DDP launch starts clean; else in this process)")
    p.add_argument("--check", action="store_true",
                   help="only parse the flags with LightningCLI (for every dev fold) and exit")
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(this program's options, the LightningCLI args common to every fold)."""
    opts, extra = build_parser().parse_known_args(argv)
    configs, rest = split_configs(extra)
    if any(a == FOLD_FLAG or a.startswith(FOLD_FLAG + "=") for a in rest):
        raise SystemExit(f"objective: {FOLD_FLAG} is set per dev fold; give --dev-folds instead")
    opts.folds = [f.strip() for f in str(opts.dev_folds).split(",") if f.strip()]
    if not opts.folds:
        raise SystemExit("objective: --dev-folds is empty")
    if len(set(opts.folds)) != len(opts.folds):
        raise SystemExit(f"objective: a dev fold is repeated in {opts.folds}")
    common = [f"--config={c}" for c in [*opts.base_config, *configs]] + rest
    return opts, common


def default_out_dir() -> Path:
    if os.environ.get(TRIAL_DIR_ENV):
        return Path(os.environ[TRIAL_DIR_ENV])
    group = os.environ.get("WANDB_SWEEP_ID") or os.environ.get("WANDB_RUN_GROUP") or "manual"
    run = os.environ.get("WANDB_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / "sweeps" / group / run


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, common = parse(argv)
    out_dir = Path(opts.out) if opts.out else default_out_dir()
    if opts.check:
        try:
            resolved = check_cli_args(fold_args(common, opts.folds[0], out_dir))
            known = check_dev_folds(resolved, opts.folds)
        except ValueError as e:
            print(f"objective: {e}", file=sys.stderr)
            return 1
        print(f"objective: LightningCLI accepts the flags; dev folds {','.join(opts.folds)}"
              + ("" if known else " (corpus not prepared here: folds not checked)"))
        return 0
    run = start_wandb(opts, common) if wandb_active(opts) and rank_zero_env() else None
    try:
        summary = train_dev_folds(opts, common, out_dir)
        if summary is not None and run is not None:
            summary["wandb"] = report_to_wandb(run, summary)
    except BaseException:
        if run is not None:
            import wandb

            wandb.finish(exit_code=1)
            wandb.teardown()
        raise
    if run is not None:
        import wandb

        wandb.finish()
        wandb.teardown()  # waits for W&B's service to write everything (finish alone may return earlier)
    if summary is None:  # DDP rank > 0: rank 0 reports
        return 0
    result_path = opts.result or os.environ.get(RESULT_ENV)
    if result_path:
        write_json(Path(result_path), summary)
    print(f"objective: {METRIC} = {summary[METRIC]:.4f} over folds {','.join(opts.folds)} "
          f"(std {summary['val_uar_std']:.4f}, {summary['time_s']:.1f} s)", flush=True)
    return 0


def train_dev_folds(opts: argparse.Namespace, common: list[str], out_dir: Path) -> dict | None:
    """Train every dev fold; the summary (mean/std/per-fold validation UAR), or None off rank 0."""
    started = time.time()
    folds: dict[str, float] = {}
    epochs: dict[str, int] = {}
    val_speakers: dict[str, list[str]] = {}
    curves: dict[str, list[float]] = {}
    zero = True
    separate = opts.fold_processes == "always"
    if opts.fold_processes == "auto":
        separate = multi_process(check_cli_args(fold_args(common, opts.folds[0], out_dir)))
    for fold in opts.folds:
        t0 = time.time()
        if separate:
            score, result, zero = train_fold_in_child(opts, common, fold, out_dir)
        else:
            score, result, zero = train_fold(fold_args(common, fold, out_dir), opts.keep_checkpoints)
        if (result.get("fold_info") or {}).get("train_on_val"):
            raise ValueError(f"dev fold {fold}: trained with --data.train_on_val, so its validation speakers are "
                             "training speakers and cannot score a sweep trial; drop the flag from the sweep")
        folds[fold] = score
        val_speakers[fold] = list(result.get("fold_info", {}).get("val", []))
        epochs[fold] = int(result.get("epochs") or 0)
        curves[fold] = list(result.get("val_uar_curve") or [])
        if zero:
            tail = tail_mean(curves[fold])
            print(f"objective: fold {fold}: best val UAR {score:.4f}, last-{TAIL_EPOCHS}-epoch mean "
                  f"{float('nan') if tail is None else tail:.4f} ({time.time() - t0:.1f} s)", flush=True)
    if not zero:
        return None
    values = list(folds.values())
    tails = [t for t in (tail_mean(c) for c in curves.values()) if t is not None]
    lasts = [c[-1] for c in curves.values() if c]
    return {
        METRIC: statistics.fmean(values),
        "val_uar_std": statistics.stdev(values) if len(values) > 1 else 0.0,
        # beside the sweep's metric: less optimistic views of the same validation speakers
        "val_uar_tail_mean": statistics.fmean(tails) if len(tails) == len(values) else None,
        "val_uar_last_mean": statistics.fmean(lasts) if len(lasts) == len(values) else None,
        "curves": curves,
        "folds": folds, "epochs": epochs, "dev_folds": opts.folds, "val_speakers": val_speakers, "args": common,
        "out_dir": str(out_dir), "time_s": round(time.time() - started, 2),
    }

if __name__ == "__main__":
    raise SystemExit(main())
