"""Result folders of the evaluation suite: the CSV files a cv folder holds, written and read in one place.

A cv (or cross, ensemble) folder holds ``folds.csv`` (one row per fold x seed), ``predictions.csv`` (one row
per test utterance, with ``prob_<class>`` columns), ``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from mtl_aug.io import atomic_write_text


def write_csv(path: Path, rows: list[dict], columns: Sequence[str] | None = None) -> Path:
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def read_prediction_rows(result_dir: str | Path) -> list[dict] | None:
    path = Path(result_dir) / "predictions.csv"
    if not path.exists():
        return None
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_fold_rows(result_dir: str | Path) -> list[dict]:
    """The rows of ``<result_dir>/folds.csv`` (written by ``cv``); a clear error when it is missing."""
    path = Path(result_dir) / "folds.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no folds.csv (run `python -m mtl_aug cv ... --out {result_dir}` first)")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
