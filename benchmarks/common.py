"""Shared helpers of the benchmark suite: machine/provenance record, careful timing, report writing.

Timing rules (the machine is shared; other processes load its 2 cores):

* per-step comparisons run on ONE torch thread (``one_thread()``), so a neighbour's load slows every
  variant alike instead of starving a 2-thread variant at random;
* variants are *interleaved* (round-robin, rotating order) and repeated; figures are medians, and the
  RATIO of each variant to its baseline is reported beside the absolute numbers: the median over rounds
  of the per-round ratio (paired, robust to load drift; absolute numbers are not);
* the 1-minute load average is recorded before and after every section.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from report import TARGETS, evaluate_targets, fmt, render_markdown  # noqa: F401 (benchmarks use them from here)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
BENCH_JSON = RESULTS / "bench.json"
BENCH_MD = RESULTS / "bench.md"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def corpus_env() -> None:
    """Default corpus roots for this workplace's shared data, as the Makefile exports them (an already set
    variable wins)."""
    shared = Path(os.environ.get("SHARED", REPO.parent / "shared" / "data"))
    for var, rel in (("EMODB_ROOT", "emodb"), ("RAVDESS_ROOT", "ravdess"),
                     ("LIBRISPEECH_ROOT", "librispeech/LibriSpeech"), ("NOISE_ROOT", "speech_commands")):
        os.environ.setdefault(var, str(shared / rel))


# -- machine and provenance -------------------------------------------------------------------------------
def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def git_info() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or "unknown",
                "dirty": git("status", "--porcelain", "--untracked-files=no") != ""}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": False}


def machine_info() -> dict:
    import torch

    from mtl_aug.provenance import cpu_model  # the same CPU name the cv results record

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": ram_gb(),
        "load_average": load_average(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(),
    }


def provenance() -> dict:
    return {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "git": git_info(),
            "machine": machine_info()}


# -- timing ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave as is)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread():
    return threads(1)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 5, warmup: int = 1) -> dict[str, list[float]]:
    """Time every variant ``rounds`` times, round-robin with a rotating start so slow phases of the
    machine's load hit every variant alike. ``warmup`` untimed calls of each variant first."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(timed(fns[name]))
    return times


def summary(times: list[float]) -> dict:
    """Median and quartiles (seconds) of repeated timings."""
    s = sorted(times)
    q = statistics.quantiles(s, n=4, method="inclusive") if len(s) >= 2 else [s[0], s[0], s[0]]
    return {"median_s": round(statistics.median(s), 5), "q1_s": round(q[0], 5), "q3_s": round(q[2], 5),
            "n": len(s)}


def compare(fns: dict[str, Callable[[], object]], baseline: str, rounds: int = 5, warmup: int = 1) -> dict:
    """``interleaved`` + per-variant summary; ``ratio`` = median over rounds of (variant's time / baseline's
    time in the same round): paired, so a slow phase of the machine's load cancels out;
    ``ratio_of_medians`` for reference."""
    times = interleaved(fns, rounds, warmup)
    base = statistics.median(times[baseline])
    out = {}
    for name, ts in times.items():
        out[name] = summary(ts)
        out[name]["ratio"] = round(statistics.median(t / b for t, b in zip(ts, times[baseline])), 3)
        out[name]["ratio_of_medians"] = round(statistics.median(ts) / base, 3)
    return out


@contextlib.contextmanager
def section(record: dict, name: str, verbose: bool = True) -> Iterator[dict]:
    """A results section: records its wall time and the load average before/after."""
    sec: dict = {"load_before": load_average()}
    t0 = time.perf_counter()
    if verbose:
        print(f"[bench] {name} ... (load {sec['load_before']})", flush=True)
    try:
        yield sec
    finally:
        sec["load_after"] = load_average()
        sec["wall_s"] = round(time.perf_counter() - t0, 1)
        record[name] = sec
        if verbose:
            print(f"[bench] {name} done in {sec['wall_s']} s (load {sec['load_after']})", flush=True)


# -- results files ----------------------------------------------------------------------------------------
def read_results(path: Path = BENCH_JSON) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def write_results(results: dict, json_path: Path = BENCH_JSON, md_path: Path = BENCH_MD) -> None:
    for path, text in ((Path(json_path), json.dumps(results, indent=1) + "\n"),
                       (Path(md_path), render_markdown(results))):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def train_args(corpus: dict, system: str, out_dir: str | Path, max_epochs: int) -> list[str]:
    """The LightningCLI flags of a short benchmark fit of ``system`` on a benchmark corpus dict."""
    return ["--config", str(REPO / "experiments/base.yaml"),
            "--config", str(REPO / f"experiments/corpora/{corpus['corpus']}.yaml"),
            "--config", str(REPO / f"experiments/systems/{system}.yaml"),
            f"--data.fold={corpus['fold']}", f"--data.root={corpus['root']}",
            f"--data.manifest_dir={corpus['manifest_dir']}", f"--data.cache_dir={corpus['cache_dir']}",
            f"--trainer.max_epochs={max_epochs}", f"--trainer.default_root_dir={out_dir}",
            f"--trainer.logger.init_args.save_dir={out_dir}", "--trainer.enable_progress_bar=false"]
