"""Pure metric aggregation for the evaluation suite (no I/O, no torch).

Protocol (docs/protocols.md, "Metrics"):

* a fold's UAR = mean over classes of per-class recall (classes absent from the fold's test set are
  left out of that fold's mean, as sklearn ``balanced_accuracy_score`` does);
* a seed's UAR = the mean of its per-fold UARs ("fold-mean"); beside it, the **pooled** UAR of that
  seed = the UAR of the confusion matrix summed over all of its folds' predictions;
* reported numbers are mean ± std over seeds, std with ``ddof=1`` (the sample std; 0.0 for one seed).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np

from mtl_aug.metrics import confusion_from_labels, macro_f1, metrics_from_confusion, uar, wa  # noqa: F401 (the one definition)

METRICS = ("uar", "wa", "f1")


# -- over seeds ----------------------------------------------------------------------------------------
def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0.0 for a single value) of the finite values."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def per_seed_fold_mean(fold_rows: Iterable[Mapping], metrics: Sequence[str] = METRICS) -> dict[int, dict[str, float]]:
    """``{seed: {metric: mean over that seed's folds}}`` from rows with ``seed`` and the metric columns."""
    by_seed: dict[int, list[Mapping]] = defaultdict(list)
    for row in fold_rows:
        by_seed[int(row["seed"])].append(row)
    return {seed: {m: float(np.mean([float(r[m]) for r in rows])) for m in metrics} | {"n_folds": len(rows)}
            for seed, rows in sorted(by_seed.items())}


def per_seed_pooled(predictions: Iterable[Mapping], n_classes: int) -> dict[int, dict[str, float]]:
    """``{seed: metrics of the confusion pooled over all of that seed's predictions}``.

    Each prediction is a mapping with ``seed``, ``label`` and ``pred`` (class indices).
    """
    by_seed: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for p in predictions:
        labels, preds = by_seed[int(p["seed"])]
        labels.append(int(p["label"]))
        preds.append(int(p["pred"]))
    out = {}
    for seed, (labels, preds) in sorted(by_seed.items()):
        conf = confusion_from_labels(labels, preds, n_classes)
        out[seed] = metrics_from_confusion(conf) | {"n": len(labels)}
    return out


def pooled_confusion(predictions: Iterable[Mapping], n_classes: int) -> np.ndarray:
    """Confusion summed over every prediction given (all folds and seeds)."""
    preds = list(predictions)
    return confusion_from_labels([p["label"] for p in preds], [p["pred"] for p in preds], n_classes)


def summarize(fold_rows: Sequence[Mapping], predictions: Sequence[Mapping], n_classes: int) -> dict:
    """Everything a results table needs, from per-fold rows and per-utterance predictions.

    Returns ``{"seeds", "per_seed": {seed: {...}}, "<metric>": {"mean","std","n"},
    "pooled_<metric>": {"mean","std","n"}, "confusion": pooled counts}``; ``<metric>`` is the fold-mean,
    ``n`` the number of seeds behind the mean.
    """
    fold_mean = per_seed_fold_mean(fold_rows)
    pooled = per_seed_pooled(predictions, n_classes) if predictions else {}
    seeds = sorted(set(fold_mean) | set(pooled))
    out: dict = {"seeds": seeds, "n_runs": len(fold_rows), "per_seed": {}}
    for seed in seeds:
        entry = dict(fold_mean.get(seed, {}))
        entry.update({f"pooled_{m}": v for m, v in pooled.get(seed, {}).items() if m in METRICS})
        out["per_seed"][seed] = entry
    for m in METRICS:
        mean, std = mean_std(fold_mean[s][m] for s in fold_mean)
        out[m] = {"mean": mean, "std": std, "n": len(fold_mean)}
        if pooled:
            mean, std = mean_std(pooled[s][m] for s in pooled)
            out[f"pooled_{m}"] = {"mean": mean, "std": std, "n": len(pooled)}
    out["confusion"] = pooled_confusion(predictions, n_classes).tolist() if predictions else None
    return out


def fmt_pct(stat: Mapping | None, digits: int = 1) -> str:
    """``{"mean": .654, "std": .012}`` -> ``"65.4 ± 1.2"`` (percent); "–" when missing; no "±" for a
    single seed (``"n": 1``), whose spread is unknown rather than 0."""
    if not stat or stat.get("mean") is None or math.isnan(stat["mean"]):
        return "–"
    if stat.get("n") == 1:
        return f"{100 * stat['mean']:.{digits}f}"
    return f"{100 * stat['mean']:.{digits}f} ± {100 * stat['std']:.{digits}f}"
