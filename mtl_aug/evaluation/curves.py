"""``python -m mtl_aug curves``: training curves of cv runs, and how well validation predicts test.

    python -m mtl_aug curves experiments/results/emodb/stl experiments/results/emodb/mtl_aug \
        --out experiments/results/emodb/curves

For each cv result folder (``cv``'s ``--out``; its name is the system's label) it reads every run's
Lightning ``metrics.csv``, or the folder's ``epochs.csv`` for runs whose logs are not on disk (a committed
result tree), and writes into ``--out``:

* ``curves.png``: per epoch, mean over the folds x seeds of the validation UAR and of the training
  cross-entropy, one line per system (a band of ±1 std over the runs still training at that epoch; drawn
  up to the last epoch that at least half of the runs reached before early stopping);
* ``val_vs_test.png``: each run's best validation UAR (the checkpoint chosen) against its test UAR;
* ``curves.md``: per system the mean best validation UAR, mean test UAR and their gap, the mean epoch of
  the chosen checkpoint, and the correlation between validation and test UAR over the runs; for the
  multitask systems, whether the auxiliary tasks learned (augmentation-classifier accuracy and
  reconstruction loss at the first, chosen and last epoch; also a third panel of ``curves.png``); then
  per fold the test UAR of each system (mean over seeds).

A large gap with a weak correlation says the single validation speaker selects checkpoints poorly for
the test speaker (the model fits the speakers it saw rather than emotion); a validation curve still
rising at the last epoch says training stopped too early. Reads results only: nothing is retrained.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from mtl_aug import tables
from mtl_aug.io import atomic_write_text, read_json
from mtl_aug.provenance import provenance

from . import epochs, runs

CURVE_COLUMNS = ("val/uar", "train/ce_epoch", "train/aug_acc_epoch", "train/recon_epoch")  # read per epoch
AUX_COLUMNS = {"train/aug_acc_epoch": "augmentation-classifier training accuracy",
               "train/recon_epoch": "reconstruction loss (training)"}
PERCENT_COLUMNS = ("val/uar", "train/aug_acc_epoch")  # shown ×100


def read_metrics(path: str | Path) -> dict[str, dict[int, float]]:
    """``{column: {epoch: value}}`` of one Lightning ``metrics.csv`` (epoch-level rows; empty cells skipped)."""
    out: dict[str, dict[int, float]] = {c: {} for c in CURVE_COLUMNS}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch")
            if epoch in (None, ""):
                continue
            for c in CURVE_COLUMNS:
                v = row.get(c)
                if v not in (None, ""):
                    out[c][int(epoch)] = float(v)
    return out


def load_system(result_dir: str | Path) -> list[dict]:
    """Every finished run of a cv result folder: its result JSON fields plus its per-epoch curves."""
    loaded = []
    kept = epochs.read_rows(result_dir)  # the runs' epoch rows, for runs whose Lightning logs are not on disk
    for result_path in sorted(Path(result_dir).glob(f"runs/*/{runs.RESULT_FILE}")):
        result = read_json(result_path)
        if not result:
            continue
        mf = epochs.metrics_file(result_path.parent)
        curves = read_metrics(mf) if mf else epochs.curves_of(
            kept.get(epochs.run_key(result_path.parent, result), []), CURVE_COLUMNS)
        val = curves["val/uar"]
        best_epoch = max(val, key=lambda e: (val[e], -e)) if val else None  # ModelCheckpoint keeps the first max
        loaded.append({"fold": str(result["fold"]), "seed": int(result["seed"]), "test_uar": float(result["uar"]),
                       "best_val_uar": result.get("best_val_uar"), "epochs": result.get("epochs"),
                       "best_epoch": best_epoch, "curves": curves})
    return loaded


def mean_curve(run_list: Sequence[dict], column: str, min_share: float = 0.5
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, mean, std)`` over the runs that reached each epoch, for the epochs that at least
    ``min_share`` of the runs reached (later means, over the few runs that early stopping spared, would
    show those runs rather than the system)."""
    epochs = sorted({e for r in run_list for e in r["curves"][column]})
    kept, mean, std = [], [], []
    for e in epochs:
        v = np.array([r["curves"][column][e] for r in run_list if e in r["curves"][column]])
        if v.size >= min_share * len(run_list):
            kept.append(e)
            mean.append(v.mean())
            std.append(v.std())
    return np.array(kept), np.array(mean), np.array(std)


