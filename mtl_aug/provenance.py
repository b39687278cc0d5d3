"""Where a result came from (core layer): git commit, machine, command line."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> tuple[str, bool]:
    """(HEAD commit, whether tracked files other than results have uncommitted changes); ("unknown", False)
    outside git. Results being written (experiments/results) do not make the code dirty."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)experiments/results"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return head or "unknown", dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line naming the hardware and software a result came from. It names the CPU and the vector
    kernels torch dispatches to (AVX2, AVX512...): those change float rounding, and over a training run a
    1e-6 difference in the first steps grows into a different model (docs/training.md, "Reproducibility")."""
    import torch

    cpu = f"{cpu_model()} ({platform.machine()}, torch {torch.backends.cpu.get_cpu_capability()} kernels)"
    dev = f"cuda x{torch.cuda.device_count()} ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "no GPU"
    return (f"{platform.node()} · {platform.system()} {platform.release()} · {cpu} · {os.cpu_count()} CPUs · {dev} · "
            f"python {platform.python_version()} · torch {torch.__version__}")


def provenance(command: str, argv: Sequence[str]) -> dict:
    """Command, commit, date and machine of a report; plus ``cwd`` when the command ran outside the repository
    root, since its relative path arguments (``--out``, result folders) only mean something from there."""
    commit, dirty = git_commit()
    meta = {"command": "python -m mtl_aug " + command + (" " + shlex.join(argv) if argv else ""),
            "git_commit": commit, "git_dirty": dirty,
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine()}
    cwd = Path.cwd().resolve()
    if cwd != REPO_ROOT:
        meta["cwd"] = str(cwd.relative_to(REPO_ROOT)) if cwd.is_relative_to(REPO_ROOT) else str(cwd)
    return meta
