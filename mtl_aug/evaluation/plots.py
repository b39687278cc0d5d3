"""PNG figures of the evaluation suite (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def confusion_png(confusion, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (recall per true class) with the counts in each cell."""
    conf = np.asarray(confusion, dtype=np.float64)
    support = conf.sum(1, keepdims=True)
    norm = np.divide(conf, support, out=np.zeros_like(conf), where=support > 0)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2, 1.1 * n + 1.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(conf[i, j])})", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.55 else "black")
    ax.set_xticks(range(n), class_names, rotation=30)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="recall")
    return _save(fig, path)


def lines_png(
    series: Mapping[str, Mapping[str, tuple[float, float]]],
    xs: Sequence[str],
    path: str | Path,
    xlabel: str,
    ylabel: str = "UAR (%)",
    title: str = "",
) -> Path:
    """One line (mean with a ±std band) per series; ``series[name][x] = (mean, std)`` as fractions."""
    fig, ax = plt.subplots(figsize=(6, 4))
    pos = np.arange(len(xs))
    for name, values in series.items():
        mean = np.array([values.get(x, (np.nan, np.nan))[0] for x in xs], dtype=float) * 100
        std = np.array([values.get(x, (np.nan, np.nan))[1] for x in xs], dtype=float) * 100
        ax.plot(pos, mean, marker="o", label=name)
        ax.fill_between(pos, mean - std, mean + std, alpha=0.15)
    ax.set_xticks(pos, list(xs))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bars_png(
    groups: Mapping[str, Mapping[str, tuple[float, float, int]]],
    path: str | Path,
    references: Mapping[str, float] | None = None,
    ylabel: str = "UAR (%)",
    title: str = "",
) -> Path:
    """Grouped bars: ``groups[system][variant] = (mean, std, n seeds)`` as fractions; one bar per variant
    (e.g. normalisation) in each system's group, ±std whiskers (none for one seed), the seed count on the bar; ``references``
    (name -> fraction) as dashed horizontal lines."""
    variants = list(dict.fromkeys(v for g in groups.values() for v in g))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(groups) + 3.5), 4))
    width = 0.8 / max(1, len(variants))
    pos = np.arange(len(groups))
    for k, variant in enumerate(variants):
        vals = [g.get(variant) for g in groups.values()]
        x = pos + (k - (len(variants) - 1) / 2) * width
        mean = np.array([np.nan if v is None else v[0] for v in vals]) * 100
        std = np.array([np.nan if v is None else v[1] for v in vals]) * 100
        ax.bar(x, mean, width, label=variant)
        spread = np.array([v is not None and v[2] > 1 for v in vals])  # one seed: its spread is unknown, not 0
        ax.errorbar(x[spread], mean[spread], yerr=std[spread], fmt="none", ecolor="black", capsize=3)
        for xi, v in zip(x, vals):
            if v is not None:
                ax.text(xi, 1, f"n={v[2]}", ha="center", va="bottom", fontsize=7, color="white")
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(100 * value, ls="--", lw=1, color=f"C{len(variants) + i}", label=name)
    ax.set_xticks(pos, list(groups), rotation=15)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def sweep_png(
    points: Mapping[str, Sequence[tuple[float, float]]],
    path: str | Path,
    metric: str,
    log_x: Sequence[str] = (),
    best: tuple[Mapping[str, float], float] | None = None,
    title: str = "",
) -> Path:
    """One panel per sweep parameter: every finished trial's metric against its value of that parameter
    (``points[name] = [(value, metric), ...]``), log axis for the parameters in ``log_x``, the best trial
    (``best = (its parameter values, its metric)``) ringed in every panel, so a person sees which weights matter and where the
    optimum sits."""
    names = list(points)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        xs, ys = zip(*points[name])
        ax.scatter(xs, ys, s=18, alpha=0.8)
        if best and name in best[0]:
            ax.scatter([best[0][name]], [best[1]], s=90, facecolors="none", edgecolors="red", label="best")
        if name in log_x:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric)
    if best:
        axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
