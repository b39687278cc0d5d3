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
import subprocess
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
    args = ["--config", str(common.REPO / "experiments/base.yaml"),
            "--config", str(common.REPO / f"experiments/corpora/{corpus['corpus']}.yaml"),
            "--config", str(common.REPO / f"experiments/systems/{system}.yaml"),
            f"--data.fold={corpus['fold']}", f"--data.root={corpus['root']}",
            f"--data.manifest_dir={corpus['manifest_dir']}", f"--data.cache_dir={corpus['cache_dir']}",
            f"--trainer.max_epochs={max_epochs}", f"--trainer.default_root_dir={tmp}",
            f"--trainer.logger.init_args.save_dir={tmp}", "--trainer.enable_progress_bar=false"]
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


# -- front end and augmentation throughput ---------------------------------------------------------------
def front_end_before_power_change(fe):
    """A copy of ``fe`` whose mel spectrogram is torchaudio's own (power as ``abs().pow(2)``): the front end
    before the ``PowerMelSpectrogram`` change, kept here for the before/after figure."""
    import copy

    import torchaudio

    old = copy.deepcopy(fe)
    if type(old.mel) is not torchaudio.transforms.MelSpectrogram:
        old.mel.__class__ = torchaudio.transforms.MelSpectrogram
    return old


