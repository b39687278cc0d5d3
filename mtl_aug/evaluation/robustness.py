"""The shared driver of the robustness commands (``noise``, ``adversarial``): evaluate each cv run's best
checkpoint under several test conditions, resumably, and report per system and over systems.

A condition is a name (``"clean"``, ``"10 dB"``, ``"pgd 30 dB"``...) and a function that perturbs a test batch;
``evaluate_checkpoints`` runs them all on every fold x seed checkpoint and writes one result JSON per run;
``system_report`` aggregates them (UAR/WA/F1 mean ± std over seeds, :mod:`.aggregate`). The clean condition
must reproduce the cv test UAR of the same checkpoint, which guards against model code changed since training.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from mtl_aug.checkpoints import load_for_evaluation
from mtl_aug.io import atomic_write_json, read_json
from mtl_aug.recipes import SYSTEMS, retarget_args

from . import aggregate, runs, shell
from .robustness_tables import CLEAN


class MissingCheckpointError(shell.UserError, FileNotFoundError):
    """A finished cv run whose best checkpoint is not on disk (results are committed without checkpoints)."""


# -- generic "evaluate the cv checkpoints under conditions" driver (noise and adversarial) ---------------
def evaluate_checkpoints(
    cv_runs: Sequence[runs.Run],
    out: Path,
    conditions: Sequence[str],
    evaluate: Callable[[object, object, object], dict[str, list[dict]]],
    desc: str,
    force: bool = False,
    extra_meta: dict | None = None,
) -> list[dict]:
    """For every cv run: its best checkpoint (training the run first if it has not finished), then
    ``evaluate(model, datamodule, group_norm) -> {condition: prediction rows}`` (``group_norm``: an
    :class:`~.group_norm.EvalGroupNorm` for a speaker/corpus-normalised checkpoint, else None); one result JSON per run in
    ``out/runs/<fold>_s<seed>/result.json``, written atomically, so reruns resume."""
    by_name = {r.name: r for r in cv_runs}
    eval_runs = [runs.Run(r.fold, r.seed, Path(out) / "runs" / r.name) for r in cv_runs]

    def execute(run: runs.Run) -> dict:
        cv_run = by_name[run.name]
        cv_result = cv_run.load() or runs.execute(cv_run)
        ckpt = cv_result.get("best_checkpoint") or (cv_result.get("checkpoints") or [None])[-1]
        if not ckpt or not Path(ckpt).exists():
            raise MissingCheckpointError(
                f"cv run {cv_run.run_dir} finished but its checkpoint {ckpt or '(none recorded)'} is not here "
                "(checkpoints are not committed with the results): evaluate in the tree that trained it, or delete "
                f"{cv_run.result_path} so that this command retrains the run first")
        start = time.perf_counter()
        model, dm, state = load_for_evaluation(ckpt)
        group_norm = None
        if state is not None:
            from .group_norm import EvalGroupNorm

            group_norm = EvalGroupNorm(model, dm, state)
        preds = evaluate(model, dm, group_norm)
        class_names = list(model.hparams.class_names)
        result = {"fold": run.fold, "seed": run.seed, "checkpoint": str(ckpt), "cv_result": str(cv_run.result_path),
                  "class_names": class_names, **(extra_meta or {}),
                  "conditions": {c: condition_metrics(preds[c], len(class_names)) for c in conditions},
                  "predictions": {c: preds[c] for c in conditions},
                  "seconds": round(time.perf_counter() - start, 2),
                  "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        if CLEAN in result["conditions"]:
            # Same checkpoint, same test set: the clean UAR must be the cv run's test UAR. A difference
            # means the model code changed since the checkpoint was trained (same keys, new behaviour).
            from .cv import fold_row

            cv_uar = fold_row(cv_result)["uar"]
            result["cv_test_uar"] = cv_uar
            result["clean_matches_cv"] = abs(result["conditions"][CLEAN]["uar"] - cv_uar) < 1e-6
            if not result["clean_matches_cv"]:
                tqdm.write(f"WARNING {run.name}: clean UAR {result['conditions'][CLEAN]['uar']:.4f} differs from the cv "
                           f"test UAR {cv_uar:.4f} of the same checkpoint: the model code changed since it was "
                           f"trained (at {cv_result.get('git_commit', '?')}); retrain with cv --force")
        atomic_write_json(run.result_path, result)
        runs.EXECUTED.append(f"{desc}:{run.name}")
        return result

    def line(run: runs.Run, result: dict, cached: bool) -> str:
        parts = "  ".join(f"{c} {runs.fmt(result['conditions'][c]['uar'], '.3f')}" for c in conditions)
        return f"fold {run.fold} seed {run.seed}: UAR {parts}{'  (finished earlier)' if cached else ''}"

    def complete(run: runs.Run, result: dict) -> bool:
        # evaluated under every condition asked for now (and same settings), of the cv run's current model
        same = all(result.get(k) == v for k, v in (extra_meta or {}).items())
        if not (same and set(conditions) <= set(result.get("conditions", {}))):
            return False
        if stale(result, by_name[run.name].load()):
            tqdm.write(f"{desc} {run.name}: its cv run was retrained (or removed) after this evaluation; "
                       "evaluating the current model")
            return False
        return True

    return runs.run_all(eval_runs, desc, line, force=force, executor=execute, complete=complete)


def stale(result: dict, cv_result: dict | None) -> bool:
    """True when an evaluation result is of an earlier model of its cv run: the cv run finished after the
    evaluation did (retrained with ``cv --force``), or it is not finished any more (it will be retrained).
    Reusing such a result would report one model's robustness next to another model's clean UAR."""
    if not cv_result:
        return True
    try:
        return _dt.datetime.fromisoformat(cv_result["finished"]) > _dt.datetime.fromisoformat(result["finished"])
    except (KeyError, TypeError, ValueError):  # no usable timestamps: nothing shows it is stale
        return False


@dataclass
class CheckpointRuns:
    """The cv runs a robustness command evaluates, and where its results go."""

    label: str  # what the tables call it: the system's name, or the cv folder's
    results_dir: Path  # the combined table + plot over every system evaluated there
    system_dir: Path  # the cv folder; this evaluation writes <system_dir>/<kind>/
    folds: list[str]
    runs: list[runs.Run]
    normalize: str
    manifest_dir: str


def checkpoint_runs(corpus: str, system: str, seeds: list[int], folds: str | None, results_dir: str | Path | None,
                    max_epochs: int | None, extra: Sequence[str], manifest_dir: str,
                    normalize: str = "utterance") -> CheckpointRuns:
    """The same runs as ``cv`` makes (``<system>_<mode>norm`` for another normalisation), so that a robustness
    evaluation reuses (or first trains) exactly the cv checkpoints. ``system`` may also be a cv result folder
    (any ``cv --out``, e.g. a system trained with other flags): see :func:`from_cv_folder`."""
    if system not in SYSTEMS and ("/" in system or Path(system).is_dir()):
        return from_cv_folder(Path(system), corpus, seeds, folds, results_dir, max_epochs, extra, manifest_dir,
                              normalize)
    results_dir = Path(results_dir or runs.RESULTS_DIR / corpus)
    system_dir = runs.normalized_out(results_dir / system, normalize)
    fold_list = runs.select_folds(runs.fold_names(corpus, manifest_dir), folds)
    cv_runs = runs.make_runs(corpus, system, fold_list, seeds, system_dir, max_epochs, extra,
                             manifest_dir=manifest_dir)
    runs.apply_normalization(cv_runs, normalize)
    return CheckpointRuns(system, results_dir, system_dir, fold_list, cv_runs, normalize, manifest_dir)


def from_cv_folder(folder: Path, corpus: str, seeds: list[int], folds: str | None, results_dir: str | Path | None,
                   max_epochs: int | None, extra: Sequence[str], manifest_dir: str,
                   normalize: str = "utterance") -> CheckpointRuns:
    """The runs of a finished cv folder, named after the folder in the tables, whose combined table is the one
    next to it (``folder/..``). What the models are comes from the folder, never from this command's flags:
    a run still to train gets a finished run's recorded training args (fold, seed and run folder swapped),
    its normalisation is the cv's. Flags that would say otherwise are an error, not silently ignored."""
    what = f"--system {folder}"
    if not folder.is_dir():
        raise SystemExit(f"{what}: no such folder (--system takes one of {', '.join(SYSTEMS)}, or a cv result "
                         "folder holding summary.json)")
    summary = read_json(folder / "summary.json")
    if not summary:
        raise SystemExit(f"{what}: not a cv result folder (no summary.json); run `python -m mtl_aug cv ... "
                         f"--out {folder}` first")
    finished = [r for r in (read_json(p) for p in sorted(folder.glob(f"runs/*/{runs.RESULT_FILE}")))
                if r and r.get("finished") and r.get("args")]
    if not finished:
        raise SystemExit(f"{what}: no finished cv run with recorded training args under {folder / 'runs'}")
    args = finished[0]["args"]
    flags = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
    if "--data.test_corpus" in flags:
        raise SystemExit(f"{what}: a cross-corpus result (tested on {flags['--data.test_corpus']}); noise and "
                         "adversarial evaluate within-corpus cv runs")
    configs = [Path(args[i + 1]) for i, a in enumerate(args[:-1]) if a == "--config"]
    trained_on = [c.stem if c.parent.name == "corpora" else c.parent.name for c in configs  # own corpus:
                  if c.parent.name == "corpora" or c.name == "config.yaml"]                  # <dir>/<name>/config.yaml
    if trained_on != [corpus]:
        raise SystemExit(f"{what}: its runs trained on {', '.join(trained_on) or 'an unknown corpus'}, "
                         f"not --corpus {corpus}")
    recorded = {"--normalize": (normalize, "utterance", summary.get("normalize", "utterance")),
                "--manifest-dir": (manifest_dir, "data_manifests", flags.get("--data.manifest_dir", manifest_dir)),
                "--results-dir": (results_dir and str(Path(results_dir).resolve()), None,
                                  str(folder.parent.resolve()))}
    for flag, (given, default, theirs) in recorded.items():
        if given != default and given != theirs:
            raise SystemExit(f"{what}: {flag} {given} contradicts the cv folder's {theirs}; leave it out")
    if max_epochs is not None or extra:
        raise SystemExit(f"{what}: its models train with the flags recorded in its runs; drop --max-epochs and "
                         "the LightningCLI flags after --")
    normalize, manifest_dir = recorded["--normalize"][2], recorded["--manifest-dir"][2]
    fold_list = runs.select_folds(runs.fold_names(corpus, manifest_dir), folds)
    cv_runs = [runs.Run(f, s, folder / "runs" / f"{f}_s{s}",
                        retarget_args(args, f, s, folder / "runs" / f"{f}_s{s}")) for s in seeds for f in fold_list]
    runs.apply_normalization(cv_runs, normalize)
    return CheckpointRuns(folder.name, folder.parent, folder, fold_list, cv_runs, normalize, manifest_dir)


