"""Data side of training: loader wait in a real fit, front end / augmentation throughput, peak memory.

    .venv/bin/python benchmarks/bench_data.py [--quick] [--workers 0,1,2] [--no-rss]

* **loader wait**: a real ``lightning.Trainer.fit`` through the ``train`` command's CLI (``make_cli`` with
  ``experiments/base.yaml`` + the corpus + the system configs) on EMODB (``$EMODB_ROOT``, fold 03), or the
  synthetic corpus when EMODB is absent, with :class:`BatchTimer`: compute = ``on_train_batch_start`` ->
  ``on_train_batch_end`` (forward, backward, optimizer step, logging), wait = ``on_train_batch_end`` ->
  the next ``on_train_batch_start`` (fetching the batch, plus Lightning's per-batch bookkeeping: an upper
  bound of the loader's share). The first batch of an epoch waits from ``on_train_epoch_start``.
  One torch thread by default (``n_threads``): on this shared 2-core machine two spinning threads make
  the compute time erratic; at 2 threads on an idle machine compute is faster, so the share would be
  up to about twice the 1-thread figure.
* **front end / augmentation throughput** in seconds of audio per second (x real time), a batch of
  32 x 3 s on one thread; the speed-perturbation variants (``torchaudio.transforms.Speed`` per factor
  group, as the policy does, vs ``torchaudio.functional.resample`` per factor group, which rebuilds its
  sinc kernel on every call, vs one call per row).
* **peak resident memory**: ``ru_maxrss`` of a child ``python -m mtl_aug train ...`` that fits one short
  epoch and tests (spawned through a small launcher: see ``peak_rss_of``).
"""

from __future__ import annotations

import argparse
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


# -- corpus ---------------------------------------------------------------------------------------------
def default_corpus() -> dict:
    """EMODB fold 03 when its manifest and audio are here, else None (use :func:`synthetic_corpus`)."""
    common.corpus_env()
    root = Path(os.environ["EMODB_ROOT"])
    manifest_dir = common.REPO / "data_manifests"
    if (manifest_dir / "emodb" / "manifest.csv").exists() and root.is_dir() and any(root.iterdir()):
        return {"corpus": "emodb", "fold": "03", "root": str(root), "manifest_dir": str(manifest_dir),
                "cache_dir": str(common.REPO / ".cache" / "waveforms"), "synthetic": False}
    return {}


def synthetic_corpus(base: str | Path, n_speakers: int = 6, utts_per_emotion: int = 12, n_unlabelled: int = 40) -> dict:
    """Generate + prepare the synthetic corpus under ``base`` (``python -m mtl_aug synth`` +
    ``python -m mtl_aug prepare synthetic``, in process)."""
    from mtl_aug.data.folds import read_folds
    from mtl_aug.data.prepare import prepare
    from mtl_aug.data.synthetic import generate_synthetic

    base = Path(base)
    root = generate_synthetic(base / "audio", n_speakers=n_speakers, utts_per_emotion=utts_per_emotion,
                              n_unlabelled=n_unlabelled)
    manifest_dir = base / "manifests"
    for corpus in ("synthetic", "synthetic_unlabelled"):
        prepare(corpus, root=str(root), out_dir=str(manifest_dir), progress=False)
    fold = read_folds(manifest_dir / "synthetic" / "folds.json")["folds"][0]["name"]
    return {"corpus": "synthetic", "fold": fold, "root": str(root), "manifest_dir": str(manifest_dir),
            "cache_dir": str(base / "cache"), "synthetic": True}


# -- loader wait in a real fit ----------------------------------------------------------------------------
def _batch_timer_class():
    import lightning as L

    class BatchTimer(L.Callback):
        """Per training batch: ``wait`` (previous batch end or epoch start -> batch start) and ``compute``
        (batch start -> batch end), with the epoch and batch index."""

        def __init__(self) -> None:
            self.rows: list[dict] = []
            self._mark = 0.0
            self._start = 0.0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._mark = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self._start = time.perf_counter()
            self.rows.append({"epoch": trainer.current_epoch, "batch": batch_idx, "wait": self._start - self._mark})

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._mark = time.perf_counter()
            self.rows[-1]["compute"] = self._mark - self._start

    return BatchTimer


