"""Runs of the evaluation suite: make them, train them (in parallel when asked), resume them.

A *run* is one training of one fold × seed, in its own directory ``<out>/runs/<fold>_s<seed>/``
(Lightning logs and checkpoints below it). When it finishes, its results are written atomically to
``<run dir>/result.json`` (temporary file + ``os.replace``): a run directory with that file is done
and is never redone; a run directory without it is the leftover of an interrupted run and is wiped
and restarted. So any driver can be killed at any moment and rerun with the same command.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm.auto import tqdm

from mtl_aug import recipes
from mtl_aug.recipes import OtherRecipeError
from mtl_aug.data import folds
from mtl_aug.io import atomic_write_json, read_json
from mtl_aug.provenance import git_commit, machine

RESULT_FILE = "result.json"
RESULTS_DIR = Path("experiments/results")

# Names of the runs executed (not loaded from disk) by this process: tests assert resumption with it.
EXECUTED: list[str] = []


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> seeds 0, 1, 2 (a count); ``"0,4,7"`` or ``"5,"`` -> exactly those seeds."""
    text = str(text).strip()
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"--seeds {text}: a count must be >= 1 (for seed {text} alone write '{text},')")
    return list(range(n))


def fold_names(corpus: str, manifest_dir: str | Path = "data_manifests") -> list[str]:
    try:
        return folds.fold_names(corpus, manifest_dir)
    except FileNotFoundError as e:
        from mtl_aug.data.corpora.custom import no_folds_reason  # a user corpus without speakers says why

        raise SystemExit(no_folds_reason(corpus, manifest_dir) or str(e)) from None


def select_folds(available: list[str], wanted: str | None) -> list[str]:
    if not wanted:
        return available
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown folds {unknown}; the corpus has {available}")
    return names


# -- runs ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One fold x seed training of one system."""

    fold: str
    seed: int
    run_dir: Path
    args: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.fold}_s{self.seed}"

    @property
    def result_path(self) -> Path:
        return self.run_dir / RESULT_FILE

    def load(self) -> dict | None:
        res = read_json(self.result_path)
        return res if res and res.get("finished") else None


def make_runs(corpus: str, system: str, folds: Iterable[str], seeds: Iterable[int], out: Path,
              max_epochs: int | None = None, extra: Sequence[str] = (), test_corpus: str | None = None,
              manifest_dir: str | Path = "data_manifests") -> list[Run]:
    runs = []
    for seed in seeds:
        for fold in folds:
            run_dir = Path(out) / "runs" / f"{fold}_s{seed}"
            runs.append(Run(fold, seed, run_dir, recipes.training_args(corpus, system, fold, seed, run_dir, max_epochs,
                                                                       extra, test_corpus, manifest_dir)))
    return runs


def normalized_out(out: Path, normalize: str) -> Path:
    """Result directory of a system run with a non-default feature normalisation: ``<out>_<mode>norm``."""
    return out if normalize == "utterance" else out.with_name(f"{out.name}_{normalize}norm")


def apply_normalization(run_list: Sequence[Run], normalize: str) -> None:
    """Speaker- or corpus-level feature normalisation for every run (train and test alike): the front end's
    mode of a neural run (``mtl_aug.features.GroupNormalization``), the baseline's own ``normalize``;
    "utterance" leaves the runs as they are. A flag the recorded args already end with is not repeated."""
    for r in run_list:
        for flag in recipes.normalization_args(normalize):
            if flag not in r.args:
                r.args.append(flag)


def checkpoints(run_dir: Path) -> list[str]:
    return sorted(str(p) for p in Path(run_dir).rglob("*.ckpt"))


def execute(run: Run) -> dict:
    """Train + test one run (``make_cli`` + ``run_training``, or a baseline's fit) and write its result JSON
    atomically."""
    from mtl_aug.baseline.run import train_and_test
    from mtl_aug.callbacks import EpochSummary
    from mtl_aug.training import make_cli, run_training

    if run.run_dir.exists():
        shutil.rmtree(run.run_dir)  # the leftovers of an interrupted run (finished runs never reach here)
    run.run_dir.mkdir(parents=True)
    start = time.perf_counter()
    if recipes.is_baseline(run.args):
        return _finish(run, train_and_test(run.args, run.run_dir), start)
    # the args are complete: the warning about sys.argv holding the driver's own flags does not apply
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cli = make_cli(list(run.args), run=False)
    for cb in cli.trainer.callbacks:  # parallel runs print into one log: each epoch line names its run
        if isinstance(cb, EpochSummary) and not cb.prefix:
            cb.prefix = f"fold {run.fold} seed {run.seed} |"
    return _finish(run, run_training(cli), start)