def correlation(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def system_row(name: str, run_list: Sequence[dict]) -> list[str]:
    val = [r["best_val_uar"] for r in run_list if r["best_val_uar"] is not None]
    test = [r["test_uar"] for r in run_list if r["best_val_uar"] is not None]
    best = [r["best_epoch"] for r in run_list if r["best_epoch"] is not None]
    pct = lambda v: f"{100 * float(np.mean(v)):.1f}" if len(v) else "–"  # noqa: E731
    return [name, str(len(run_list)), pct(val), pct(test), f"{100 * (np.mean(val) - np.mean(test)):.1f}" if val else "–",
            f"{np.mean(best) + 1:.1f}" if best else "–", f"{np.mean([r['epochs'] for r in run_list]):.1f}",
            runs.fmt(correlation(val, test), ".2f")]


def aux_row(name: str, run_list: Sequence[dict]) -> list[str] | None:
    """Did the auxiliary tasks learn? Per auxiliary metric, mean over runs at the first epoch, at the chosen
    checkpoint's epoch and at the last epoch; None for a system without auxiliary tasks (STL)."""
    cells = []
    for column in AUX_COLUMNS:
        at = {"first": [], "chosen": [], "last": []}
        for r in run_list:
            c = r["curves"].get(column) or {}
            if not c:
                continue
            at["first"].append(c[min(c)])
            at["last"].append(c[max(c)])
            if r["best_epoch"] is not None:  # the logged epoch at or before the checkpoint's
                before = [e for e in c if e <= r["best_epoch"]]
                at["chosen"].append(c[max(before)] if before else c[min(c)])
        scale, fmt = (100, ".1f") if column in PERCENT_COLUMNS else (1, ".3f")
        cells.append(" / ".join(f"{scale * np.mean(v):{fmt}}" if v else "–" for v in at.values()))
    if all(c == "– / – / –" for c in cells):
        return None
    return [name, *cells]


def fold_rows(systems: dict[str, list[dict]]) -> list[list[str]]:
    folds = sorted({r["fold"] for rl in systems.values() for r in rl})
    rows = []
    for fold in folds:
        row = [fold]
        for rl in systems.values():
            v = [r["test_uar"] for r in rl if r["fold"] == fold]
            val = [r["best_val_uar"] for r in rl if r["fold"] == fold and r["best_val_uar"] is not None]
            row.append(f"{100 * np.mean(v):.1f} (val {100 * np.mean(val):.1f})" if v and val else
                       (f"{100 * np.mean(v):.1f}" if v else "–"))
        rows.append(row)
    return rows


def plot_curves(systems: dict[str, list[dict]], path: Path, title: str) -> Path:
    from .plots import _save, plt

    panels = [("val/uar", "validation UAR (%)"), ("train/ce_epoch", "training cross-entropy")]
    if any(r["curves"].get("train/aug_acc_epoch") for rl in systems.values() for r in rl):
        panels.append(("train/aug_acc_epoch", "augmentation-classifier training accuracy (%)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    for (column, label), ax in zip(panels, axes):
        scale = 100 if column in PERCENT_COLUMNS else 1
        for name, rl in systems.items():
            e, m, s = mean_curve(rl, column)
            if e.size:
                ax.plot(e + 1, m * scale, label=name)
                ax.fill_between(e + 1, (m - s) * scale, (m + s) * scale, alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_val_vs_test(systems: dict[str, list[dict]], path: Path, title: str) -> Path:
    from .plots import _save, plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, rl in systems.items():
        pts = [(r["best_val_uar"], r["test_uar"]) for r in rl if r["best_val_uar"] is not None]
        if pts:
            v, t = zip(*pts)
            ax.scatter(np.array(v) * 100, np.array(t) * 100, label=name, alpha=0.7, s=18)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
    ax.set_xlim(20, 101)
    ax.set_ylim(20, 101)
    ax.set_xlabel("best validation UAR (%) — the checkpoint chosen")
    ax.set_ylabel("test UAR (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def aux_section(systems: dict[str, list[dict]]) -> list[str]:
    rows = [row for n, rl in systems.items() if (row := aux_row(n, rl)) is not None]
    if not rows:
        return []
    return ["Auxiliary tasks (systems that have them): mean over runs at the first epoch / the chosen checkpoint's "
            "epoch / the last epoch. The augmentation classifier has 4 classes (chance 25 %); its accuracy is measured "
            "on each training batch as it is augmented (a fresh draw every epoch), before that step's update.", "",
            tables.markdown_table(["system", *AUX_COLUMNS.values()], rows), ""]


def write_curves(result_dirs: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None,
                 meta: dict | None = None) -> dict:
    """Figures and ``curves.md`` in ``out``; ``meta`` (``mtl_aug.provenance.provenance``) ends ``curves.md`` so the file says
    which command, on which folders, made it."""
    out = Path(out)
    labels = list(labels or [Path(d).name for d in result_dirs])
    systems = {label: load_system(d) for label, d in zip(labels, result_dirs)}
    empty = [label for label, rl in systems.items() if not rl]
    if empty:
        raise SystemExit(f"no finished cv runs in {', '.join(str(d) for d, l in zip(result_dirs, labels) if l in empty)}")
    title = " vs ".join(labels)
    plot_curves(systems, out / "curves.png", f"{title}: mean over folds x seeds (±1 std), "
                "while at least half of the runs train")
    plot_val_vs_test(systems, out / "val_vs_test.png", f"{title}\none point per fold x seed")
    md = [f"## Training curves and validation vs test: {title}", "",
          "Per system, over its finished fold x seed runs: mean best validation UAR (the checkpoint tested), mean "
          "test UAR, their gap, mean epoch of the chosen checkpoint (1 = first), mean epochs trained, and the "
          "Pearson correlation of validation and test UAR over the runs. Values in %.", "",
          tables.markdown_table(["system", "runs", "best val UAR", "test UAR", "gap", "chosen epoch", "epochs",
                                 "corr(val, test)"],
                                [system_row(n, rl) for n, rl in systems.items()]), "",
          *aux_section(systems),
          "Test UAR per fold (mean over seeds; the fold's best validation UAR in brackets):", "",
          tables.markdown_table(["fold", *labels], fold_rows(systems)), "",
          "Figures: `curves.png` (validation UAR and training cross-entropy per epoch), `val_vs_test.png`.", "",
          *(["## Provenance", "", tables.provenance(meta), ""] if meta else [])]
    atomic_write_text(out / "curves.md", "\n".join(md))
    return systems


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug curves", description=__doc__.split("\n")[0])
    p.add_argument("result_dirs", nargs="+", help="cv result folders (e.g. experiments/results/emodb/stl)")
    p.add_argument("--out", required=True, help="folder for curves.md, curves.png, val_vs_test.png")
    p.add_argument("--labels", default=None, help="comma list of names for the folders (default: folder names)")
    return p


def main(argv: list[str]) -> int:
    a = parser().parse_args(argv)
    labels = a.labels.split(",") if a.labels else None
    if labels and len(labels) != len(a.result_dirs):
        raise SystemExit(f"--labels has {len(labels)} names for {len(a.result_dirs)} folders")
    systems = write_curves(a.result_dirs, a.out, labels, provenance("curves", argv))
    for name, rl in systems.items():
        r = system_row(name, rl)
        print(f"{name}: {r[1]} runs, best val UAR {r[2]}, test UAR {r[3]} (gap {r[4]}), corr(val, test) {r[7]}")
    print(f"-> {Path(a.out) / 'curves.md'}, curves.png, val_vs_test.png")
    return 0
