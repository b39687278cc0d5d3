"""Sweep objective: mean validation UAR over several dev folds, one training run per fold.

    python -m mtl_aug.sweep.objective --base-config=experiments/base.yaml \\
        --base-config=experiments/corpora/emodb.yaml --base-config=experiments/systems/mtl_aug.yaml \\
        --dev-folds=03,08,09 --model.w_recon=0.5 --model.w_aug=2.0

This is the program of the sweep YAMLs in ``experiments/sweeps/``: a W&B agent (or the offline runner,
``python -m mtl_aug sweep``) appends the trial's ``--name=value`` flags. Every flag that is not one of
this program's own goes to LightningCLI unchanged, once per dev fold, with ``--data.fold=<fold>``.

What it reports, as ``val_uar_mean`` (the sweep's metric):
  the mean over the dev folds of each fold's best validation UAR (the ModelCheckpoint's best
  ``val/uar``). Test speakers are never evaluated (``run_training(cli, test=False)``), so tuning on
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
import contextlib
import gc
import io
import json
import logging
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

METRIC = "val_uar_mean"
TAIL_EPOCHS = 10
RESULT_ENV = "MTL_AUG_SWEEP_RESULT"
TRIAL_DIR_ENV = "MTL_AUG_SWEEP_TRIAL_DIR"
FOLD_FLAG = "--data.fold"
log = logging.getLogger(__name__)


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


def split_configs(args: list[str]) -> tuple[list[str], list[str]]:
    """Pull ``--config X`` / ``--config=X`` / ``-c X`` out of ``args``: (config files, the other args)."""
    configs, rest, i = [], [], 0
    while i < len(args):
        a = args[i]
        if a in ("--config", "-c") and i + 1 < len(args):
            configs.append(args[i + 1])
            i += 2
            continue
        if a.startswith("--config="):
            configs.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return configs, rest


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


def fold_args(common: list[str], fold: str, out_dir: Path) -> list[str]:
    """LightningCLI args of one dev fold: its fold, and a CSV logger under the trial's directory."""
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": str(out_dir), "name": f"fold_{fold}", "version": 0}}
    return [*common, f"{FOLD_FLAG}={fold}", f"--trainer.logger={json.dumps(logger)}",
            f"--trainer.default_root_dir={out_dir}"]


def _make_cli(args: list[str]):
    """``make_cli(args, run=False)``, with ``sys.argv`` hidden (LightningCLI warns when it sees both)."""
    from mtl_aug.training import make_cli

    argv0, sys.argv = sys.argv, sys.argv[:1]
    try:
        return make_cli(args, run=False)
    finally:
        sys.argv = argv0


def check_cli_args(args: list[str]) -> dict[str, Any]:
    """Parse ``args`` with the project's LightningCLI without instantiating anything; returns the
    resolved config (a dict). Raises ValueError with jsonargparse's message when LightningCLI refuses."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            _make_cli([*args, "--print_config"])
        except SystemExit as e:
            code = e.code
    if code not in (0, None):
        text = err.getvalue().strip()
        msg = text.split("error:", 1)[1].strip() if "error:" in text else (text or f"exit code {code}")
        raise ValueError(f"LightningCLI rejected the flags: {msg}\n  args: {' '.join(args)}")
    return yaml.safe_load(out.getvalue()) or {}


def check_dev_folds(resolved: dict, folds: list[str]) -> bool:
    """Dev folds must be folds of the corpus (``data_manifests/<corpus>/folds.json``). Returns False when
    the corpus is not prepared here (nothing to check against); raises ValueError for unknown folds."""
    data = resolved.get("data") or {}
    path = Path(data.get("manifest_dir") or "data_manifests") / str(data.get("corpus")) / "folds.json"
    if not path.exists():
        return False
    names = [f["name"] for f in json.loads(path.read_text())["folds"]]
    unknown = [f for f in folds if f not in names]
    if unknown:
        raise ValueError(f"dev fold(s) {', '.join(unknown)} are not folds of {path} ({', '.join(names)})")
    return True


def lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def multi_process(resolved: dict) -> bool:
    """Whether the resolved trainer config launches several processes (DDP over devices or nodes)."""
    t = resolved.get("trainer") or {}
    if int(t.get("num_nodes") or 1) > 1:
        return True
    devices = t.get("devices", "auto")
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    if devices in ("auto", -1, "-1"):
        import torch

        return t.get("accelerator") not in ("cpu",) and torch.cuda.device_count() > 1
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()]) > 1
    try:
        return int(devices) > 1
    except (TypeError, ValueError):
        return False


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


def wandb_active(opts: argparse.Namespace) -> bool:
    if opts.no_wandb:
        return False
    if os.environ.get("WANDB_SWEEP_ID"):  # started by `wandb agent`
        return True
    return os.environ.get("WANDB_MODE", "").lower() in ("online", "offline", "dryrun", "run", "shared")


def default_out_dir() -> Path:
    if os.environ.get(TRIAL_DIR_ENV):
        return Path(os.environ[TRIAL_DIR_ENV])
    group = os.environ.get("WANDB_SWEEP_ID") or os.environ.get("WANDB_RUN_GROUP") or "manual"
    run = os.environ.get("WANDB_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / "sweeps" / group / run


def train_fold(args: list[str], keep_checkpoints: bool) -> tuple[float, dict, bool]:
    """One dev fold: fit (no test), return (best val UAR, result dict, is_global_zero)."""
    from mtl_aug.training import run_training

    cli = _make_cli(args)
    result = run_training(cli, test=False)
    trainer = cli.trainer
    score = result.get("best_val_uar")
    if score is None:  # no ModelCheckpoint on val/uar in the config: fall back to the last epoch's value
        last = trainer.callback_metrics.get("val/uar")
        score = None if last is None else float(last)
        log.warning("no checkpoint score: using the last epoch's val/uar (%s)", score)
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


def start_wandb(opts: argparse.Namespace, common: list[str]):
    """The trial's W&B run, started before training so it shows (and is marked crashed) like any run.
    Mode, project, group and name come from the environment (agent or offline runner)."""
    import wandb

    config = {"objective": {"dev_folds": opts.folds, "base_config": opts.base_config}}
    if not os.environ.get("WANDB_SWEEP_ID"):  # under an agent the sweep's parameters are the config already
        config.update(overrides(common))
    return wandb.init(project=os.environ.get("WANDB_PROJECT") or "mtl-aug", job_type="sweep-trial", config=config)


def report_to_wandb(run, summary: dict) -> dict:
    import wandb

    # the sweep's metric, logged exactly once for the trial, with the per-fold values beside it
    extra = {k: summary[k] for k in ("val_uar_tail_mean", "val_uar_last_mean") if summary.get(k) is not None}
    wandb.log({METRIC: summary[METRIC], "val_uar_std": summary["val_uar_std"], **extra,
               **{f"val_uar/{fold}": v for fold, v in summary["folds"].items()}})
    run.summary["dev_folds"] = list(summary["folds"])
    return {"id": run.id, "dir": str(Path(run.dir).parent), "mode": str(run.settings.mode)}


def rank_zero_env() -> bool:
    """False in the processes a DDP launcher starts for ranks > 0 (they must not open a W&B run)."""
    return all(os.environ.get(k, "0") == "0" for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def overrides(common: list[str]) -> dict[str, Any]:
    """``--name=value`` flags as a dict of values (the W&B run's config outside an agent)."""
    out = {}
    for a in common:
        if a.startswith("--") and "=" in a and not a.startswith("--config="):
            k, v = a[2:].split("=", 1)
            out[k] = _value(v)
    return out


def _value(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eE") and not text.startswith("[") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return text


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
