"""Metric definitions: UAR = balanced accuracy, WA = accuracy."""

import math

import pytest
import torch

from mtl_aug.metrics import aggregate_runs, confusion_matrix_metric, emotion_metrics, uar_from_confusion, wa_from_confusion

try:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
except ImportError:  # dev extra missing: reference by hand
    def balanced_accuracy_score(y, p):
        classes = sorted(set(y))
        return sum(sum(1 for a, b in zip(y, p) if a == c and b == c) / sum(1 for a in y if a == c) for c in classes) / len(classes)

    def accuracy_score(y, p):
        return sum(a == b for a, b in zip(y, p)) / len(y)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", range(5))
def test_uar_and_wa_match_sklearn_on_random_predictions(seed):
    g = torch.Generator().manual_seed(seed)
    n, c = 200, 4
    target = torch.randint(0, c, (n,), generator=g)
    if seed == 4:  # a class absent from the targets but predicted: sklearn skips it
        target[target == 3] = 0
    preds = torch.randint(0, c, (n,), generator=g)
    m = emotion_metrics(c, prefix="val/")
    for chunk in range(0, n, 64):  # several updates, as over batches
        m.update(preds[chunk : chunk + 64], target[chunk : chunk + 64])
    out = m.compute()
    assert set(out) == {"val/uar", "val/wa", "val/f1"}
    ref_uar = balanced_accuracy_score(target.tolist(), preds.tolist())
    assert abs(float(out["val/uar"]) - ref_uar) < 1e-6
    assert abs(float(out["val/wa"]) - accuracy_score(target.tolist(), preds.tolist())) < 1e-6
    cm_metric = confusion_matrix_metric(c)
    cm_metric.update(preds, target)
    cm = cm_metric.compute()
    assert abs(float(uar_from_confusion(cm)) - ref_uar) < 1e-6
    assert abs(float(wa_from_confusion(cm)) - float(out["val/wa"])) < 1e-6


def test_uar_differs_from_wa_on_imbalanced_data():
    cm = torch.tensor([[90, 0], [10, 0]])  # always predicts the majority class
    assert float(wa_from_confusion(cm)) == pytest.approx(0.9)
    assert float(uar_from_confusion(cm)) == pytest.approx(0.5)


def test_aggregate_runs():
    mean, std = aggregate_runs([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert aggregate_runs([0.42]) == (0.42, 0.0)
    with pytest.raises(ValueError):
        aggregate_runs([])
    assert math.isnan(float(uar_from_confusion(torch.zeros(3, 3))))


def test_uar_of_a_batch_of_confusions_is_each_ones_uar():
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    batch = torch.as_tensor(rng.integers(0, 6, size=(5, 3, 4, 4)))
    batch[0, 0, 2] = 0  # class 2 absent from one matrix: left out of its mean
    batch[1, 1] = 0  # an empty matrix: NaN
    got = uar_from_confusion(batch)
    assert got.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            one = uar_from_confusion(batch[i, j])
            assert (math.isnan(float(got[i, j])) and math.isnan(float(one))) or float(got[i, j]) == float(one)
    cm = batch[2, 2].numpy()
    labels = np.repeat(np.arange(16) // 4, cm.ravel())
    preds = np.repeat(np.arange(16) % 4, cm.ravel())
    assert float(got[2, 2]) == pytest.approx(balanced_accuracy_score(labels, preds), abs=1e-6)
