"""``python -m mtl_aug fuse``: late fusion of several systems' cross-validation, in cv's format.

    python -m mtl_aug fuse experiments/results/emodb/mtl_aug experiments/results/emodb/compare_svm \\
        --out experiments/results/emodb/mtl_aug+compare_svm

Each system's seeds are first one model (their mean class probabilities, as ``ensemble``); the fused model's
probability of a class is the plain mean over the systems, its prediction the argmax (ties: the first class).
Equal weights are the only rule offered: a weight tuned on the test folds would leak them, and the systems'
probabilities are comparable (softmax of a network, softmax of an SVM's one-vs-rest decision scores). The systems
must have tested the same utterances of the same folds with the same class list; anything else is a named error.

Writes ``--out`` as cv does (``folds.csv``, ``predictions.csv``, ``summary.json``, ``summary.md``,
``confusion.png``), so ``compare`` pairs the fused model with either system fold by fold, and ``headline`` can
quote it. ``predict --ckpt <network> --svm <model.pkl>`` deploys the same fusion of a network and an SVM.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping, Sequence

from mtl_aug import tables
from mtl_aug.io import atomic_write_json, atomic_write_text, read_json
from mtl_aug.provenance import provenance

from . import aggregate, plots, runs
from .ensemble import FOLD_COLUMNS, fold_rows, prob_columns, soft_vote, summarize
from .results import read_prediction_rows, write_csv


def system_votes(cv_dir: Path) -> list[dict]:
    """One system's predictions with its seeds averaged (every seed in its predictions.csv)."""
    rows = read_prediction_rows(cv_dir)
    if rows is None:
        raise FileNotFoundError(f"{cv_dir / 'predictions.csv'}: missing (run `python -m mtl_aug cv ... --out {cv_dir}` "
                                "first)")
    return soft_vote(rows)


def fuse(cv_dirs: Sequence[str | Path]) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """``(summary, fold rows, fused predictions, each system's fold rows)``: system ``i``'s seed-mean is member ``i``
    of a soft vote (its fold rows carry ``seed`` ``i``)."""
    dirs = [Path(d) for d in cv_dirs]
    if len(dirs) < 2:
        raise ValueError("at least two cv folders are needed")
    members, cols = [], None
    for i, d in enumerate(dirs):
        votes = system_votes(d)
        these = prob_columns(votes)
        if cols is not None and these != cols:
            raise ValueError(f"{d}: classes {these} differ from {dirs[0]}'s {cols}: not the same label set")
        cols = these
        members += [{**v, "seed": i} for v in votes]
    fused = soft_vote(members)  # checks: every system predicted every (fold, utterance), labels agree
    member_folds = [{**r, "seed": i} for i in range(len(dirs))
                    for r in fold_rows([m for m in members if m["seed"] == i], [], [])]
    class_names = [c[len("prob_"):] for c in cols]
    order = list(range(len(dirs)))
    folds = fold_rows(fused, member_folds, order)
    summary = summarize(folds, fused, class_names, order, member_folds)
    sources = [read_json(d / "summary.json") or {} for d in dirs]
    summary.update({"title": "late fusion of " + " + ".join(d.name for d in dirs), "systems": [str(d) for d in dirs],
                    "systems_uar": [{"uar": s.get("uar"), "pooled_uar": s.get("pooled_uar")} for s in sources],
                    "protocol": sources[0].get("protocol")})
    return summary, folds, fused, member_folds


def summary_markdown(s: Mapping, folds: Sequence[Mapping], member_folds: Mapping[str, list[float]]) -> str:
    f, pct = aggregate.fmt_pct, (lambda x: runs.fmt(100 * x, ".1f"))
    names = [Path(d).name for d in s["systems"]]
    lines = [f"## {s['title']}", "",
             "Each system's seeds averaged into one model, then the systems' class probabilities averaged with equal "
             "weights per utterance (argmax). Values in %; one fused model per fold.", "",
             *([f"Protocol: {s['protocol']}.", ""] if s.get("protocol") else []),
             tables.markdown_table(["UAR (fold mean)", "UAR (pooled)", "WA (fold mean)", "macro-F1", "systems"],
                                   [[f(s["uar"]), f(s.get("pooled_uar")), f(s["wa"]), f(s["f1"]), " + ".join(names)]]),
             "", "Per fold (each system's seed-averaged model beside the fusion):", "",
             tables.markdown_table(["fold", "fused UAR", *names],
                                   [[r["fold"], pct(r["uar"]), *(pct(v) for v in member_folds[r["fold"]])]
                                    for r in folds]), ""]
    lines += tables.confusion_lines(s.get("confusion"), s["class_names"], "all folds")
    lines += [tables.provenance(s), ""]
    return "\n".join(lines)


def run_fusion(cv_dirs: Sequence[str | Path], out: str | Path, meta: Mapping | None = None) -> dict:
    summary, folds, fused, member_folds = fuse(cv_dirs)
    summary.update(meta or {})
    per_system: dict[str, list[float]] = {}
    for r in sorted(member_folds, key=lambda r: r["seed"]):  # the systems in the order given
        per_system.setdefault(r["fold"], []).append(r["uar"])
    out = Path(out)
    write_csv(out / "folds.csv", folds, FOLD_COLUMNS)
    write_csv(out / "predictions.csv", fused)
    atomic_write_json(out / "summary.json", summary)
    plots.confusion_png(summary["confusion"], summary["class_names"], out / "confusion.png",
                        title=f"{summary['title']}\nall folds pooled")
    atomic_write_text(out / "summary.md", summary_markdown(summary, folds, per_system))
    summary["out"] = str(out)
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug fuse", description=__doc__.split("\n")[0])
    p.add_argument("cv_dirs", nargs="+", help="two or more cv result folders of the same corpus and folds")
    p.add_argument("--out", required=True, help="the fused result's folder")
    return p


def main(argv: list[str]) -> int:
    a = parser().parse_args(argv)
    try:
        s = run_fusion(a.cv_dirs, a.out, provenance("fuse", argv))
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"fuse: {e}") from None
    f = aggregate.fmt_pct
    print(f"late fusion of {' + '.join(a.cv_dirs)}: UAR {f(s['uar'])} (pooled {f(s.get('pooled_uar'))}), "
          f"WA {f(s['wa'])}, F1 {f(s['f1'])} -> {s['out']}/summary.md")
    return 0
