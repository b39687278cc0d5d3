"""Shared run/resume helpers of the evaluation suite.

A *run* is one training of one fold × seed, in its own directory ``<out>/runs/<fold>_s<seed>/``
(Lightning logs and checkpoints below it). When it finishes, its results are written atomically to
``<run dir>/result.json`` (temporary file + ``os.replace``): a run directory with that file is done
and is never redone; a run directory without it is the leftover of an interrupted run and is wiped
and restarted. So any driver can be killed at any moment and rerun with the same command.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

NEURAL_SYSTEMS = ("stl", "stl_aug", "mtl_aug", "mtl_aug_unlabelled", "no_recon", "no_augcls")
BASELINE_SYSTEMS = ("egemaps_svm", "compare_svm")  # openSMILE functionals + SVM (mtl_aug.baseline)
SYSTEMS = NEURAL_SYSTEMS + BASELINE_SYSTEMS
REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_FILE = "result.json"
RESULTS_DIR = Path("experiments/results")

# Names of the runs executed (not loaded from disk) by this process: tests assert resumption with it.
EXECUTED: list[str] = []


# -- small I/O helpers ---------------------------------------------------------------------------------
def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``: readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, default=str))


def read_json(path: str | Path) -> dict | None:
    """The JSON object at ``path``, or None when it is missing or unreadable (a torn write)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


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
    1e-6 difference in the first steps grows into a different model (README, "Reproducibility")."""
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


# -- configuration -------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> seeds 0, 1, 2 (a count); ``"0,4,7"`` or ``"5,"`` -> exactly those seeds."""
    text = str(text).strip()
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("--seeds needs a count >= 1 or a comma-separated list")
    return list(range(n))


def config_path(rel: str) -> str:
    """A config file relative to the working directory when it exists there, else to the repository."""
    return rel if Path(rel).exists() else str(REPO_ROOT / rel)


def config_args(corpus: str, system: str, manifest_dir: str | Path = "data_manifests") -> list[str]:
    """The ``--config`` files of a system on a corpus: base + corpus + system for a neural system; corpus +
    system for a baseline (its YAML declares ``family: baseline``; the base file's trainer and optimiser
    settings do not apply to it). The corpus config is ``experiments/corpora/<corpus>.yaml``, or for a user's
    own corpus the ``config.yaml`` that ``prepare --csv/--folders`` wrote beside its manifest."""
    from mtl_aug.baseline.run import FAMILY, declared_family

    system_yaml = config_path(f"experiments/systems/{system}.yaml")
    if system not in SYSTEMS and not Path(system_yaml).exists():
        raise SystemExit(f"unknown system '{system}': one of {', '.join(SYSTEMS)}")
    corpus_yaml = config_path(f"experiments/corpora/{corpus}.yaml")
    if not Path(corpus_yaml).exists():
        corpus_yaml = str(Path(manifest_dir) / corpus / "config.yaml")  # a user corpus (mtl_aug.data.custom_corpus)
    if not Path(corpus_yaml).exists():
        raise SystemExit(f"no corpus config experiments/corpora/{corpus}.yaml (nor {corpus_yaml} of your own corpus: "
                         f"python -m mtl_aug prepare --csv/--folders ... --name {corpus})")
    base = [] if declared_family(system_yaml) == FAMILY else ["--config", config_path("experiments/base.yaml")]
    return base + ["--config", corpus_yaml, "--config", system_yaml]


def fold_names(corpus: str, manifest_dir: str | Path = "data_manifests") -> list[str]:
    path = Path(manifest_dir) / corpus / "folds.json"
    if not path.exists():
        from mtl_aug.data.corpora.custom import no_folds_reason  # a user corpus without speakers says why

        raise SystemExit(no_folds_reason(corpus, manifest_dir)
                         or f"no folds for corpus '{corpus}' at {path}: run `python -m mtl_aug prepare {corpus}` first")
    return [str(f["name"]) for f in json.loads(path.read_text())["folds"]]