def measure_frontend_augment(batch_size: int = 32, seconds: float = 3.0, rounds: int = 7, warmup: int = 1) -> dict:
    """x real time (seconds of audio per second) of the front end, each augmentation and the whole policy,
    batched on one CPU thread, no autograd (the policy runs on waveforms without gradients in training)."""
    import torch

    from mtl_aug.augmentations import Mixup, SpecAugment, SpeedPerturb

    import bench_training as bt

    from mtl_aug.tasks.base import soft_targets

    module = bt.make_module("mtl_aug")
    fe, policy = module.front_end, module.augment
    batch = bt.make_rows(batch_size, seconds)
    wave, lengths = batch["wave"], batch["lengths"]
    targets = soft_targets(batch["label"], 4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        feats, frame_lengths = fe(wave, lengths)
    policy_args = module.hparams["augment"]["init_args"]
    kw = {k: policy_args[k] for k in ("speed_factors", "freq_mask_param", "time_mask_param", "n_freq_masks",
                                      "n_time_masks", "mixup_alpha")}
    speed, spec, mix = SpeedPerturb(sample_rate=fe.sample_rate, **kw), SpecAugment(**kw), Mixup(**kw)
    fe_before = front_end_before_power_change(fe)
    fns = {
        "front_end": lambda: fe(wave, lengths),
        "speed": lambda: speed.on_wave(wave, lengths, g),
        "specaug": lambda: spec.on_feats(feats, frame_lengths, targets, g),
        "mixup": lambda: mix.on_feats(feats, frame_lengths, targets, g),
        "policy": lambda: policy(wave, lengths, targets, fe),
        "front_end_before": lambda: fe_before(wave, lengths),
    }
    with torch.no_grad(), common.one_thread():
        res = common.compare(fns, "front_end", rounds, warmup)
    audio = batch_size * seconds
    out: dict = {"batch_size": batch_size, "seconds": seconds, "threads": 1, "rounds": rounds, "parts": {}}
    for name, r in res.items():
        out["parts"][name] = {**r, "x_realtime": round(audio / r["median_s"], 1)}
    out["notes"] = {
        "front_end": "LogMelFrontEnd: STFT, mel, log with floor, utterance normalisation, masking",
        "speed": "every row speed-perturbed (one of speed_factors each), waveform; in the policy only a chunk is",
        "specaug": "every row masked, on log-mels", "mixup": "every row mixed, on log-mels",
        "policy": "the whole AugmentationPolicy on a batch: chunking, speed on its chunk, ONE front-end pass "
                  "(its output is also clean_feats), SpecAugment and mixup on their chunks",
        "front_end_before": "before: torchaudio's MelSpectrogram power as abs().pow(2) (see bench_history.md)",
    }
    out["speedups"] = {
        "front_end_power": round(res["front_end_before"]["median_s"] / res["front_end"]["median_s"], 3),
    }
    return out


class _FunctionalSpeed:
    """Drop-in for one ``torchaudio.transforms.Speed`` that calls ``torchaudio.functional.resample`` (which
    rebuilds its sinc kernel on every call) instead of the transform's cached kernel."""

    def __init__(self, speed) -> None:
        self.src, self.tgt = speed.source_sample_rate, speed.target_sample_rate

    def __call__(self, wave, lengths):
        import torch
        import torchaudio

        out = torchaudio.functional.resample(wave, self.src, self.tgt)
        return out, torch.ceil(lengths * self.tgt / self.src).to(lengths.dtype)


def measure_speed_variants(batch_size: int = 32, seconds: float = 3.0, rounds: int = 7, warmup: int = 1,
                           factors=(0.9, 1.1), sample_rate: int = 16000) -> dict:
    """Speed perturbation of a whole batch (random factor per row), one thread, three implementations that
    all return the same padded batch + lengths (the policy's ``SpeedPerturb.on_wave`` assembly):
    ``torchaudio.transforms.Speed`` per factor group (the policy: cached kernel, one call per group),
    ``torchaudio.functional.resample`` per factor group (kernel rebuilt per call), ``Speed`` per row."""
    import types

    import torch

    from mtl_aug.augmentations import SpeedPerturb
    from mtl_aug.masking import pad_to, zero_padding

    import bench_training as bt

    batch = bt.make_rows(batch_size, seconds)
    wave, lengths = batch["wave"], batch["lengths"]
    policy = SpeedPerturb(list(factors), sample_rate)
    functional = SpeedPerturb(list(factors), sample_rate)
    fast = list(functional.speeds)
    del functional.speeds  # a plain list instead of the ModuleList (on_wave only iterates over it)
    functional.speeds = [_FunctionalSpeed(s) for s in fast]
    per_row = SpeedPerturb(list(factors), sample_rate)

    def on_wave_per_row(self, wave, lengths, generator):
        which = torch.randint(len(self.speeds), (wave.size(0),), generator=generator)
        outs = [self.speeds[int(which[r])](wave[r:r + 1], lengths[r:r + 1]) for r in range(wave.size(0))]
        t = max(w.size(1) for w, _ in outs)
        out = torch.cat([pad_to(w, t) for w, _ in outs])
        out_len = torch.cat([l.clamp(max=t) for _, l in outs])
        return zero_padding(out, out_len), out_len

    per_row.on_wave = types.MethodType(on_wave_per_row, per_row)
    fns = {name: (lambda m=m: m.on_wave(wave, lengths, torch.Generator().manual_seed(0)))
           for name, m in (("Speed_per_factor_group", policy), ("functional_resample_per_group", functional),
                           ("Speed_per_row", per_row))}
    with torch.no_grad():
        ref = fns["Speed_per_factor_group"]()
        same = all(torch.allclose(ref[0], fns[k]()[0], atol=1e-5) and torch.equal(ref[1], fns[k]()[1])
                   for k in ("functional_resample_per_group", "Speed_per_row"))
    with torch.no_grad(), common.one_thread():
        res = common.compare(fns, "Speed_per_factor_group", rounds, warmup)
    audio = batch_size * seconds
    return {"batch_size": batch_size, "seconds": seconds, "factors": list(factors), "threads": 1,
            "same_output": bool(same),
            "variants": {k: {**v, "x_realtime": round(audio / v["median_s"], 1)} for k, v in res.items()}}


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
    cmd = [sys.executable, "-m", "mtl_aug", "train",
           "--config", str(common.REPO / "experiments/base.yaml"),
           "--config", str(common.REPO / f"experiments/corpora/{corpus['corpus']}.yaml"),
           "--config", str(common.REPO / f"experiments/systems/{system}.yaml"),
           f"--data.fold={corpus['fold']}", f"--data.root={corpus['root']}",
           f"--data.manifest_dir={corpus['manifest_dir']}", f"--data.cache_dir={corpus['cache_dir']}",
           f"--trainer.max_epochs={max_epochs}", f"--trainer.default_root_dir={out_dir}",
           f"--trainer.logger.init_args.save_dir={out_dir}", "--trainer.enable_progress_bar=false"]
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
