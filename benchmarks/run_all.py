"""The benchmark suite (``make bench``): writes ``experiments/results/bench.{json,md}``.

    .venv/bin/python benchmarks/run_all.py                 # everything but the cross-validation run
    .venv/bin/python benchmarks/run_all.py --quick         # tiny sizes, synthetic corpus: checks the code paths
    .venv/bin/python benchmarks/run_all.py --only training,inference
    .venv/bin/python benchmarks/run_all.py --candidates    # also the off-by-default speed-up candidates
    .venv/bin/python benchmarks/run_all.py --candidates --compile   # ... and torch.compile (minutes)

Sections: ``training`` (bench_training), ``allocator`` (before/after of the glibc allocator setting a CPU fit
applies, in fresh processes), ``frontend`` (front end, augmentations, speed-perturbation
variants), ``data_wait`` (real fit, num_workers 0/1/2), ``inference`` (bench_inference's ``measure_rtf``),
``rss`` (peak memory of a short training run). The cross-validation wall time is ``make bench-cv``
(``benchmarks/bench_cv.py``), which adds its numbers to the same files; a run of this script keeps
the ``cv`` section (and any section not re-run with ``--only``) of the existing JSON.
``--quick`` writes ``bench_quick.{json,md}`` unless ``--json``/``--md`` are given, so it never
overwrites the real figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SECTIONS = ("training", "allocator", "frontend", "data_wait", "inference", "rss")


def run(sections=SECTIONS, quick: bool = False, candidates: bool = False, compile_: bool = False, workers=(0, 1, 2),
        json_path: Path | None = None, md_path: Path | None = None, corpus: dict | None = None,
        verbose: bool = True) -> dict:
    """Run ``sections`` and write the JSON + markdown report; returns the results dict."""
    import torch

    import bench_data
    import bench_training

    json_path = Path(json_path or (common.RESULTS / ("bench_quick.json" if quick else "bench.json")))
    md_path = Path(md_path or json_path.with_suffix(".md"))
    res = common.read_results(json_path)
    res.update({"provenance": common.provenance(), "mode": "quick" if quick else "full"})
    res.setdefault("sections", {})
    tmp = None
    try:
        if corpus is None and any(s in sections for s in ("data_wait", "rss")):
            corpus = {} if quick else bench_data.default_corpus()
            if not corpus:  # no EMODB here (or quick mode): the synthetic corpus
                tmp = tempfile.mkdtemp(prefix="bench_synth_")
                corpus = bench_data.synthetic_corpus(tmp, *((4, 4, 8) if quick else ()))
        if "training" in sections:
            with common.section(res["sections"], "training", verbose):
                bs, sec, rounds = (4, 0.5, 2) if quick else (32, 3.0, 15)
                res["training"] = bench_training.measure_training(bs, sec, rounds, warmup=1 if quick else 2)
                if verbose:
                    bench_training.print_training(res["training"])
        if "allocator" in sections:
            with common.section(res["sections"], "allocator", verbose):
                sizes = ((0.3, 2, 1, 1),) if quick else ((3.0, 32, 4, 2), (2.0, 32, 4, 2))
                res["allocator"] = [bench_training.measure_allocator(*size) for size in sizes]
        if candidates:
            with common.section(res["sections"], "candidates", verbose):
                bs, sec, rounds = (4, 0.5, 2) if quick else (32, 3.0, 7)
                res["candidates"] = bench_training.measure_candidates(bs, sec, rounds, compile_=compile_)
        if "frontend" in sections:
            with common.section(res["sections"], "frontend", verbose):
                size = (4, 0.5, 2) if quick else (32, 3.0, 9)
                res["frontend_augment"] = bench_data.measure_frontend_augment(*size)
                res["speed_variants"] = bench_data.measure_speed_variants(*size)
        if "data_wait" in sections:
            with common.section(res["sections"], "data_wait", verbose):
                from mtl_aug.data.datamodule import SERDataModule

                res["default_num_workers"] = _config_num_workers(SERDataModule)
                kw = {"max_epochs": 1, "limit_train_batches": 1,
                      "extra": ["--data.batch_size=4", "--data.segment_seconds=0.5"]} if quick else {"max_epochs": 3}
                res["data_wait"] = bench_data.compare_workers(corpus, workers, **kw)
                if not quick:  # the default configuration once more at torch's default thread count
                    res["data_wait_default_threads"] = bench_data.measure_data_wait(
                        corpus, num_workers=res["default_num_workers"], n_threads=None, **kw)
        if "inference" in sections:
            with common.section(res["sections"], "inference", verbose):
                from bench_inference import measure_rtf

                from mtl_aug.tasks import MTLAugModule

                torch.manual_seed(0)
                backends = ("eager",) if quick else ("eager", "eager_windowed", "torchscript", "onnxruntime")
                res["inference"] = measure_rtf(MTLAugModule().eval(), 2.0 if quick else 10.0, 2 if quick else 7,
                                               backends=backends)
        if "rss" in sections:
            with common.section(res["sections"], "rss", verbose):
                systems = ("mtl_aug",) if quick else ("mtl_aug", "mtl_aug_unlabelled")
                extra = ["--data.batch_size=4", "--data.segment_seconds=0.5"] if quick else []
                res["peak_rss"] = {s: bench_data.measure_peak_rss(corpus, s, 1, 1 if quick else 4, extra)
                                   for s in systems}
                if not quick:
                    res["rss_baselines"] = bench_data.measure_rss_baselines()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    res["targets"] = common.evaluate_targets(res)
    common.write_results(res, json_path, md_path)
    if verbose:
        for t in res["targets"].values():
            print(f"  {'MET ' if t['met'] else 'MISS'}  {t['target']}: {t['note']}")
        print(f"wrote {json_path} and {md_path}")
    return res


def _config_num_workers(datamodule_cls) -> int:
    """``data.num_workers`` of experiments/base.yaml, else the DataModule's default."""
    import inspect

    import yaml

    cfg = yaml.safe_load((common.REPO / "experiments" / "base.yaml").read_text()) or {}
    nw = (cfg.get("data") or {}).get("num_workers")
    if nw is None:
        nw = inspect.signature(datamodule_cls.__init__).parameters["num_workers"].default
    return int(nw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and the synthetic corpus (code paths only)")
    p.add_argument("--only", default=None, help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--candidates", action="store_true",
                   help="also time the off-by-default candidates (channels_last, the former two-pass GroupNorm, speed crop)")
    p.add_argument("--compile", action="store_true", help="with --candidates: torch.compile too (minutes)")
    p.add_argument("--workers", default="0,1,2", help="num_workers values of the loader-wait section")
    p.add_argument("--json", default=None, help="default experiments/results/bench.json (bench_quick.json with --quick)")
    p.add_argument("--md", default=None, help="default: the JSON path with .md")
    a = p.parse_args(argv)
    sections = SECTIONS if not a.only else tuple(s.strip() for s in a.only.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        p.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    common.corpus_env()
    run(sections, a.quick, a.candidates or a.compile, a.compile, tuple(int(w) for w in a.workers.split(",")), a.json, a.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
