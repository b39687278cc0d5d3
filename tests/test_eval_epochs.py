"""``epochs.csv`` (a result folder's per-epoch logs in one file) and ``compact-results``: curves read the same
numbers with or without the runs' Lightning logs; only redundant files are removed, never a checkpoint or a
``result.json``; the ``.gitignore`` guard keeps the per-run logs out of the committed tree."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mtl_aug.evaluation import curves, epochs

REPO = Path(__file__).resolve().parents[1]
HEADER = "epoch,step,train/ce_epoch,train/ce_step,val/uar,test/uar\n"


def _run(folder: Path, fold: str, seed: int, val: list[float], finished: bool = True) -> Path:
    run = folder / "runs" / f"{fold}_s{seed}"
    d = run / "train" / "version_0"
    d.mkdir(parents=True)
    lines = [HEADER]
    for e, v in enumerate(val):
        lines.append(f"{e},{e * 10 + 4},,0.9,,\n")                       # a step row
        lines.append(f"{e},{e * 10 + 9},,,{v!r},\n")                      # validation row
        lines.append(f"{e},{e * 10 + 9},{1 - v!r},,,\n")                  # training-epoch row
    lines.append(f"{len(val) - 1},{len(val) * 10},,,,0.5\n")              # the test row
    (d / "metrics.csv").write_text("".join(lines))
    result = {"fold": fold, "seed": seed, "uar": 0.5, "best_val_uar": max(val), "epochs": len(val),
              "predictions": [{"key": "a", "label": 0, "pred": 1}], "args": ["--data.fold=" + fold]}
    if finished:
        result["finished"] = "2026-01-01T00:00:00+00:00"
        (d / "results.json").write_text(json.dumps({k: result[k] for k in ("fold", "uar", "predictions")}))
    (run / "result.json").write_text(json.dumps(result))
    (d / "config.yaml").write_text("seed_everything: 0\n")
    (d / "hparams.yaml").write_text("lr: 0.002\n")
    return run


def test_epoch_rows_merge_a_metrics_file_by_epoch_and_keep_values_as_logged(tmp_path):
    run = _run(tmp_path / "stl", "01", 0, [0.25, 0.123456789012])
    rows = epochs.epoch_rows(epochs.metrics_file(run))
    assert rows == [{"epoch": "0", "val/uar": "0.25", "train/ce_epoch": "0.75"},
                    {"epoch": "1", "val/uar": "0.123456789012", "train/ce_epoch": repr(1 - 0.123456789012)}]


def test_curves_are_the_same_from_epochs_csv_after_compact_delete(tmp_path):
    folder = tmp_path / "stl"
    _run(folder, "01", 0, [0.5, 0.7, 0.9])
    _run(folder, "02", 0, [0.6, 0.8])
    _run(folder, "02", 1, [0.4, 0.6, 0.7, 0.65])
    partial = _run(folder, "03", 0, [0.3], finished=False)  # an interrupted run: not reported, logs kept
    ckpt = folder / "runs" / "01_s0" / "train" / "version_0" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    before = curves.load_system(folder)

    stats = epochs.compact([tmp_path], delete=True)
    assert stats["removed"] == 12 and stats["folders"] == 1
    assert not list(folder.glob("runs/0[12]_s*/train/version_0/*.*")) and ckpt.exists()  # only the checkpoint left
    assert not (folder / "runs" / "02_s0" / "train").exists()                            # empty folders removed
    assert (partial / "train" / "version_0" / "metrics.csv").exists()
    assert all((folder / "runs" / r / "result.json").exists() for r in ("01_s0", "02_s0", "02_s1", "03_s0"))
    assert {(r["fold"], r["seed"]) for r in _csv(folder / "epochs.csv")} == {("01", "0"), ("02", "0"), ("02", "1")}
    assert curves.load_system(folder) == before

    # a re-aggregation on the compacted folder (no logs left) keeps every run's rows
    text = (folder / "epochs.csv").read_text()
    epochs.write_epochs(folder, [folder / "runs" / r for r in ("01_s0", "02_s0")])
    assert (folder / "epochs.csv").read_text() == text


def test_compact_keeps_a_results_json_that_differs_from_result_json(tmp_path):
    run = _run(tmp_path / "stl", "01", 0, [0.5])
    logged = run / "train" / "version_0" / "results.json"
    logged.write_text(json.dumps({"uar": 0.9}))
    stats = epochs.compact([tmp_path], delete=True)
    assert logged.exists() and stats["kept"] == [str(logged)]


def test_compact_dry_run_changes_nothing(tmp_path, capsys):
    _run(tmp_path / "stl", "01", 0, [0.5])
    assert epochs.main([str(tmp_path), "--delete", "--dry-run"]) == 0
    assert "would remove 4 file(s)" in capsys.readouterr().out
    assert not (tmp_path / "stl" / "epochs.csv").exists()
    assert len(list(tmp_path.glob("stl/runs/01_s0/train/version_0/*"))) == 4


def _csv(path: Path) -> list[dict]:
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def _in_git() -> bool:
    return shutil.which("git") is not None and _git("rev-parse").returncode == 0


@pytest.mark.skipif(not _in_git(), reason="needs git and a git checkout")
def test_the_committed_tree_holds_no_per_run_logs_and_the_guard_ignores_them():
    tracked = _git("ls-files", "experiments/results").stdout.split()
    assert tracked, "no committed results"
    assert [p for p in tracked if "/runs/" in p and "/train/" in p] == []
    probe = ["experiments/results/emodb/stl/runs/03_s0/train/version_0/metrics.csv",
             "experiments/results/cross/a_to_b/stl/runs/all_s0/train/version_0/checkpoints/best.ckpt"]
    out = _git("check-ignore", "--no-index", *probe).stdout.split()
    assert out == probe
    kept = ["experiments/results/emodb/stl/runs/03_s0/result.json", "experiments/results/emodb/stl/epochs.csv"]
    assert _git("check-ignore", "--no-index", *kept).stdout.strip() == ""
    # every result folder whose runs trained with Lightning keeps their epochs in epochs.csv
    folders = {p.split("/runs/")[0] for p in tracked if p.endswith("/result.json") and "/runs/" in p}
    for folder in folders:
        results = [json.loads((REPO / p).read_text()) for p in tracked
                   if p.startswith(folder + "/runs/") and p.endswith("/result.json")]
        if any(r.get("best_val_uar") is not None and r.get("epochs") for r in results):
            assert (REPO / folder / "epochs.csv").exists(), folder
