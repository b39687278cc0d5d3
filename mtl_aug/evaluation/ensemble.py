"""``python -m mtl_aug ensemble``: a cv result's seeds as one model, by averaging their class probabilities.

    python -m mtl_aug ensemble experiments/results/emodb/same_vm/stl            # every seed in predictions.csv
    python -m mtl_aug ensemble experiments/results/emodb/same_vm/stl --seeds 3  # seeds 0, 1, 2

Each seed of a cv run is a model of the same recipe trained on the same speakers; their spread on a test
speaker is often as large as the difference between two systems. Soft voting (the mean of the seeds'
softmax outputs per utterance, then argmax; ties go to the first class) is what a user deploying the
recipe would do with those models, and it removes most of that spread from the predictions. Nothing is
retrained and no choice is made on test speakers: every seed given is a member.

Reads ``<cv folder>/predictions.csv`` (its ``prob_<class>`` columns) and ``folds.csv``, and writes
``<cv folder>/ensemble/`` (or ``--out``) in cv's format, so ``compare`` pairs two ensembles fold by fold:
``folds.csv`` (one row per fold, ``seed`` 0 standing for the ensemble, plus its members' mean / min / max
UAR on that fold), ``predictions.csv``, ``summary.json``, ``summary.md`` and ``confusion.png``. UAR, WA and
macro-F1 come from each fold's confusion (:mod:`.aggregate`, the project's one definition).
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from mtl_aug import tables
from mtl_aug.io import atomic_write_json, atomic_write_text, read_json
from mtl_aug.metrics import uar_from_confusion
from mtl_aug.provenance import provenance

from . import aggregate, plots, runs
from .results import read_fold_rows, read_prediction_rows, write_csv

ENSEMBLE_SEED = 0  # the seed column of an ensemble's rows: one model per fold
FOLD_COLUMNS = ["fold", "seed", "uar", "wa", "f1", "n_test", "members", "members_mean_uar", "members_min_uar",
                "members_max_uar"]


def prob_columns(rows: Sequence[Mapping]) -> list[str]:
    """The ``prob_<class>`` columns, in class-index order (cv writes them in ``class_names`` order)."""
    cols = [c for c in (rows[0].keys() if rows else []) if c.startswith("prob_")]
    if not cols:
        raise ValueError("predictions.csv has no prob_<class> columns: an ensemble averages the members' class "
                         "probabilities, which cv writes from each run's result.json")
    return cols


def member_seeds(rows: Sequence[Mapping], seeds: Sequence[int] | None = None) -> list[int]:
    """The ensemble's members: ``seeds`` when given, else every seed with a prediction."""
    return sorted(set(seeds)) if seeds is not None else sorted({int(r["seed"]) for r in rows})


def soft_vote(pred_rows: Iterable[Mapping], seeds: Sequence[int] | None = None) -> list[dict]:
    """One row per (fold, utterance): the members' mean probabilities and their argmax as ``pred``.

    Every member must have predicted exactly the same utterances of every fold with the same labels; a missing
    or extra utterance is a named error, never a silently smaller ensemble.
    """
    rows = list(pred_rows)
    cols = prob_columns(rows)
    available, members = member_seeds(rows), member_seeds(rows, seeds)
    if missing := [s for s in members if s not in available]:
        raise ValueError(f"seeds {missing} have no predictions (available: {available}); "
                         "re-aggregate the cv folder with `python -m mtl_aug cv ... --seeds N` first")
    by_utt: dict[tuple[str, str], dict[int, Mapping]] = defaultdict(dict)
    for r in rows:
        if int(r["seed"]) in members:
            by_utt[(str(r["fold"]), str(r["key"]))][int(r["seed"])] = r
    incomplete = {k: sorted(set(members) - set(v)) for k, v in by_utt.items() if len(v) != len(members)}
    if incomplete:
        (fold, key), lacking = next(iter(sorted(incomplete.items())))
        raise ValueError(f"{len(incomplete)} utterance(s) lack a member's prediction, e.g. fold {fold} {key}: "
                         f"no prediction from seed(s) {lacking} (unfinished run?)")
    out = []
    for (fold, key), votes in sorted(by_utt.items()):
        labels = {int(v["label"]) for v in votes.values()}
        if len(labels) != 1:
            raise ValueError(f"fold {fold} {key}: the members disagree on the label ({sorted(labels)})")
        first = votes[members[0]]
        probs = np.mean([[float(v[c]) for c in cols] for v in votes.values()], axis=0)
        pred = int(np.argmax(probs))
        names = [c[len("prob_"):] for c in cols]
        out.append({"fold": fold, "seed": ENSEMBLE_SEED, "key": key, "speaker": first.get("speaker", ""),
                    "label": labels.pop(), "pred": pred, "label_name": first.get("label_name", ""),
                    "pred_name": names[pred], **{c: round(float(p), 6) for c, p in zip(cols, probs)}})
    return out


