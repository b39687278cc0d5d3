"""Pure metric aggregation of the evaluation suite (mtl_aug.evaluation.aggregate)."""

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from mtl_aug.evaluation import aggregate as agg


@pytest.mark.parametrize("seed", range(5))
def test_uar_wa_f1_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n_classes = 4
    labels = rng.integers(0, n_classes, 60)
    if seed == 4:  # a class absent from the references (a test speaker without "sad")
        labels[labels == 3] = 0
    preds = np.where(rng.random(60) < 0.5, labels, rng.integers(0, n_classes, 60))
    conf = agg.confusion_from_labels(labels, preds, n_classes)
    assert agg.uar(conf) == pytest.approx(balanced_accuracy_score(labels, preds), abs=1e-6)
    assert agg.wa(conf) == pytest.approx(float(np.mean(labels == preds)))
    assert agg.macro_f1(conf) == pytest.approx(f1_score(labels, preds, average="macro"), abs=1e-9)


def test_mean_std_over_seeds():
    assert agg.mean_std([0.5]) == (0.5, 0.0)
    mean, std = agg.mean_std([0.5, 0.7, 0.6])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)  # sample std, ddof=1
    assert agg.mean_std([0.4, float("nan"), 0.6]) == pytest.approx((0.5, math.sqrt(0.02)))
    assert all(math.isnan(v) for v in agg.mean_std([]))


def _preds(seed, fold, pairs):
    return [{"seed": seed, "fold": fold, "label": t, "pred": p} for t, p in pairs]


def test_summarize_fold_mean_and_pooled_uar():
    # seed 0: fold A perfect on 2 classes; fold B: all predicted 0 on 4 examples of class 1 and 1 of class 0
    a0 = _preds(0, "A", [(0, 0), (1, 1)])
    b0 = _preds(0, "B", [(1, 0)] * 4 + [(0, 0)])
    a1 = _preds(1, "A", [(0, 0), (1, 0)])
    b1 = _preds(1, "B", [(1, 1)] * 4 + [(0, 0)])
    preds = a0 + b0 + a1 + b1
    rows = []
    for seed, fold, ps in ((0, "A", a0), (0, "B", b0), (1, "A", a1), (1, "B", b1)):
        conf = agg.confusion_from_labels([p["label"] for p in ps], [p["pred"] for p in ps], 2)
        rows.append({"seed": seed, "fold": fold, **agg.metrics_from_confusion(conf)})
    s = agg.summarize(rows, preds, 2)
    # seed 0: fold UARs 1.0 and 0.5 -> 0.75; pooled: class0 2/2, class1 1/5 -> 0.6
    # seed 1: fold UARs 0.5 and 1.0 -> 0.75; pooled: class0 2/2, class1 4/5 -> 0.9
    assert s["per_seed"][0]["uar"] == pytest.approx(0.75) and s["per_seed"][1]["uar"] == pytest.approx(0.75)
    assert s["per_seed"][0]["pooled_uar"] == pytest.approx(0.6)
    assert s["per_seed"][1]["pooled_uar"] == pytest.approx(0.9)
    assert s["uar"] == {"mean": pytest.approx(0.75), "std": pytest.approx(0.0), "n": 2}
    assert s["pooled_uar"]["mean"] == pytest.approx(0.75)
    assert s["pooled_uar"]["std"] == pytest.approx(np.std([0.6, 0.9], ddof=1))
    labels = [p["label"] for p in preds if p["seed"] == 0]
    assert s["per_seed"][0]["pooled_uar"] == pytest.approx(
        balanced_accuracy_score(labels, [p["pred"] for p in preds if p["seed"] == 0]))
    assert np.sum(s["confusion"]) == len(preds)
    assert agg.fmt_pct(s["uar"]) == "75.0 ± 0.0"
    one_seed = agg.summarize([r for r in rows if r["seed"] == 0], a0 + b0, 2)
    assert one_seed["uar"]["n"] == 1 and agg.fmt_pct(one_seed["uar"]) == "75.0"  # no spread from one seed