def _finish(run: Run, result: dict, start: float) -> dict:
    """A run's result with its provenance, written atomically to ``result.json`` (the run is then done)."""
    import torch

    result.update({
        "fold": run.fold, "seed": run.seed, "seconds": round(time.perf_counter() - start, 2), "args": run.args,
        "run_dir": str(run.run_dir), "result_json": str(run.result_path), "git_commit": git_commit()[0],
        "recipe": recipes.recipe_fingerprint(run.args),
        "machine": machine(), "torch_threads": torch.get_num_threads(),
        "checkpoints": checkpoints(run.run_dir),
        "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    })
    atomic_write_json(run.result_path, result)
    EXECUTED.append(run.name)
    return result


MAX_AUTO_JOBS = 4  # each CPU training process holds ~1.7 GB (bench.md); more rarely pays on one machine


def auto_jobs() -> int:
    """``--jobs auto``: 1 on a GPU (one run saturates it), else the torch thread budget (cores or
    OMP_NUM_THREADS), at most MAX_AUTO_JOBS, so that each run gets one thread."""
    import torch

    if torch.cuda.is_available():
        return 1
    return max(1, min(torch.get_num_threads(), MAX_AUTO_JOBS))


def parse_jobs(text: str | int) -> int:
    if str(text) == "auto":
        return auto_jobs()
    n = int(text)
    if n < 1:
        raise SystemExit("--jobs needs 'auto' or a count >= 1")
    return n


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def worker_threads(jobs: int) -> int:
    """Torch threads per worker: the parent's thread budget (OMP_NUM_THREADS or the cores) split evenly."""
    import torch

    return max(1, torch.get_num_threads() // jobs)


def _run_parallel(todo: Sequence[Run], jobs: int, report: Callable[[Run, dict], None],
                  fn: Callable[[Run], dict] = execute) -> None:
    """``fn`` (a picklable function) on each run in one of ``jobs`` spawned processes; ``report`` as each
    one finishes, so that a fold's summary line appears when it is done, not when the last one is."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(worker_threads(jobs),))
    try:
        pending = {pool.submit(fn, r): r for r in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                run = pending.pop(fut)
                report(run, fut.result())  # a failed run raises here; the others are cancelled below
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_all(runs: Sequence[Run], desc: str, on_result: Callable[[Run, dict, bool], str] | None = None,
            force: bool = False, executor: Callable[[Run], dict] = execute,
            complete: Callable[[Run, dict], bool] | None = None, jobs: int = 1) -> list[dict]:
    """Every run under one tqdm bar; finished runs are loaded, not redone (unless ``force``).

    ``on_result(run, result, cached)`` returns the one-line summary printed for the run; a finished
    result for which ``complete(run, result)`` is False (e.g. it lacks a condition asked for now) is redone.
    ``jobs > 1`` trains that many runs at once in separate processes, each with an equal share of the
    torch threads (on a CPU machine, ``jobs`` = cores with 1 thread each is faster than one run using
    all cores: small batches do not scale across threads). Results come back in ``runs`` order.
    """
    results = []
    done = {r.name: r.load() for r in runs} if not force else {}
    check_recipes(runs, done)
    if complete is not None:
        done = {r.name: done[r.name] for r in runs if done.get(r.name) and complete(r, done[r.name])}
    n_done = sum(1 for v in done.values() if v)
    if n_done:
        tqdm.write(f"{desc}: {n_done} of {len(runs)} runs already finished, resuming")
    bar = tqdm(total=len(runs), desc=desc, unit="run", dynamic_ncols=True, file=sys.stderr)
    todo = [r for r in runs if not done.get(r.name)]
    if jobs > 1 and len(todo) > 1 and executor is execute:
        by_name = dict(done)

        def report(run: Run, result: dict) -> None:
            EXECUTED.append(run.name)  # the worker's own list does not reach this process
            by_name[run.name] = result
            if on_result is not None:
                tqdm.write(on_result(run, result, False))
            bar.update(1)

        try:
            for run in runs:
                if done.get(run.name) and on_result is not None:
                    tqdm.write(on_result(run, done[run.name], True))
                    bar.update(1)
            _run_parallel(todo, jobs, report)
        finally:
            bar.close()
        return [by_name[r.name] for r in runs]
    try:
        for run in runs:
            cached = done.get(run.name)
            result = cached if cached else executor(run)
            results.append(result)
            if on_result is not None:
                tqdm.write(on_result(run, result, bool(cached)))
            bar.update(1)
    finally:
        bar.close()
    return results


def check_recipes(run_list: Sequence[Run], done: dict) -> None:
    """Refuse to mix recipes in one results folder (:func:`mtl_aug.recipes.other_recipe`)."""
    other = [r.name for r in run_list if recipes.other_recipe(r.args, done.get(r.name))]
    if other:
        raise OtherRecipeError(
            f"{run_list[0].run_dir.parent.parent}: {len(other)} finished run(s) ({', '.join(other[:4])}"
            f"{', ...' if len(other) > 4 else ''}) were trained with another recipe (config files or flags changed "
            "since); give a new --out, or --force to retrain them")


def fmt(x, spec: str = ".4f") -> str:
    return "nan" if x is None else format(float(x), spec)


def trained_on_val_note(results: Sequence[dict]) -> str:
    """Protocol suffix for runs trained with ``data.train_on_val`` (their validation speakers were training speakers)."""
    n = sum(bool((r.get("fold_info") or {}).get("train_on_val")) for r in results)
    if not n:
        return ""
    who = "every run" if n == len(results) else f"{n} of {len(results)} runs"
    return f"; {who} also trained on its validation speakers (data.train_on_val): validation UAR not held out"