def prob_arrays(pred_rows: Iterable[Mapping], seeds: Sequence[int] | None = None
                ) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """``(utterances, labels [U], probabilities [S, U, C])`` of the members, utterances as sorted (fold, key);
    checked as :func:`soft_vote` checks them."""
    rows = list(pred_rows)
    votes = soft_vote(rows, seeds)  # the checks: every member has every utterance, labels agree
    cols = prob_columns(rows)
    members = member_seeds(rows, seeds)
    utts = [(v["fold"], v["key"]) for v in votes]
    index = {u: i for i, u in enumerate(utts)}
    probs = np.zeros((len(members), len(utts), len(cols)))
    slot = {s: i for i, s in enumerate(members)}
    for r in rows:
        if int(r["seed"]) in slot:
            probs[slot[int(r["seed"])], index[(str(r["fold"]), str(r["key"]))]] = [float(r[c]) for c in cols]
    return utts, np.array([v["label"] for v in votes]), probs


def fold_mean_uars(probs: np.ndarray, members: np.ndarray, labels: np.ndarray, fold_ids: np.ndarray) -> np.ndarray:
    """Fold-mean UAR of many ensembles at once: row ``i`` of ``members`` ([N, k] indices into ``probs`` [S, U, C])
    is one ensemble; its soft vote is scored per fold by the project's UAR, then averaged over the folds."""
    n_folds, n_classes = int(fold_ids.max()) + 1, probs.shape[2]
    pred = probs[members].sum(1).argmax(-1)  # [N, U]; the sum has the mean's argmax
    cell = (fold_ids * n_classes + labels) * n_classes  # each utterance's row of its fold's confusion
    index = np.arange(len(members))[:, None] * n_folds * n_classes ** 2 + cell[None, :] + pred
    conf = np.bincount(index.ravel(), minlength=len(members) * n_folds * n_classes ** 2)
    return uar_from_confusion(conf.reshape(len(members), n_folds, n_classes, n_classes)).double().mean(-1).numpy()


