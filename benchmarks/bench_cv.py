"""Wall time of one whole cross-validation run, cold waveform cache, plus a cold vs warm cache comparison.

    .venv/bin/python benchmarks/bench_cv.py                 # make bench-cv: EMODB-2s, 10 LOSO folds, 1 seed (long)
    .venv/bin/python benchmarks/bench_cv.py --folds 03      # one fold: checks the code path, estimates x10
    .venv/bin/python benchmarks/bench_cv.py --folds 03 --threads 1   # the cv process on one torch thread
    .venv/bin/python benchmarks/bench_cv.py --folds 03 -- --trainer.max_epochs=2

1. ``python -m mtl_aug cv --corpus emodb --system mtl_aug --seeds 1 --out <tmp> [--folds ...]
   -- --data.cache_dir=<empty tmp dir>`` as a child process (the real command, default epochs and
   early stopping), timed wall-clock; its peak RSS (``os.wait4``) and the per-fold seconds/epochs of
   its ``result.json`` files are recorded. With fewer folds than the corpus has, the 10-fold time is an
   ESTIMATE: start-up overhead + mean fold time x number of folds.
2. Data setup of every fold (``SERDataModule.setup()``: read the manifest, decode or load each
   utterance) with an empty cache dir (the first fold decodes, the others hit the cache, as in a cold
   cv run), again with that now-warm cache, and with no cache (decode every time).

The numbers are added to ``experiments/results/bench.json``/``bench.md`` (section ``cv``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def cv_command(corpus: str, system: str, seeds: str, out: Path, cache_dir: Path, folds: str | None = None,
               manifest_dir: str | None = None, extra: list[str] = (), jobs: str = "auto") -> list[str]:
    cmd = [sys.executable, "-m", "mtl_aug", "cv", "--corpus", corpus, "--system", system, "--seeds", str(seeds),
           "--out", str(out), "--jobs", str(jobs)]
    if folds:
        cmd += ["--folds", folds]
    if manifest_dir:
        cmd += ["--manifest-dir", str(manifest_dir)]
    return cmd + ["--", f"--data.cache_dir={cache_dir}", *extra]


def fold_results(out: Path) -> list[dict]:
    rows = []
    for path in sorted(Path(out).glob("runs/*/result.json")):
        r = json.loads(path.read_text())
        rows.append({"fold": r.get("fold"), "seed": r.get("seed"), "seconds": r.get("seconds"),
                     "epochs": r.get("epochs"), "uar": r.get("uar")})
    return rows


def measure_data_setup(corpus: str, folds: list[str], manifest_dir: str | Path, root: str | None = None,
                       base_dir: str | Path | None = None, extra_hparams: dict | None = None) -> dict:
    """Seconds to ``setup()`` the DataModule of every fold: empty cache, the same cache warm, no cache."""
    import logging

    from mtl_aug.data.datamodule import SERDataModule

    base = Path(base_dir or tempfile.mkdtemp(prefix="bench_cache_"))
    cache = base / "waveforms"
    kw = {"corpus": corpus, "manifest_dir": str(manifest_dir), "root": root, **(extra_hparams or {})}

    def setup_all(cache_dir) -> float:
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):  # the datasets' progress bars
            for f in folds:
                SERDataModule(fold=f, cache_dir=str(cache_dir) if cache_dir else None, **kw).setup("fit")
        return round(time.perf_counter() - t0, 2)

    level = logging.getLogger("mtl_aug").level
    logging.getLogger("mtl_aug").setLevel(logging.WARNING)
    try:
        shutil.rmtree(cache, ignore_errors=True)
        cold = setup_all(cache)
        warm = setup_all(cache)
        nocache = setup_all(None)
    finally:
        logging.getLogger("mtl_aug").setLevel(level)
        if base_dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return {"folds": len(folds), "cold_s": cold, "warm_s": warm, "nocache_s": nocache,
            "cold_over_warm": round(cold / warm, 1) if warm else None}


def estimate(wall_s: float, per_fold: list[float], n_total: int, epochs: list[int] | None = None,
             max_epochs: int | None = None, jobs: int = 1) -> dict:
    """10-fold wall time from the folds run: start-up overhead (wall - fold time) + mean fold x n / jobs.
    With ``epochs``/``max_epochs`` also the seconds per epoch and the estimate if every fold ran
    ``max_epochs`` (no early stop)."""
    run = len(per_fold)
    if not run:
        return {"minutes_10_folds": None, "estimated": True}
    overhead = max(0.0, wall_s - sum(per_fold) / min(jobs, run))
    total = wall_s if run >= n_total else overhead + statistics.mean(per_fold) * n_total / jobs
    out = {"minutes_10_folds": round(total / 60, 2), "estimated": run < n_total, "overhead_s": round(overhead, 1),
           "per_fold_s": round(statistics.median(per_fold), 1)}
    if epochs and len(epochs) == run and all(epochs):
        per_epoch = sum(per_fold) / sum(epochs)
        out["per_epoch_s"] = round(per_epoch, 2)
        if max_epochs:
            out["max_epochs"] = max_epochs
            out["minutes_10_folds_at_max_epochs"] = round((overhead + per_epoch * max_epochs * n_total / jobs) / 60, 2)
    return out


def jobs_of(jobs: str, threads: int | None) -> int:
    """The number of parallel runs the cv child will use (``auto`` resolved as the child resolves it)."""
    if str(jobs) != "auto":
        return int(jobs)
    import torch

    from mtl_aug.evaluation import runs

    budget = threads or torch.get_num_threads()
    return 1 if torch.cuda.is_available() else max(1, min(budget, runs.MAX_AUTO_JOBS))


def config_max_epochs() -> int | None:
    import yaml

    cfg = yaml.safe_load((common.REPO / "experiments" / "base.yaml").read_text()) or {}
    return (cfg.get("trainer") or {}).get("max_epochs")


def run(corpus: str = "emodb", system: str = "mtl_aug", seeds: str = "1", folds: str | None = None,
        extra: list[str] = (), keep: str | None = None, manifest_dir: str | None = None,
        json_path: Path | None = None, md_path: Path | None = None, setup_only: bool = False,
        threads: int | None = None, jobs: str = "auto", out: str | None = None) -> dict:
    import bench_data

    common.corpus_env()
    manifest_dir = manifest_dir or str(common.REPO / "data_manifests")
    from mtl_aug.data.folds import fold_names

    all_folds = fold_names(corpus, manifest_dir)
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench_cv_"))
    base.mkdir(parents=True, exist_ok=True)
    cache = base / "cache"
    if out is not None and any(Path(out).glob("runs/*/result.json")):
        raise SystemExit(f"{out} already holds finished runs: the cv command would resume instead of training")
    out = Path(out) if out is not None else base / "out"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    cmd = cv_command(corpus, system, seeds, out, cache, folds, manifest_dir, list(extra), jobs)
    n_jobs = jobs_of(jobs, threads)
    res: dict = {"date": common.provenance()["date"], "git": common.git_info(), "load_before": common.load_average(),
                 "command": "python -m mtl_aug cv " + " ".join(cmd[4:]).replace(str(base), "<tmp>"),
                 "corpus": corpus, "system": system, "seeds": seeds, "threads": threads or "torch default",
                 "jobs": n_jobs,
                 "folds": folds.split(",") if folds else all_folds, "n_folds_total": len(all_folds)}
    try:
        if not setup_only:
            print(f"[bench-cv] {res['command']}", flush=True)
            env = {**os.environ, "PYTHONPATH": str(common.REPO)}
            if threads:
                env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
            child = bench_data.peak_rss_of(cmd, common.REPO, env, timeout=6 * 3600, log_path=base / "cv.log")
            res.update({"wall_s": child["wall_s"], "cpu_s": child["cpu_s"], "exit_code": child["exit_code"],
                        "peak_rss_mb": child["peak_rss_mb"]})
            if child["exit_code"]:
                res["log_tail"] = (base / "cv.log").read_text()[-2000:]
                print(res["log_tail"], file=sys.stderr)
            rows = fold_results(out)
            res["fold_results"] = rows
            res["folds_run"] = len(rows)
            res["epochs"] = [r["epochs"] for r in rows]
            max_epochs = next((int(x.split("=", 1)[1]) for x in extra if x.startswith("--trainer.max_epochs=")),
                              config_max_epochs())
            res.update(estimate(child["wall_s"], [r["seconds"] for r in rows if r["seconds"]], len(all_folds),
                                [r["epochs"] for r in rows if r["seconds"]], max_epochs, n_jobs))
        print("[bench-cv] data setup of every fold: cold / warm / no cache", flush=True)
        res["data_setup"] = measure_data_setup(corpus, all_folds, manifest_dir, base_dir=base / "setup")
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    res["load_after"] = common.load_average()
    json_path = Path(json_path or common.BENCH_JSON)
    md_path = Path(md_path or json_path.with_suffix(".md"))
    results = common.read_results(json_path)
    results.setdefault("provenance", common.provenance())
    results["cv"] = res  # the latest run (the target row); every thread setting's latest run in cv_runs
    if not setup_only:
        results.setdefault("cv_runs", {})[f"jobs={n_jobs},threads={threads or 'default'}"] = res
    results["targets"] = common.evaluate_targets(results)
    common.write_results(results, json_path, md_path)
    for k in ("cv_minutes", "warm_cache_speedup"):
        t = results["targets"].get(k)
        if t:
            print(f"  {'MET ' if t['met'] else 'MISS'}  {t['target']}: {t['note']}")
    print(f"wrote {json_path} and {md_path}")
    return res


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="Flags after -- go to the cv command's LightningCLI unchanged.")
    p.add_argument("--corpus", default="emodb")
    p.add_argument("--system", default="mtl_aug")
    p.add_argument("--seeds", default="1")
    p.add_argument("--folds", default=None, help="comma-separated folds (default: all; fewer -> an estimate)")
    p.add_argument("--manifest-dir", default=None)
    p.add_argument("--keep", default=None, help="keep the cv outputs and logs in this folder")
    p.add_argument("--out", default=None, help="the cv command's --out (kept; e.g. experiments/results/emodb/"
                   "mtl_aug, so that the timed run is also a seed of the results); must hold no finished runs")
    p.add_argument("--setup-only", action="store_true", help="only the cold/warm data-setup comparison")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP/MKL threads of the cv process (default: torch's, as `make cv` runs)")
    p.add_argument("--jobs", default="auto", help="the cv command's --jobs (default auto, as `make cv` runs)")
    p.add_argument("--json", default=None, help="default experiments/results/bench.json")
    p.add_argument("--md", default=None)
    a = p.parse_args(own)
    res = run(a.corpus, a.system, a.seeds, a.folds, extra, a.keep, a.manifest_dir, a.json, a.md, a.setup_only,
              a.threads, a.jobs, a.out)
    return 1 if res.get("exit_code") else 0


if __name__ == "__main__":
    raise SystemExit(main())
