"""One trial of an offline sweep: the YAML's command, rendered as a W&B agent renders it, in its own process
(offline W&B run, ``$MTL_AUG_SWEEP_RESULT`` for its metric), stoppable from the sweep's main thread."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mtl_aug.sweep import wandb_offline
from mtl_aug.sweep.config import Sweep

RESULT_ENV = "MTL_AUG_SWEEP_RESULT"  # same names as mtl_aug.sweep.objective (not imported: it is a program)
TRIAL_DIR_ENV = "MTL_AUG_SWEEP_TRIAL_DIR"

# Trials running in worker threads (--jobs > 1): the main thread gets Ctrl-C / SIGTERM and stops them.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


def trial_env(sweep: Sweep, out: Path, trial_dir: Path, index: int, threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["WANDB_MODE"] = "offline"
    env["WANDB_RUN_GROUP"] = sweep.name
    env["WANDB_NAME"] = f"{sweep.name}-{index:03d}"
    env.setdefault("WANDB_PROJECT", str(sweep.config.get("project") or "mtl-aug"))
    env["WANDB_DIR"] = str(trial_dir.resolve())  # the trial's offline run: <trial>/wandb/offline-run-*
    env.setdefault("WANDB_SILENT", "true")
    env.pop("WANDB_SWEEP_ID", None)  # not an agent's run
    env[RESULT_ENV] = str((trial_dir / "result.json").resolve())
    env[TRIAL_DIR_ENV] = str(trial_dir.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_trial(sweep: Sweep, out: Path, index: int, params: dict, timeout: float | None = None, verbose: bool = False,
              threads: int | None = None) -> dict:
    trial_dir = out / "trials" / f"{index:03d}"
    if trial_dir.exists():  # an interrupted or retried trial: start clean (no stale result or offline run)
        shutil.rmtree(trial_dir)
    trial_dir.mkdir(parents=True)
    result_file = trial_dir / "result.json"
    cmd = sweep.render(params, interpreter=sys.executable, json_file=trial_dir / "args.json")
    env = trial_env(sweep, out, trial_dir, index, threads)
    record: dict[str, Any] = {"trial": index, "params": params, "metric": None, "status": "failed",
                              "returncode": None, "time_s": 0.0, "command": cmd,
                              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "log": str(trial_dir / "log.txt")}
    t0 = time.time()
    with (trial_dir / "log.txt").open("w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        with _running_lock:
            if _stopping.is_set():  # the sweep was interrupted while this trial was being set up
                raise KeyboardInterrupt
            proc = subprocess.Popen(cmd, env=env, stdout=None if verbose else log,
                                    stderr=None if verbose else subprocess.STDOUT)
            _running.add(proc)
        try:
            record["returncode"] = proc.wait(timeout=timeout)
            if _stopping.is_set():  # stopped by an interrupted sweep (--jobs > 1): not a result
                raise KeyboardInterrupt
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            record["status"] = "timeout"
        except BaseException:  # Ctrl-C / kill: stop the trial too, record nothing
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
    record["time_s"] = round(time.time() - t0, 1)
    runs = wandb_offline.offline_runs(trial_dir / "wandb")
    if runs:
        record["wandb_dir"] = str(runs[-1])
        record["wandb_run"] = runs[-1].name.rsplit("-", 1)[-1]
    if record["returncode"] == 0:
        result: dict = json.loads(result_file.read_text()) if result_file.exists() else {}
        value = result.get(sweep.metric)
        source = str(result_file)
        if value is None and runs:  # no result file: what the trial logged to W&B (last value, as W&B does)
            wandb_offline.wait_complete(runs[-1])
            value, source = wandb_offline.last_value(runs[-1], sweep.metric), str(runs[-1])
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            record.update(metric=float(value), status="ok", metric_source=source)
        else:
            record.update(status="no-metric", error=f"'{sweep.metric}' is missing or not finite in the result file "
                                                    f"(${RESULT_ENV}) and in the trial's offline W&B run")
        record["extra"] = {k: v for k, v in result.items()
                           if k not in (sweep.metric, "time_s") and isinstance(v, (int, float))
                           and not isinstance(v, bool)}
        record["extra"].update({f"fold_{k}": v for k, v in (result.get("folds") or {}).items()})
        record["val_speakers"] = result.get("val_speakers") or {}
    return record


def tail(path: str | Path, n: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def stop_running_trials() -> None:
    """Terminate every trial still running (then kill after 20 s); no new trial starts afterwards."""
    with _running_lock:
        _stopping.set()
        procs = list(_running)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
