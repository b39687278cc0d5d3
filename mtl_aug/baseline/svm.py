"""Functionals + SVM: standardisation, a speaker-grouped inner search over kernel and C, the final fit.

Pure (numpy + scikit-learn, no I/O). The inner search is the textbook nested protocol: every inner fold
holds out whole training speakers, the scaler is refitted on the inner training part, and the score is
UAR (``balanced_accuracy``) over the held-out speakers' pooled predictions. Kernels are precomputed once per
inner fold (the linear Gram matrix and the squared distances serve every C and both kernels), so the whole
grid costs a few SVM fits on a small matrix instead of one full fit per point.

Group normalisation (``normalize="speaker"`` or ``"corpus"``) z-normalises every feature per group with the
group's own statistics over all of its utterances (test speakers included, never their labels), as the
neural systems' speaker normalisation does with log-mels; the training-set scaler is applied on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

KERNELS = ("linear", "rbf")


def group_stats(x: np.ndarray, groups: Sequence[str], eps: float = 1e-8) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per group: mean and std (ddof=0, floored at ``eps``) of every feature over the group's rows."""
    groups = np.asarray(groups)
    stats = {}
    for g in sorted(set(groups.tolist())):
        rows = x[groups == g].astype(np.float64)
        stats[g] = (rows.mean(0), np.maximum(rows.std(0), eps))
    return stats


def group_normalize(x: np.ndarray, groups: Sequence[str], stats: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each row z-normalised with its group's statistics (a group without statistics is a KeyError naming it)."""
    out = np.empty_like(x, dtype=np.float64)
    for i, g in enumerate(groups):
        if g not in stats:
            raise KeyError(f"no normalisation statistics for group {g!r}")
        mean, std = stats[g]
        out[i] = (x[i] - mean) / std
    return out


def inner_splits(groups: Sequence[str], n_folds: int | None) -> list[np.ndarray]:
    """Held-out row indices of each inner fold: one speaker per fold (``n_folds=None``), else the sorted
    speakers dealt round-robin into ``n_folds`` groups (deterministic, no shuffling)."""
    groups = np.asarray(groups)
    speakers = sorted(set(groups.tolist()))
    if len(speakers) < 2:
        raise ValueError(f"the inner search needs at least 2 training speakers, got {speakers}")
    k = len(speakers) if n_folds is None else min(int(n_folds), len(speakers))
    if k < 2:
        raise ValueError(f"inner_folds must be >= 2, got {n_folds}")
    buckets = [speakers[i::k] for i in range(k)]
    return [np.flatnonzero(np.isin(groups, b)) for b in buckets]


def _uar(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    recalls = [np.mean(pred[y == c] == c) for c in range(n_classes) if np.any(y == c)]
    return float(np.mean(recalls))


def _kernel(kind: str, a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    dot = a @ b.T
    if kind == "linear":
        return dot
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * dot
    return np.exp(-gamma * np.maximum(sq, 0.0))


@dataclass
class SearchResult:
    kernel: str
    C: float
    score: float  # inner-CV UAR of the chosen point
    grid: list[dict] = field(default_factory=list)  # every point: kernel, C, inner UAR


def search(x: np.ndarray, y: np.ndarray, groups: Sequence[str], n_classes: int, kernels: Sequence[str] = KERNELS,
           cs: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), inner_folds: int | None = None) -> SearchResult:
    """Kernel and C by speaker-grouped inner cross-validation (pooled inner UAR; ties: the earlier kernel, then
    the smaller C, i.e. the simpler model)."""
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown or not kernels:
        raise ValueError(f"kernels must be a non-empty subset of {KERNELS}, got {list(kernels)}")
    preds = {(k, c): np.full(len(y), -1) for k in kernels for c in cs}
    for held in inner_splits(groups, inner_folds):
        fit = np.setdiff1d(np.arange(len(y)), held)
        scaler = StandardScaler().fit(x[fit])
        a, b = scaler.transform(x[fit]), scaler.transform(x[held])
        gamma = 1.0 / (a.shape[1] * a.var()) if a.var() > 0 else 1.0  # sklearn's gamma="scale"
        for k in kernels:
            k_fit, k_held = _kernel(k, a, a, gamma), _kernel(k, b, a, gamma)
            for c in cs:
                svm = SVC(kernel="precomputed", C=c, class_weight="balanced").fit(k_fit, y[fit])
                scores = svm.decision_function(k_held)
                preds[(k, c)][held] = svm.classes_[np.argmax(scores.reshape(len(held), -1), 1)] if scores.ndim > 1 \
                    else svm.classes_[(scores > 0).astype(int)]
    grid = [{"kernel": k, "C": float(c), "uar": _uar(y, preds[(k, c)], n_classes)} for k in kernels for c in cs]
    best = max(grid, key=lambda g: (round(g["uar"], 12), -list(kernels).index(g["kernel"]), -g["C"]))
    return SearchResult(best["kernel"], best["C"], best["uar"], grid)


class FunctionalsSVM:
    """StandardScaler + SVC(class_weight="balanced") on functionals; kernel and C from :func:`search`.

    ``decision_scores`` are the one-vs-rest decision values (``decision_function_shape="ovr"``), and
    ``predict`` is their argmax, so predictions and scores always agree (``break_ties`` semantics).
    """

    def __init__(self, n_classes: int, kernels: Sequence[str] = KERNELS,
                 cs: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), inner_folds: int | None = None,
                 seed: int = 0) -> None:
        self.n_classes = n_classes
        self.kernels, self.cs, self.inner_folds, self.seed = list(kernels), list(cs), inner_folds, seed
        self.scaler: StandardScaler | None = None
        self.svm: SVC | None = None
        self.search_result: SearchResult | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> "FunctionalsSVM":
        missing = sorted(set(range(self.n_classes)) - set(np.asarray(y).tolist()))
        if missing:
            raise ValueError(f"the training set has no example of class(es) {missing}")
        self.search_result = search(x, y, groups, self.n_classes, self.kernels, self.cs, self.inner_folds)
        self.scaler = StandardScaler().fit(x)
        self.svm = SVC(kernel=self.search_result.kernel, C=self.search_result.C, gamma="scale",
                       class_weight="balanced", decision_function_shape="ovr", random_state=self.seed)
        self.svm.fit(self.scaler.transform(x), y)
        return self

    def decision_scores(self, x: np.ndarray) -> np.ndarray:
        """``[n, n_classes]`` one-vs-rest decision values, columns in class-index order."""
        if self.svm is None:
            raise RuntimeError("FunctionalsSVM is not fitted")
        s = self.svm.decision_function(self.scaler.transform(x))
        s = s.reshape(len(x), -1) if s.ndim > 1 else np.stack([-s, s], 1)
        out = np.full((len(x), self.n_classes), -np.inf)
        out[:, self.svm.classes_] = s
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.decision_scores(x), 1)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax: decision scores as a distribution over classes (same argmax; not calibrated)."""
    z = scores - scores.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