def select_folds(available: list[str], wanted: str | None) -> list[str]:
    if not wanted:
        return available
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown folds {unknown}; the corpus has {available}")
    return names


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default="3", help="a count N (seeds 0..N-1) or a comma list (default 3)")
    p.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("--normalize", default="utterance", choices=list(NORMALIZATIONS),
                   help="log-mel normalisation: per utterance (the model's own), per speaker or per corpus "
                        "(statistics over each group's audio, test speakers included, never their labels); "
                        "results go to <system folder>_<mode>norm (cv/cross without --out; noise/adversarial "
                        "read <results-dir>/<system>_<mode>norm)")
    p.add_argument("--manifest-dir", default="data_manifests")
    p.add_argument("--force", action="store_true", help="redo finished runs too")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs (finished or not), check that the first one's configuration parses; train nothing")


def add_jobs_argument(p: argparse.ArgumentParser, unit: str = "fold x seed runs") -> None:
    p.add_argument("--jobs", default="auto",
                   help=f"train this many {unit} at once, each in its own process with an equal share of the torch "
                        "threads; 'auto' (default): 1 on a GPU, else one per core (at most 4)")


def split_extra(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``[own args] -- [LightningCLI flags]`` -> (own, extra)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


# -- runs ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One fold x seed training of one system."""

    fold: str
    seed: int
    run_dir: Path
    args: list[str] = field(default_factory=list)
    prepare: Callable | None = None  # prepare(cli) before training, e.g. to add a callback

    @property
    def name(self) -> str:
        return f"{self.fold}_s{self.seed}"

    @property
    def result_path(self) -> Path:
        return self.run_dir / RESULT_FILE

    def load(self) -> dict | None:
        res = read_json(self.result_path)
        return res if res and res.get("finished") else None


def training_args(corpus: str, system: str, fold: str, seed: int, run_dir: Path, max_epochs: int | None = None,
                  extra: Sequence[str] = (), test_corpus: str | None = None,
                  manifest_dir: str | Path = "data_manifests") -> list[str]:
    args = config_args(corpus, system, manifest_dir) + [f"--data.manifest_dir={manifest_dir}"] + [
        f"{k}={v}" for k, v in run_flags(fold, seed, run_dir).items()] + ["--trainer.enable_progress_bar=false"]
    if test_corpus:
        args.append(f"--data.test_corpus={test_corpus}")
    if max_epochs is not None:
        args.append(f"--trainer.max_epochs={max_epochs}")
    return args + list(extra)


def run_flags(fold: str, seed: int, run_dir: Path) -> dict[str, object]:
    """The LightningCLI flags that make a run one fold x seed of its cv; every other flag is the system's."""
    return {"--data.fold": fold, "--seed_everything": seed, "--model.seed": seed, "--data.seed": seed,
            "--trainer.default_root_dir": run_dir, "--trainer.logger.init_args.save_dir": run_dir}


def retarget_args(args: Sequence[str], fold: str, seed: int, run_dir: Path) -> list[str]:
    """A finished run's recorded training args made into another fold x seed's, everything else kept: how a
    robustness command trains a missing run of a cv folder whose flags it does not know."""
    new = run_flags(fold, seed, run_dir)
    keys = [a.split("=", 1)[0] for a in args]
    missing = [k for k in new if k not in keys]
    if missing:
        raise ValueError(f"not the training args of a cv run (no {', '.join(missing)})")
    return [f"{k}={new[k]}" if k in new else a for k, a in zip(keys, args)]


def make_runs(corpus: str, system: str, folds: Iterable[str], seeds: Iterable[int], out: Path,
              max_epochs: int | None = None, extra: Sequence[str] = (), test_corpus: str | None = None,
              manifest_dir: str | Path = "data_manifests") -> list[Run]:
    runs = []
    for seed in seeds:
        for fold in folds:
            run_dir = Path(out) / "runs" / f"{fold}_s{seed}"
            runs.append(Run(fold, seed, run_dir, training_args(corpus, system, fold, seed, run_dir, max_epochs,
                                                               extra, test_corpus, manifest_dir)))
    return runs


NORMALIZATIONS = ("utterance", "speaker", "corpus")  # = speaker_norm.MODES (imported lazily: it pulls in Lightning)


@dataclass
class AddSpeakerNorm:
    """``Run.prepare`` hook installing the speaker/corpus normalisation callback (a class, not a closure,
    so that runs pickle into ``--jobs`` worker processes)."""

    mode: str

    def __call__(self, cli) -> None:
        from .speaker_norm import SpeakerNormCallback

        cli.trainer.callbacks.insert(0, SpeakerNormCallback(self.mode))


def normalized_out(out: Path, normalize: str) -> Path:
    """Result directory of a system run with a non-default feature normalisation: ``<out>_<mode>norm``."""
    return out if normalize == "utterance" else out.with_name(f"{out.name}_{normalize}norm")


NO_SELF_NORM = "--model.normalize=none"  # the checkpoint says its front end does not self-normalise


def apply_normalization(run_list: Sequence[Run], normalize: str) -> None:
    """Speaker- or corpus-level log-mel normalisation for every run (train and test alike), via
    :class:`~mtl_aug.evaluation.speaker_norm.SpeakerNormCallback`; "utterance" leaves the runs as they are."""
    if normalize not in NORMALIZATIONS:
        raise SystemExit(f"--normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if normalize == "utterance":
        return
    from mtl_aug.baseline.run import is_baseline

    for r in run_list:
        if is_baseline(r.args):  # the baseline normalises its functionals itself
            if f"--model.normalize={normalize}" not in r.args:
                r.args.append(f"--model.normalize={normalize}")
            continue
        r.prepare = AddSpeakerNorm(normalize)
        if NO_SELF_NORM not in r.args:  # recorded args (robustness.from_cv_folder) already hold it
            r.args.append(NO_SELF_NORM)


def checkpoints(run_dir: Path) -> list[str]:
    return sorted(str(p) for p in Path(run_dir).rglob("*.ckpt"))


def execute(run: Run) -> dict:
    """Train + test one run (``make_cli`` + ``run_training``, or a baseline's fit) and write its result JSON
    atomically."""
    from mtl_aug.baseline.run import is_baseline, train_and_test
    from mtl_aug.callbacks import EpochSummary
    from mtl_aug.training import make_cli, run_training

    if run.run_dir.exists():
        shutil.rmtree(run.run_dir)  # the leftovers of an interrupted run (finished runs never reach here)
    run.run_dir.mkdir(parents=True)
    start = time.perf_counter()
    if is_baseline(run.args):
        return _finish(run, train_and_test(run.args, run.run_dir), start)
    # the args are complete: the warning about sys.argv holding the driver's own flags does not apply
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cli = make_cli(list(run.args), run=False)
    for cb in cli.trainer.callbacks:  # parallel runs print into one log: each epoch line names its run
        if isinstance(cb, EpochSummary) and not cb.prefix:
            cb.prefix = f"fold {run.fold} seed {run.seed} |"
    if run.prepare is not None:
        run.prepare(cli)
    return _finish(run, run_training(cli), start)


def _finish(run: Run, result: dict, start: float) -> dict:
    """A run's result with its provenance, written atomically to ``result.json`` (the run is then done)."""
    import torch

    result.update({
        "fold": run.fold, "seed": run.seed, "seconds": round(time.perf_counter() - start, 2), "args": run.args,
        "run_dir": str(run.run_dir), "result_json": str(run.result_path), "git_commit": git_commit()[0],
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


def fmt(x, spec: str = ".4f") -> str:
    return "nan" if x is None else format(float(x), spec)


# -- evaluating a trained checkpoint (noise, adversarial) ----------------------------------------------
def load_checkpoint(path: str | Path):
    """``(model in eval mode on CPU, SERDataModule set up for testing)`` from a run's checkpoint.

    The DataModule is rebuilt from the hyperparameters stored in the checkpoint (same corpus, fold,
    test corpus, sample rate, eval crop), without the unlabelled pool. A speaker-normalised checkpoint is
    refused (its weights need speaker statistics): :func:`load_run_checkpoint` returns them.
    """
    model, dm, _ = _load(path, refuse_group_norm=True)
    return model, dm


def load_run_checkpoint(path: str | Path):
    """``(model, datamodule, speaker_norm state or None)``: like :func:`load_checkpoint`, and speaker- or
    corpus-normalised checkpoints too, with their stored statistics (see ``speaker_norm.EvalGroupNorm``)."""
    return _load(path, refuse_group_norm=False)


def _load(path: str | Path, refuse_group_norm: bool):
    import torch

    if Path(path).name.endswith(".pkl"):  # a classical baseline's model file (mtl_aug.baseline.run)
        from mtl_aug.baseline.run import load

        return load(path)

    from mtl_aug.data.datamodule import SERDataModule
    from mtl_aug.inference.loading import check_format
    from mtl_aug.module import MTLAugModule

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    # One check for every loader: format version, and (unless the caller computes speaker statistics) the
    # refusal of speaker-normalised weights, which check_format raises while the key is still in ckpt.
    group_norm = None if refuse_group_norm else ckpt.pop("speaker_norm", None)
    check_format(path, ckpt)
    del ckpt
    try:
        model = MTLAugModule.load_from_checkpoint(path, map_location="cpu").eval()
    except RuntimeError as e:  # a state dict of another model version (architecture changed since)
        raise RuntimeError(f"{path} does not load into the current model code ({str(e).splitlines()[0]} ...): it was "
                           "trained by an older version; retrain its runs (cv ... --force)") from e
    dm = SERDataModule.load_from_checkpoint(path, use_unlabelled=False)
    dm.setup("test")
    return model, dm, group_norm


def predict_test(model, dm, perturb: Callable | None = None, before: Callable | None = None) -> list[dict]:
    """Predictions on the DataModule's test set, optionally perturbing each batch first.

    ``perturb(batch) -> wave`` returns the waveforms to classify (same shape as ``batch["wave"]``);
    it may need gradients (attacks), so only the final classification runs under ``no_grad``.
    ``before(batch)`` runs first (a group-normalised model's row groups: ``EvalGroupNorm.install``).
    """
    import torch

    if hasattr(model, "predict_dataset"):  # a baseline: features of the whole test set, then the SVM
        if before is not None:
            raise ValueError("a baseline model normalises its test groups itself; no `before` hook applies")
        return model.predict_dataset(dm, perturb)
    rows = []
    for batch in dm.eval_loader(dm.datasets["test"]):
        if before is not None:
            before(batch)
        wave = perturb(batch) if perturb is not None else batch["wave"]
        with torch.no_grad():
            probs = torch.softmax(model.emotion_logits(wave, batch["lengths"]).float(), -1)
        for i, key in enumerate(batch["key"]):
            rows.append({"key": key, "speaker": batch["speaker"][i], "label": int(batch["label"][i]),
                         "pred": int(probs[i].argmax())})
    return rows


def condition_metrics(rows: list[dict], n_classes: int) -> dict:
    from . import aggregate

    conf = aggregate.confusion_from_labels([r["label"] for r in rows], [r["pred"] for r in rows], n_classes)
    return aggregate.metrics_from_confusion(conf) | {"confusion": conf.tolist(), "n": len(rows)}


def dry_run(run_list: Sequence[Run], out: Path, force: bool = False) -> int:
    """Print every run with its state and the first run's arguments; parse them (no data, no training).
    With ``force`` every run is to do, finished or not, as in :func:`run_all`."""
    from mtl_aug.baseline.run import is_baseline
    from mtl_aug.training import make_cli

    for r in run_list:
        state = ("finished (redone: --force)" if force else "finished") if r.load() else (
            "partial (will be redone)" if r.run_dir.exists() else "to run")
        print(f"{r.name:<20} {state:<26} {r.run_dir}")
    if run_list and is_baseline(run_list[0].args):
        from mtl_aug.baseline.run import parse_args

        print("first run (baseline): " + shlex.join(run_list[0].args))
        parse_args(run_list[0].args)
    elif run_list:
        print("first run: python -m mtl_aug train " + shlex.join(run_list[0].args))
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        with tempfile.TemporaryDirectory() as tmp:  # parse + instantiate, with the logs in a throwaway dir
            args = [a for a in run_list[0].args if not a.startswith(("--trainer.default_root_dir=",
                                                                     "--trainer.logger.init_args.save_dir="))]
            make_cli(args + [f"--trainer.default_root_dir={tmp}", f"--trainer.logger.init_args.save_dir={tmp}"],
                     run=False)
    if run_list:
        print(f"configuration OK; {sum(1 for r in run_list if force or not r.load())} of {len(run_list)} runs to do -> {out}")
    return 0
