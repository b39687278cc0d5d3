"""Emotion-recognition metrics. The definitions below are the project's single source of truth.

* **UAR** (unweighted average recall, a.k.a. "UA"): the mean over classes of the per-class recall
  ``cm[c, c] / cm[c, :].sum()``, each class weighted equally whatever its size. Classes with no
  reference example in the evaluated set are left out of the mean. This equals
  ``sklearn.metrics.balanced_accuracy_score`` and, when every class occurs in the targets,
  ``torchmetrics MulticlassRecall(average="macro")``.
* **WA** (weighted accuracy, a.k.a. "WA"): overall accuracy, ``trace(cm) / cm.sum()`` — each
  utterance weighted equally, so large classes dominate.
* **F1**: macro-averaged F1 over classes.

Confusion matrices are ``cm[true, predicted]`` (rows = reference).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score


def uar_from_confusion(cm: Tensor) -> Tensor:
    """UAR (see module docstring) from a confusion matrix ``cm[true, pred]``, or from a batch ``cm[..., true, pred]``
    (one UAR per leading index: resampling tests score thousands at once); NaN when no class has an example."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    recall = cm.diagonal(dim1=-2, dim2=-1) / cm.sum(-1)  # 0 / 0 = NaN for an absent class: left out below
    return recall.nanmean(-1).float()


def wa_from_confusion(cm: Tensor) -> Tensor:
    """WA (overall accuracy) from a confusion matrix ``cm[true, pred]``."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    return (cm.diagonal().sum() / cm.sum().clamp(min=1)).float()


class UnweightedAverageRecall(MulticlassConfusionMatrix):
    """UAR as a torchmetrics object: accumulates (and DDP-syncs) the confusion matrix and applies
    :func:`uar_from_confusion`, so classes absent from the targets are skipped exactly as sklearn does."""

    def compute(self) -> Tensor:  # type: ignore[override]
        return uar_from_confusion(super().compute())


def emotion_metrics(num_classes: int, prefix: str = "") -> MetricCollection:
    """Keys ``{prefix}uar``, ``{prefix}wa``, ``{prefix}f1``; update with ``(preds_or_logits, target)``."""
    return MetricCollection(
        {
            "uar": UnweightedAverageRecall(num_classes=num_classes),
            "wa": MulticlassAccuracy(num_classes=num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes=num_classes, average="macro"),
        },
        prefix=prefix,
        compute_groups=False,
    )


def confusion_matrix_metric(num_classes: int) -> MulticlassConfusionMatrix:
    """Un-normalised counts ``cm[true, pred]``."""
    return MulticlassConfusionMatrix(num_classes=num_classes)


# -- metrics of one confusion matrix (numpy in, floats out): the evaluation reports and the baselines use these
def confusion_from_labels(labels: Sequence[int], preds: Sequence[int], n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class (counts)."""
    conf = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(labels, preds):
        conf[int(t), int(p)] += 1
    return conf


def uar(confusion) -> float:
    """Unweighted average recall of a confusion matrix (classes with no true example are skipped)."""
    return float(uar_from_confusion(torch.as_tensor(np.asarray(confusion, dtype=np.float64))))


def wa(confusion) -> float:
    """Weighted accuracy = overall accuracy."""
    conf = np.asarray(confusion, dtype=np.float64)
    total = conf.sum()
    return float(np.trace(conf) / total) if total else float("nan")


def macro_f1(confusion) -> float:
    """Mean over classes with support of F1 = 2PR/(P+R) (0 when P+R = 0), as sklearn ``f1_score(average="macro")``
    restricted to the classes present in the labels or the predictions."""
    conf = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(conf)
    support, predicted = conf.sum(1), conf.sum(0)
    present = (support > 0) | (predicted > 0)
    if not present.any():
        return float("nan")
    f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1e-12), 0.0)
    return float(f1[present].mean())


def metrics_from_confusion(confusion) -> dict[str, float]:
    return {"uar": uar(confusion), "wa": wa(confusion), "f1": macro_f1(confusion)}


def aggregate_runs(values: Sequence[float]) -> tuple[float, float]:
    """Mean and SAMPLE standard deviation (ddof=1; 0.0 for a single run) over folds/seeds."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("aggregate_runs needs at least one value")
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
