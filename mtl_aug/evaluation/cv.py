"""``python -m mtl_aug cv``: speaker-independent cross-validation over every fold x seed, resumable.

    python -m mtl_aug cv --corpus emodb --system mtl_aug --seeds 3
    python -m mtl_aug cv --corpus synthetic --system stl --seeds 1 --folds F01,M02 --max-epochs 1 \
        -- --trainer.limit_train_batches=2

Each fold x seed is one ``make_cli`` + ``run_training`` (the ``train`` command's code path) in
``<out>/runs/<fold>_s<seed>/``; its ``result.json`` is written atomically when it finishes, and a
rerun of the same command skips every finished run (see :mod:`mtl_aug.evaluation.runs`).
Outputs in ``<out>`` (default ``experiments/results/<corpus>/<system>``): ``folds.csv``,
``predictions.csv``, ``summary.json``, ``summary.md``, ``confusion.png`` and ``epochs.csv`` (every run's
per-epoch log in one file; the runs' own Lightning logs are not committed).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Sequence

from mtl_aug import tables
from mtl_aug.tables import val_note
from mtl_aug.data.folds import corpus_folds, protocol_kind
from mtl_aug.io import atomic_write_json, atomic_write_text
from mtl_aug.provenance import provenance
from mtl_aug.recipes import SYSTEMS

from . import aggregate, epochs, plots, runs, shell
from .dry_run import dry_run as show_runs
from .results import write_csv

log = logging.getLogger(__name__)

FOLD_COLUMNS = ["fold", "seed", "uar", "wa", "f1", "n_test", "best_val_uar", "epochs", "seconds"]


def fold_row(result: dict) -> dict:
    """The ``folds.csv`` row of one run; metrics recomputed from its confusion (project UAR definition)."""
    conf = result.get("confusion")
    metrics = aggregate.metrics_from_confusion(conf) if conf else {m: result.get(m) for m in aggregate.METRICS}
    logged = result.get("uar")
    if conf and logged is not None and not math.isnan(logged) and abs(logged - metrics["uar"]) > 1e-4:
        log.warning("run %s_s%s: logged test UAR %.6f differs from its confusion's %.6f",
                    result.get("fold"), result.get("seed"), logged, metrics["uar"])
    n_test = (result.get("fold_info") or {}).get("n_test")
    if n_test is None and conf:
        n_test = int(sum(map(sum, conf)))
    return {"fold": result.get("fold"), "seed": result.get("seed"), **metrics, "n_test": n_test,
            "best_val_uar": result.get("best_val_uar"), "epochs": result.get("epochs"),
            "seconds": result.get("seconds")}


def prediction_rows(result: dict, class_names: Sequence[str]) -> list[dict]:
    rows = []
    for p in result.get("predictions") or []:
        row = {"fold": result.get("fold"), "seed": result.get("seed"), "key": p["key"], "speaker": p.get("speaker", ""),
               "label": int(p["label"]), "pred": int(p["pred"]),
               "label_name": class_names[int(p["label"])], "pred_name": class_names[int(p["pred"])]}
        for c, prob in zip(class_names, p.get("probs") or []):
            row[f"prob_{c}"] = round(float(prob), 6)
        rows.append(row)
    return rows


def run_line(run: runs.Run, result: dict, cached: bool) -> str:
    r = fold_row(result)
    return (f"fold {r['fold']} seed {r['seed']}: test UAR {runs.fmt(r['uar'])}  WA {runs.fmt(r['wa'])}  "
            f"{val_note(result)}  epochs {r['epochs']}  "
            f"time {runs.fmt(r['seconds'], '.0f')} s{'  (finished earlier)' if cached else ''}")


def write_report(out: Path, results: list[dict], meta: dict, title: str, protocol: str) -> dict:
    """folds.csv, predictions.csv, summary.json, summary.md, confusion.png from finished runs' results; epochs.csv
    from their training logs (``epochs.write_epochs``)."""
    out = Path(out)
    class_names = list(results[0]["class_names"])
    folds = [fold_row(r) for r in results]
    preds = [row for r in results for row in prediction_rows(r, class_names)]
    write_csv(out / "folds.csv", folds, FOLD_COLUMNS)
    write_csv(out / "predictions.csv", preds)
    summary = aggregate.summarize(folds, preds, len(class_names))
    # a report rewritten later (more seeds, a resumed run) names the code each run was trained with
    trained_at = sorted({r["git_commit"] for r in results if r.get("git_commit")})
    trained_on = sorted({r["machine"] for r in results if r.get("machine")})  # older runs did not record it
    summary.update({"title": title, "protocol": protocol, "class_names": class_names,
                    "folds": sorted({f["fold"] for f in folds}, key=str), **meta, "trained_at": trained_at,
                    "trained_on": trained_on,
                    "runs": {f"{r['fold']}_s{r['seed']}": {"result": r.get("result_json"),
                                                           "best_checkpoint": r.get("best_checkpoint")}
                             for r in results}})
    atomic_write_json(out / "summary.json", summary)
    if summary["confusion"]:
        plots.confusion_png(summary["confusion"], class_names, out / "confusion.png",
                            title=f"{title}\nall folds and seeds pooled")
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    epochs.write_epochs(out, [out / "runs" / f"{r['fold']}_s{r['seed']}" for r in results])
    return summary


def summary_markdown(s: dict) -> str:
    f = aggregate.fmt_pct
    header = ["UAR (fold mean)", "UAR (pooled)", "WA (fold mean)", "WA (pooled)", "macro-F1", "seeds", "runs"]
    row = [f(s["uar"]), f(s.get("pooled_uar")), f(s["wa"]), f(s.get("pooled_wa")), f(s["f1"]), len(s["seeds"]),
           s["n_runs"]]
    per_seed = [[seed, *(runs.fmt(100 * v[m], ".1f") if v.get(m) is not None else "–"
                         for m in ("uar", "pooled_uar", "wa", "f1")), v.get("n_folds", "")]
                for seed, v in s["per_seed"].items()]
    lines = [f"## {s['title']}", "", f"Protocol: {s['protocol']}. Values in %, mean ± std (ddof=1) over seeds; "
             "a seed's UAR is the mean of its per-fold UARs, the pooled UAR is computed on all its folds' "
             "predictions together.", "", tables.markdown_table(header, [row]), "",
             "Per seed:", "", tables.markdown_table(["seed", "UAR", "pooled UAR", "WA", "F1", "folds"], per_seed), ""]
    lines += tables.confusion_lines(s.get("confusion"), s["class_names"], "all folds and seeds")
    lines += [tables.provenance(s), ""]
    return "\n".join(lines)


def class_set(class_names: Sequence[str] | None) -> str:
    """"4-class" for the paper's set (or when unknown), else e.g. "3 classes (calm, excited, tired)"."""
    from mtl_aug.data.manifest import FOUR_CLASSES

    if class_names is None or list(class_names) == FOUR_CLASSES:
        return "4-class"
    return f"{len(class_names)} classes ({', '.join(class_names)})"


