"""Peak memory (RSS) of a training run, measured in a small launcher process (part of ``bench_data``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

# -- peak memory of a training run -------------------------------------------------------------------------
# A small launcher between the benchmark and the measured command: Linux's exec records the pre-exec
# memory's high-water mark in the child's ru_maxrss, so a command spawned directly from a benchmark process
# that holds torch and a model would report at least that process's RSS. The launcher is small, and reports
# RUSAGE_CHILDREN of the command it runs (the command alone).
_LAUNCHER = ("import json, resource, subprocess, sys\n"
             "rc = subprocess.call(sys.argv[2:])\n"
             "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "open(sys.argv[1], 'w').write(json.dumps({'maxrss_kb': u.ru_maxrss, 'cpu_s': u.ru_utime + u.ru_stime}))\n"
             "sys.exit(rc)\n")


def peak_rss_of(cmd: list[str], cwd: str | Path | None = None, env: dict | None = None, timeout: float = 1800,
                log_path: str | Path | None = None) -> dict:
    """Run ``cmd`` in a child process (through a small launcher, see ``_LAUNCHER``);
    ``{"exit_code", "peak_rss_mb", "wall_s", "cpu_s"}``: the command's ``ru_maxrss`` and user + system CPU
    seconds (the command and its own waited-for children)."""
    import signal

    t0 = time.perf_counter()
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    fd, usage_path = tempfile.mkstemp(prefix="bench_rusage_", suffix=".json")
    os.close(fd)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, usage_path, *cmd], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher's own process group: it and the command
            code = proc.wait()
        try:
            usage = json.loads(Path(usage_path).read_text() or "{}")
        except ValueError:
            usage = {}
    finally:
        if log_path:
            log.close()
        Path(usage_path).unlink(missing_ok=True)
    return {"exit_code": code,
            "peak_rss_mb": round(usage["maxrss_kb"] / 1024, 1) if "maxrss_kb" in usage else None,
            "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(usage["cpu_s"], 1) if "cpu_s" in usage else None}


def train_command(corpus: dict, system: str, out_dir: str | Path, max_epochs: int = 1,
                  limit_train_batches: int | None = 4, extra: list[str] = ()) -> list[str]:
    """``python -m mtl_aug train`` with the configs, the corpus and a short schedule."""
    cmd = [sys.executable, "-m", "mtl_aug", "train", *common.train_args(corpus, system, out_dir, max_epochs)]
    if limit_train_batches is not None:
        cmd.append(f"--trainer.limit_train_batches={limit_train_batches}")
    if corpus.get("synthetic"):
        cmd.append(f"--data.unlabelled_root={corpus['root']}")
    return cmd + list(extra)


def measure_peak_rss(corpus: dict, system: str = "mtl_aug", max_epochs: int = 1, limit_train_batches: int | None = 4,
                     extra: list[str] = (), timeout: float = 1800) -> dict:
    """Peak resident set size of a child ``python -m mtl_aug train`` (fit + test of the best checkpoint)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_rss_"))
    cmd = train_command(corpus, system, tmp, max_epochs, limit_train_batches, extra)
    env = {**os.environ, "PYTHONPATH": str(common.REPO)}
    try:
        res = peak_rss_of(cmd, common.REPO, env, timeout, tmp / "log.txt")
        tail = (tmp / "log.txt").read_text()[-1500:] if res["exit_code"] else ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.update({"system": system, "corpus": corpus["corpus"], "fold": corpus["fold"], "epochs": max_epochs,
                "limit_train_batches": limit_train_batches,
                "command": "python -m mtl_aug train --config experiments/base.yaml --config "
                           f"experiments/corpora/{corpus['corpus']}.yaml --config experiments/systems/{system}.yaml "
                           f"--data.fold={corpus['fold']} --trainer.max_epochs={max_epochs}"
                           + (f" --trainer.limit_train_batches={limit_train_batches}" if limit_train_batches else "")})
    if tail:
        res["log_tail"] = tail
    return res


def measure_rss_baselines() -> dict:
    """Peak RSS of child processes that only import (what a training run's figure starts from)."""
    env = {**os.environ, "PYTHONPATH": str(common.REPO)}
    out = {}
    for name, code in (("import torch", "import torch"),
                       ("import torch + lightning + mtl_aug.training", "import torch, lightning, mtl_aug.training")):
        out[name] = peak_rss_of([sys.executable, "-c", code], common.REPO, env, timeout=600)
    return out