def dry_run_eval(cv_runs: Sequence[runs.Run], out: Path, force: bool = False) -> dict:
    """Print, per fold x seed, whether its cv checkpoint exists (else it will be trained) and whether
    it has been evaluated already (with ``force`` it is evaluated again)."""
    for r in cv_runs:
        cv_result = r.load()
        cv_state = "cv finished" if cv_result else "cv to train first"
        done = read_json(Path(out) / "runs" / r.name / runs.RESULT_FILE)
        if not done:
            state = "to evaluate"
        elif force:
            state = "evaluated (redone: --force)"
        elif stale(done, cv_result):
            state = "evaluated (redone: cv retrained since)"
        else:
            state = "evaluated"
        print(f"{r.name:<20} {cv_state:<18} {state}")
    return {}


# -- predictions under a condition ------------------------------------------------------------------------
def predict_test(model, dm, perturb: Callable | None = None, before: Callable | None = None) -> list[dict]:
    """Predictions on the DataModule's test set, through the model's network, optionally perturbing each batch.

    ``perturb(batch) -> wave`` returns the waveforms to classify (same shape as ``batch["wave"]``);
    it may need gradients (attacks), so only the final classification runs under ``no_grad``.
    ``before(batch)`` runs first (a group-normalised model's test statistics: ``EvalGroupNorm``).
    """
    import torch

    if hasattr(model, "predict_dataset"):  # a baseline: features of the whole test set, then the SVM
        if before is not None:
            raise ValueError("a baseline model normalises its test groups itself; no `before` hook applies")
        return model.predict_dataset(dm, perturb)
    net = model.network
    rows = []
    for batch in dm.eval_loader(dm.datasets["test"]):
        if before is not None:
            before(batch)
        wave = perturb(batch) if perturb is not None else batch["wave"]
        with torch.no_grad():
            probs = torch.softmax(net(wave, batch["lengths"], groups=net.groups(batch)).float(), -1)
        for i, key in enumerate(batch["key"]):
            rows.append({"key": key, "speaker": batch["speaker"][i], "label": int(batch["label"][i]),
                         "pred": int(probs[i].argmax())})
    return rows