def permutation_test(rows_a: Iterable[Mapping], rows_b: Iterable[Mapping], max_exact: int = 50_000,
                     n_random: int = 20_000, seed: int = 0, chunk: int = 2_000) -> dict:
    """Is ensemble A above ensemble B by more than which seeds each got? (fold-mean UAR, same utterances)

    Null hypothesis: the two systems' seeds are exchangeable. Every split of the pooled seeds into groups of
    A's and B's sizes (or ``n_random`` seeded random splits when there are more than ``max_exact``) forms two
    ensembles; ``p`` is the share of splits whose |A − B| reaches the observed one (two-sided, the observed
    split included). The ensembles keep their size, unlike a bootstrap of members. 3 + 3 seeds cannot go below
    p = 0.1; 7 + 7 have 3432 splits.
    """
    utts_a, labels, pa = prob_arrays(rows_a)
    utts_b, labels_b, pb = prob_arrays(rows_b)
    if utts_a != utts_b or not np.array_equal(labels, labels_b):
        raise ValueError("the two results did not predict the same utterances with the same labels "
                         f"({len(utts_a)} vs {len(utts_b)} utterances): not the same folds")
    names = sorted({f for f, _ in utts_a})
    fold_ids = np.array([names.index(f) for f, _ in utts_a])
    pooled = np.concatenate([pa, pb])
    na, n = len(pa), len(pa) + len(pb)
    if math.comb(n, na) <= max_exact:
        splits = np.array(list(itertools.combinations(range(n), na)))
        exact = True
    else:
        rng = np.random.default_rng(seed)
        splits = np.array([np.sort(rng.permutation(n)[:na]) for _ in range(n_random)])
        exact = False
    rest = np.array([np.setdiff1d(np.arange(n), s) for s in splits])
    deltas = np.concatenate([fold_mean_uars(pooled, splits[i:i + chunk], labels, fold_ids)
                             - fold_mean_uars(pooled, rest[i:i + chunk], labels, fold_ids)
                             for i in range(0, len(splits), chunk)])
    observed = float(fold_mean_uars(pooled, np.arange(na)[None], labels, fold_ids)[0]
                     - fold_mean_uars(pooled, np.arange(na, n)[None], labels, fold_ids)[0])
    p = float((np.abs(deltas) >= abs(observed) - 1e-12).mean())  # float slack: ties count as reaching
    return {"delta": observed, "p": p, "n_splits": len(splits), "exact": exact, "seeds_a": na, "seeds_b": n - na}


def fold_rows(votes: Sequence[Mapping], member_rows: Iterable[Mapping], members: Sequence[int]) -> list[dict]:
    """Per fold: the ensemble's metrics (from its confusion) beside its members' UARs on that fold."""
    n_classes = len(prob_columns(votes))
    member_uar: dict[str, list[float]] = defaultdict(list)
    for r in member_rows:
        if int(r["seed"]) in members:
            member_uar[str(r["fold"])].append(float(r["uar"]))
    by_fold: dict[str, list[Mapping]] = defaultdict(list)
    for v in votes:
        by_fold[v["fold"]].append(v)
    out = []
    for fold, preds in sorted(by_fold.items()):
        conf = aggregate.confusion_from_labels([p["label"] for p in preds], [p["pred"] for p in preds], n_classes)
        m = member_uar.get(fold, [])
        out.append({"fold": fold, "seed": ENSEMBLE_SEED, **aggregate.metrics_from_confusion(conf), "n_test": len(preds),
                    "members": ",".join(map(str, members)),
                    "members_mean_uar": float(np.mean(m)) if m else math.nan,
                    "members_min_uar": min(m) if m else math.nan, "members_max_uar": max(m) if m else math.nan})
    return out


def summarize(folds: Sequence[Mapping], votes: Sequence[Mapping], class_names: Sequence[str],
              members: Sequence[int], member_rows: Sequence[Mapping]) -> dict:
    """The ensemble's fold-mean and pooled metrics, and its members' seed means for reference."""
    s = aggregate.summarize(folds, votes, len(class_names))
    member_means = [v["uar"] for seed, v in
                    aggregate.per_seed_fold_mean([r for r in member_rows if int(r["seed"]) in members], ["uar"]).items()]
    mean, std = aggregate.mean_std(member_means)
    s.update({"members": list(members), "class_names": list(class_names),
              "members_uar": {"mean": mean, "std": std, "n": len(member_means)},
              "gain_over_members": s["uar"]["mean"] - mean})
    return s


