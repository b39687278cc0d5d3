"""Per-epoch training logs of a result folder in one file, ``<folder>/epochs.csv``, and ``compact-results``.

Each run of a cv or cross folder trains with Lightning's CSV logger (``runs/<fold>_s<seed>/train/version_N/``:
``metrics.csv``, ``config.yaml``, ``hparams.yaml``, ``results.json``). Those per-run files are not committed
(``.gitignore``); what a reader and ``curves`` need from them is kept in ``epochs.csv``: one row per
fold x seed x epoch with every epoch-level column of the run's ``metrics.csv`` (validation metrics, training
losses and accuracies; step-level and test columns left out, the test metrics are in ``result.json``), the
values copied as logged, so a retrained run can be checked against it value for value.

``cv`` and ``cross`` write ``epochs.csv`` with their reports. For result folders copied from elsewhere (or
older trees), ``compact-results`` writes it, and with ``--delete`` removes the per-run log files that
``epochs.csv`` and ``result.json`` make redundant (never a checkpoint or a ``result.json``):

    python -m mtl_aug compact-results experiments/results             # write/refresh every epochs.csv
    python -m mtl_aug compact-results experiments/results --delete    # then drop the per-run log files
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Iterable

from mtl_aug.io import read_json

from .results import write_csv

EPOCHS_FILE = "epochs.csv"
KEY_COLUMNS = ("fold", "seed", "epoch")
LOG_FILES = ("metrics.csv", "config.yaml", "hparams.yaml", "results.json")  # Lightning's per-run files
RunKey = tuple[str, str]  # (fold, seed) as strings


def metrics_file(run_dir: Path) -> Path | None:
    """The run's latest ``train/version_N/metrics.csv`` (a resumed run trains in a fresh version)."""
    found = sorted(Path(run_dir).glob("train/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[-1]))
    return found[-1] if found else None


def epoch_level(column: str) -> bool:
    return column not in ("epoch", "step") and not column.endswith("_step") and not column.startswith("test/")


def epoch_rows(path: str | Path) -> list[dict[str, str]]:
    """One dict per epoch of a Lightning ``metrics.csv`` (its rows merged by epoch), epoch-level columns only,
    values as written."""
    merged: dict[int, dict[str, str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch") in (None, ""):
                continue
            cells = {c: v for c, v in row.items() if c and epoch_level(c) and v not in (None, "")}
            if cells:
                merged.setdefault(int(row["epoch"]), {}).update(cells)
    return [{"epoch": str(e), **merged[e]} for e in sorted(merged)]


def read_rows(folder: str | Path) -> dict[RunKey, list[dict[str, str]]]:
    """``{(fold, seed): [row per epoch]}`` of ``<folder>/epochs.csv`` ({} without one)."""
    path = Path(folder) / EPOCHS_FILE
    out: dict[RunKey, list[dict[str, str]]] = {}
    if not path.exists():
        return out
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            cells = {c: v for c, v in row.items() if c not in ("fold", "seed") and v not in (None, "")}
            out.setdefault((row["fold"], row["seed"]), []).append(cells)
    return out


def curves_of(rows: Iterable[dict[str, str]], columns: Iterable[str]) -> dict[str, dict[int, float]]:
    """``{column: {epoch: value}}`` of a run's epoch rows (the form ``curves`` reads)."""
    out: dict[str, dict[int, float]] = {c: {} for c in columns}
    for row in rows:
        for c in out:
            if row.get(c) not in (None, ""):
                out[c][int(row["epoch"])] = float(row[c])
    return out


def run_key(run_dir: Path, result: dict | None = None) -> RunKey:
    """(fold, seed) of a run folder, from its result or its name ``<fold>_s<seed>``."""
    if result and "fold" in result and "seed" in result:
        return str(result["fold"]), str(result["seed"])
    fold, _, seed = Path(run_dir).name.rpartition("_s")
    return fold, seed


def merged_rows(folder: Path, run_dirs: Iterable[Path]) -> dict[RunKey, list[dict[str, str]]]:
    """The rows of ``<folder>/epochs.csv`` with each finished run's own ``metrics.csv`` (when it has one) in place
    of its rows: a run whose logs were removed keeps the rows the file holds for it."""
    rows = read_rows(folder)
    for run_dir in run_dirs:
        result, mf = read_json(Path(run_dir) / "result.json"), metrics_file(run_dir)
        if mf is not None and result and result.get("finished"):  # an interrupted run is redone, not reported
            rows[run_key(run_dir, result)] = epoch_rows(mf)
    return rows


def write_epochs(folder: str | Path, run_dirs: Iterable[Path]) -> Path | None:
    """Refresh ``<folder>/epochs.csv`` from the runs' ``metrics.csv`` (:func:`merged_rows`); None when there is
    nothing to write."""
    folder = Path(folder)
    rows = merged_rows(folder, run_dirs)
    if not any(rows.values()):
        return None
    columns = sorted({c for rl in rows.values() for r in rl for c in r} - set(KEY_COLUMNS))
    ordered = sorted(rows, key=lambda k: (k[0], int(k[1]) if k[1].isdigit() else k[1]))
    flat = [{"fold": k[0], "seed": k[1], **r} for k in ordered for r in rows[k]]
    return write_csv(folder / EPOCHS_FILE, flat, [*KEY_COLUMNS, *columns])


# -- compact-results ---------------------------------------------------------------------------------------
def result_folders(roots: Iterable[Path]) -> dict[Path, list[Path]]:
    """``{folder: [run dirs]}`` of every folder under ``roots`` whose runs have Lightning logs."""
    found: dict[Path, list[Path]] = {}
    for root in roots:
        for mf in sorted(Path(root).glob("**/runs/*/train/version_*/metrics.csv")):
            run_dir = mf.parents[2]
            found.setdefault(run_dir.parent.parent, [])
            if run_dir not in found[run_dir.parent.parent]:
                found[run_dir.parent.parent].append(run_dir)
    return found


def redundant(run_dir: Path, log_file: Path, kept: dict[RunKey, list[dict[str, str]]]) -> str | None:
    """Why ``log_file`` of a run may go (None: keep it). ``metrics.csv``: its epoch rows are in ``epochs.csv``;
    ``results.json``: every field equals the run's ``result.json``; the configs: rebuilt from ``result.json``'s
    recorded args (``fit <args> --print_config`` at its recorded commit)."""
    result = read_json(run_dir / "result.json")
    if not result or not result.get("finished"):
        return None  # an unfinished run: its logs are all there is
    if log_file.name == "metrics.csv":
        return "in epochs.csv" if kept.get(run_key(run_dir, result)) == epoch_rows(log_file) else None
    if log_file.name == "results.json":
        logged = read_json(log_file)
        return "copy of result.json" if logged is not None and all(
            json.dumps(result.get(k)) == json.dumps(v) for k, v in logged.items()) else None
    return "rebuilt from result.json's args" if result.get("args") else None


def compact(roots: Iterable[Path], delete: bool = False, dry_run: bool = False) -> dict:
    stats = {"folders": 0, "runs": 0, "removed": 0, "bytes": 0, "kept": []}
    for folder, run_dirs in result_folders(roots).items():
        stats["folders"] += 1
        stats["runs"] += len(run_dirs)
        if not dry_run:
            write_epochs(folder, run_dirs)
        if not delete:
            continue
        kept = merged_rows(folder, run_dirs)
        for run_dir in run_dirs:
            for version in sorted(run_dir.glob("train/version_*")):
                for name in LOG_FILES:
                    f = version / name
                    if not f.exists():
                        continue
                    if redundant(run_dir, f, kept):
                        stats["removed"] += 1
                        stats["bytes"] += f.stat().st_size
                        if not dry_run:
                            f.unlink()
                    else:
                        stats["kept"].append(str(f))
                for d in (version, version.parent):  # empty now unless a checkpoint lives there
                    if not dry_run and d.is_dir() and not any(d.iterdir()):
                        d.rmdir()
    return stats


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mtl_aug compact-results", description=__doc__.split("\n")[0])
    p.add_argument("roots", nargs="*", type=Path, default=[Path("experiments/results")],
                   help="result trees or folders (default experiments/results)")
    p.add_argument("--delete", action="store_true",
                   help="remove the runs' Lightning log files that epochs.csv / result.json make redundant "
                        "(checkpoints and result.json are never touched)")
    p.add_argument("--dry-run", action="store_true", help="count what would be written and removed; change nothing")
    a = p.parse_args(argv)
    s = compact(a.roots, a.delete, a.dry_run)
    verb = "would remove" if a.dry_run else "removed"
    print(f"{s['folders']} result folder(s), {s['runs']} run(s) with logs: epochs.csv "
          f"{'to write' if a.dry_run else 'written'}" + (f"; {verb} {s['removed']} file(s), "
                                                          f"{s['bytes'] / 1e6:.1f} MB" if a.delete else ""))
    for f in s["kept"]:
        print(f"kept (not redundant): {f}")
    return 0