def condition_metrics(rows: list[dict], n_classes: int) -> dict:
    conf = aggregate.confusion_from_labels([r["label"] for r in rows], [r["pred"] for r in rows], n_classes)
    return aggregate.metrics_from_confusion(conf) | {"confusion": conf.tolist(), "n": len(rows)}


# -- the settings' shared options ------------------------------------------------------------------------
class RobustnessSetting(shell.Setting):
    """``noise`` / ``adversarial``: the cv checkpoints of one or several systems under test conditions."""

    jobs_unit, several_systems = None, True
    snrs, snrs_help = "", ""

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", required=True)
        p.add_argument("--system", required=True,
                       help="a system, a comma list of systems, or a cv result folder (any `cv --out`, e.g. "
                            "experiments/results/emodb/mtl_aug_loss_weights): its models, named after the folder")
        p.add_argument("--folds", default=None)
        p.add_argument("--snrs", default=self.snrs, help=f"{self.snrs_help} (default {self.snrs})")
        p.add_argument("--results-dir", default=None, help="default experiments/results/<corpus>")

    def line(self, a: argparse.Namespace, s: dict) -> str:
        return f"{s['system']} on {a.corpus}: " + ", ".join(
            f"{c} UAR {aggregate.fmt_pct(s['conditions'][c]['uar'])}" for c in s["order"])

    def done(self, a: argparse.Namespace, summaries: list[dict]) -> None:
        at = Path(summaries[-1]["results_dir"])
        print(f"table: {at / f'{self.name}.md'}  plot: {at / f'{self.name}.png'}")


def parse_snrs(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()]