def summary_markdown(s: Mapping, folds: Sequence[Mapping], title: str) -> str:
    f, pct = aggregate.fmt_pct, (lambda x: runs.fmt(100 * x, ".1f"))
    lines = [f"## {title}", "",
             f"Soft voting over seeds {','.join(map(str, s['members']))} (mean of their class probabilities per "
             "utterance, then argmax). Values in %; the ensemble is one model per fold, so it has no ± over seeds; "
             "its members' fold-mean UAR is mean ± std over them.", "",
             *([f"Protocol of the members: {s['protocol']}.", ""] if s.get("protocol") else []),
             tables.markdown_table(["UAR (fold mean)", "UAR (pooled)", "WA (fold mean)", "macro-F1",
                                    "members' UAR", "gain over members (points)", "members"],
                                   [[f(s["uar"]), f(s.get("pooled_uar")), f(s["wa"]), f(s["f1"]),
                                     f(s["members_uar"]), f"{100 * s['gain_over_members']:+.1f}",
                                     len(s["members"])]]), "",
             "Per fold:", "",
             tables.markdown_table(["fold", "ensemble UAR", "members' mean", "members' min – max", "gain"],
                                   [[r["fold"], pct(r["uar"]), pct(r["members_mean_uar"]),
                                     f"{pct(r['members_min_uar'])} – {pct(r['members_max_uar'])}",
                                     f"{100 * (r['uar'] - r['members_mean_uar']):+.1f}"] for r in folds]), ""]
    lines += tables.confusion_lines(s.get("confusion"), s["class_names"], "all folds")
    lines += [tables.provenance(s), ""]
    return "\n".join(lines)


def build(cv_dir: str | Path, seeds: Sequence[int] | None = None) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """``(summary, fold rows, voted predictions, the members' predictions)`` of the ensemble of a cv folder's
    seeds, in memory (the members' rows for :func:`permutation_test`, so nothing is read twice)."""
    cv_dir = Path(cv_dir)
    pred_rows = read_prediction_rows(cv_dir)
    if pred_rows is None:
        raise FileNotFoundError(f"{cv_dir / 'predictions.csv'}: missing (run `python -m mtl_aug cv ... --out {cv_dir}` "
                                "first)")
    member_rows = read_fold_rows(cv_dir)
    votes = soft_vote(pred_rows, seeds)
    members = member_seeds(pred_rows, seeds)
    class_names = [c[len("prob_"):] for c in prob_columns(votes)]
    folds = fold_rows(votes, member_rows, members)
    summary = summarize(folds, votes, class_names, members, member_rows)
    source = read_json(cv_dir / "summary.json") or {}  # where and with what the members were trained
    summary.update({"title": f"ensemble of {len(members)} seeds of {cv_dir.name}", "source": str(cv_dir),
                    **{k: source[k] for k in ("trained_at", "trained_on", "protocol") if k in source}})
    return summary, folds, votes, pred_rows


def run_ensemble(cv_dir: str | Path, seeds: Sequence[int] | None = None, out: str | Path | None = None,
                 meta: Mapping | None = None) -> dict:
    summary, folds, votes, _ = build(cv_dir, seeds)
    summary.update(meta or {})
    out = Path(out) if out else Path(cv_dir) / "ensemble"
    write_csv(out / "folds.csv", folds, FOLD_COLUMNS)
    write_csv(out / "predictions.csv", votes)
    atomic_write_json(out / "summary.json", summary)
    plots.confusion_png(summary["confusion"], summary["class_names"], out / "confusion.png",
                        title=f"{summary['title']}\nall folds pooled")
    atomic_write_text(out / "summary.md", summary_markdown(summary, folds, summary["title"]))
    summary["out"] = str(out)
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug ensemble", description=__doc__.split("\n")[0])
    p.add_argument("cv_dir", help="a cv result folder (holds predictions.csv and folds.csv)")
    p.add_argument("--seeds", default=None,
                   help="the members: a count N (seeds 0..N-1) or a list '0,3,5' (default: every seed in predictions.csv)")
    p.add_argument("--out", default=None, help="default <cv_dir>/ensemble")
    return p


def main(argv: list[str]) -> int:
    a = parser().parse_args(argv)
    try:
        s = run_ensemble(a.cv_dir, runs.parse_seeds(a.seeds) if a.seeds else None, a.out,
                         provenance("ensemble", argv))
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"ensemble: {e}") from None
    f = aggregate.fmt_pct
    print(f"ensemble of seeds {','.join(map(str, s['members']))} of {a.cv_dir}: UAR {f(s['uar'])} "
          f"(pooled {f(s.get('pooled_uar'))}), WA {f(s['wa'])}, F1 {f(s['f1'])}; its members {f(s['members_uar'])}, "
          f"gain {100 * s['gain_over_members']:+.1f} points -> {s['out']}/summary.md")
    return 0