def wait_stats(rows: list[dict]) -> dict:
    """Loader-wait share = sum(wait) / sum(wait + compute): over all batches, over the batches after the
    first of each epoch (steady state), and over the epochs after the first (no process warm-up)."""
    def share(sel: list[dict]) -> float | None:
        w = sum(r["wait"] for r in sel)
        c = sum(r["compute"] for r in sel)
        return round(w / (w + c), 4) if sel and (w + c) > 0 else None

    rows = [r for r in rows if "compute" in r]
    later = [r for r in rows if r["epoch"] > min((x["epoch"] for x in rows), default=0)]
    return {
        "batches": len(rows),
        "wait_share_all": share(rows),
        "wait_share_after_first_epoch": share(later),
        "wait_share_steady": share([r for r in rows if r["batch"] > 0]),
        "median_wait_ms": round(1000 * statistics.median(r["wait"] for r in rows), 2) if rows else None,
        "median_first_batch_wait_ms": round(1000 * statistics.median(r["wait"] for r in rows if r["batch"] == 0), 2)
        if any(r["batch"] == 0 for r in rows) else None,
        "median_compute_ms": round(1000 * statistics.median(r["compute"] for r in rows), 1) if rows else None,
    }


def measure_data_wait(corpus: dict, system: str = "mtl_aug", num_workers: int | None = None, max_epochs: int = 3,
                      limit_train_batches: int | None = None, extra: list[str] = (), n_threads: int | None = 1,
                      out_dir: str | Path | None = None) -> dict:
    """One real fit (validation included, as in a run) with a :class:`BatchTimer`; ``num_workers=None``
    keeps the configs' default, ``n_threads=None`` torch's default thread count."""
    import logging
    import warnings

    from mtl_aug.training import make_cli

    tmp = Path(out_dir or tempfile.mkdtemp(prefix="bench_wait_"))
    args = common.train_args(corpus, system, tmp, max_epochs)
    if num_workers is not None:
        args.append(f"--data.num_workers={num_workers}")
    if limit_train_batches is not None:
        args.append(f"--trainer.limit_train_batches={limit_train_batches}")
    args += list(extra)
    timer = _batch_timer_class()()
    levels = {n: logging.getLogger(n).level for n in ("lightning.pytorch", "lightning.fabric", "mtl_aug")}
    try:
        with common.threads(n_threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for n in levels:
                logging.getLogger(n).setLevel(logging.WARNING)
            cli = make_cli(args, run=False)
            cli.trainer.callbacks.append(timer)
            t0 = time.perf_counter()
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
            fit_s = time.perf_counter() - t0
            workers = cli.datamodule.hparams.num_workers
            batch_size = cli.datamodule.hparams.batch_size
            import torch

            threads_used = torch.get_num_threads()
    finally:
        for n, lvl in levels.items():
            logging.getLogger(n).setLevel(lvl)
        if out_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"corpus": corpus["corpus"], "fold": corpus["fold"], "system": system, "num_workers": workers,
            "batch_size": batch_size, "epochs": max_epochs, "threads": threads_used, "fit_s": round(fit_s, 1),
            **wait_stats(timer.rows)}


def compare_workers(corpus: dict, workers=(0, 1, 2), **kw) -> dict:
    """``measure_data_wait`` for each ``num_workers`` (sequentially; each is its own fit)."""
    return {str(n): measure_data_wait(corpus, num_workers=n, **kw) for n in workers}


from bench_frontend import measure_frontend_augment, measure_speed_variants  # noqa: E402,F401 (run_all uses them from here)
from bench_memory import (measure_peak_rss, measure_rss_baselines, peak_rss_of,  # noqa: E402,F401 (run_all uses them from here)
                          train_command)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workers", default="0,1,2", help="num_workers values to compare")
    p.add_argument("--no-rss", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    res: dict = {"load_before": common.load_average()}
    tmp = None
    corpus = default_corpus() if not a.quick else {}
    if not corpus:
        tmp = tempfile.mkdtemp(prefix="bench_synth_")
        corpus = synthetic_corpus(tmp, *((4, 4, 8) if a.quick else ()))
    try:
        size = (4, 0.5, 2) if a.quick else (32, 3.0, 7)
        res["frontend_augment"] = measure_frontend_augment(*size)
        res["speed_variants"] = measure_speed_variants(*size)
        kw = {"max_epochs": 1, "limit_train_batches": 2} if a.quick else {}
        res["data_wait"] = compare_workers(corpus, [int(w) for w in a.workers.split(",")], **kw)
        if not a.no_rss:
            res["peak_rss"] = measure_peak_rss(corpus, limit_train_batches=2 if a.quick else 4)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    res["load_after"] = common.load_average()
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