def protocol_name(corpus: str, n_folds: int, manifest_dir: str = "data_manifests",
                  class_names: Sequence[str] | None = None) -> str:
    doc = corpus_folds(corpus, manifest_dir)
    if doc is None:
        return corpus
    folds, group_by = doc["folds"], doc.get("group_by", "speaker")  # user corpora may group otherwise
    ran = "" if n_folds == len(folds) else f", {n_folds} of them run here"
    if group_by == "split":
        return (f"{corpus}, the corpus's own train/val/test split{ran}"
                f"{'' if doc.get('speaker_independent') else ' (not shown to be speaker-independent)'}, {class_set(class_names)}")
    if group_by != "speaker":
        independent = {True: "speakers kept apart too", False: "NOT speaker-independent"}.get(
            doc.get("speaker_independent"), "speaker independence unknown")
        return (f"{corpus}, {group_by}-grouped k-fold ({len(folds)} folds{ran}; {independent}), one validation "
                f"{group_by} per fold, {class_set(class_names)}")
    return f"{corpus}, {protocol_kind(doc)} ({len(folds)} folds{ran}), one validation speaker per fold, {class_set(class_names)}"


def run_cv(corpus: str, system: str, seeds: list[int], folds: str | None = None, out: str | Path | None = None,
           max_epochs: int | None = None, extra: Sequence[str] = (), manifest_dir: str = "data_manifests",
           force: bool = False, meta: dict | None = None, dry_run: bool = False, normalize: str = "utterance",
           jobs: int = 1) -> dict:
    fold_list = runs.select_folds(runs.fold_names(corpus, manifest_dir), folds)
    out = Path(out or runs.normalized_out(runs.RESULTS_DIR / corpus / system, normalize))
    run_list = runs.make_runs(corpus, system, fold_list, seeds, out, max_epochs, extra, manifest_dir=manifest_dir)
    runs.apply_normalization(run_list, normalize)
    if dry_run:
        show_runs(run_list, out, force)
        return {}
    results = runs.run_all(run_list, f"cv {corpus}/{system}", run_line, force=force, jobs=jobs)
    meta = meta or provenance("cv", ["--corpus", corpus, "--system", system])
    protocol = (protocol_name(corpus, len(fold_list), manifest_dir, results[0].get("class_names"))
                + runs.trained_on_val_note(results))
    if normalize != "utterance":
        protocol += (f"; {normalize}-level log-mel normalisation (statistics over each {normalize}'s audio, "
                     "test speakers included, never their labels)")
    summary = write_report(out, results, meta | {"normalize": normalize}, f"{system} on {corpus}", protocol)
    summary["out"] = str(out)
    return summary


class CrossValidation(shell.Setting):
    name, doc = "cv", __doc__

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", required=True)
        p.add_argument("--system", required=True, help=f"one of {', '.join(SYSTEMS)}")
        p.add_argument("--folds", default=None, help="comma-separated fold names (default: every fold of folds.json)")
        p.add_argument("--out", default=None,
                       help="default experiments/results/<corpus>/<system>[_<mode>norm]; taken as given otherwise")

    def run(self, a: argparse.Namespace, system: str, extra: Sequence[str], meta: dict) -> dict:
        return run_cv(a.corpus, system, runs.parse_seeds(a.seeds), a.folds, a.out, a.max_epochs, extra,
                      a.manifest_dir, a.force, meta, a.dry_run, a.normalize, shell.jobs(a))

    def line(self, a: argparse.Namespace, s: dict) -> str:
        f = aggregate.fmt_pct
        norm = "" if a.normalize == "utterance" else f" ({a.normalize} normalisation)"
        return (f"{a.system} on {a.corpus}{norm}: UAR {f(s['uar'])} (pooled {f(s.get('pooled_uar'))}), WA {f(s['wa'])}, "
                f"F1 {f(s['f1'])} over {len(s['seeds'])} seed(s) -> {s['out']}/summary.md")


SETTING = CrossValidation()


def main(argv: list[str]) -> int:
    return shell.main(SETTING, argv)
