"""``curves``: training curves and validation-vs-test figures from cv result folders (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtl_aug.evaluation import curves, paper_sections

HEADER = "epoch,step,train/ce_epoch,train/loss_epoch,train/ce_step,val/uar,test/uar\n"


def _run(root, fold, seed, val, test_uar, ce=None):
    run = root / "runs" / f"{fold}_s{seed}"
    d = run / "train" / "version_0"
    d.mkdir(parents=True)
    lines = [HEADER]
    for e, v in enumerate(val):
        lines.append(f"{e},{e * 10 + 4},,,0.9,,\n")  # a step row: no epoch-level values
        lines.append(f"{e},{e * 10 + 9},{(ce or val)[e]},{(ce or val)[e]},,{v},\n")
    lines.append(f"{len(val) - 1},{len(val) * 10},,,,,{test_uar}\n")
    (d / "metrics.csv").write_text("".join(lines))
    (run / "result.json").write_text(json.dumps({"fold": fold, "seed": seed, "uar": test_uar,
                                                 "best_val_uar": max(val), "epochs": len(val)}))


def test_curves_tables_and_figures(tmp_path):
    a, b = tmp_path / "stl", tmp_path / "mtl_aug"
    _run(a, "01", 0, [0.5, 0.7, 0.9], 0.8)           # best epoch 3
    _run(a, "02", 0, [0.6, 0.8], 0.6)                # best epoch 2
    _run(a, "03", 0, [0.4, 0.6, 0.7, 0.65], 0.7)     # best epoch 3
    _run(b, "01", 0, [0.5, 0.9, 0.9], 0.9)           # ties: the first maximum (epoch 2) is the checkpoint
    systems = curves.write_curves([a, b], tmp_path / "out")
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    assert (tmp_path / "out" / "val_vs_test.png").stat().st_size > 0
    stl = {r["fold"]: r for r in systems["stl"]}
    assert [stl[f]["best_epoch"] for f in ("01", "02", "03")] == [2, 1, 2]
    assert systems["mtl_aug"][0]["best_epoch"] == 1
    row = curves.system_row("stl", systems["stl"])
    assert row[2] == "80.0" and row[3] == "70.0" and row[4] == "10.0" and row[5] == "2.7"
    assert float(row[7]) == pytest.approx(np.corrcoef([0.9, 0.8, 0.7], [0.8, 0.6, 0.7])[0, 1], abs=0.01)
    md = (tmp_path / "out" / "curves.md").read_text()
    assert "| 01 | 80.0 (val 90.0) | 90.0 (val 90.0) |" in md and "| 02 | 60.0 (val 80.0) | – |" in md
    # epochs reached by fewer than half of the runs are not averaged (only fold 03 reached epoch 4)
    epochs, mean, _ = curves.mean_curve(systems["stl"], "val/uar")
    assert list(epochs) == [0, 1, 2] and mean[0] == pytest.approx(0.5)


def test_curves_cli_refuses_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no finished cv runs"):
        curves.main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")])


def test_paper_tables_find_each_system_by_its_exact_folder(tmp_path):
    """``stl`` must not pick up ``stl_aug_speakernorm`` (a prefix glob did)."""
    for name in ("stl", "stl_speakernorm", "stl_aug_speakernorm", "mtl_aug_unlabelled_corpusnorm"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text("{}")
    assert [p.parent.name for p in paper_sections.system_summaries(tmp_path, "stl")] == ["stl", "stl_speakernorm"]
    assert [p.parent.name for p in paper_sections.system_summaries(tmp_path, "stl_aug")] == ["stl_aug_speakernorm"]
    assert paper_sections.system_summaries(tmp_path, "mtl_aug") == []


def test_auxiliary_task_section_first_chosen_last(tmp_path):
    """For multitask runs: augmentation accuracy and reconstruction loss at the first, chosen and last epoch."""
    stl, mtl = tmp_path / "stl", tmp_path / "mtl_aug"
    _run(stl, "01", 0, [0.5, 0.7], 0.7)
    run = mtl / "runs" / "01_s0"
    d = run / "train" / "version_0"
    d.mkdir(parents=True)
    rows = ["epoch,step,train/ce_epoch,train/aug_acc_epoch,train/recon_epoch,val/uar"]
    for e, (acc, rec, v) in enumerate([(0.3, 0.8, 0.5), (0.6, 0.4, 0.9), (0.8, 0.2, 0.7)]):
        rows.append(f"{e},{e * 10 + 9},1.0,{acc},{rec},{v}")
    (d / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "result.json").write_text(json.dumps({"fold": "01", "seed": 0, "uar": 0.8, "best_val_uar": 0.9,
                                                 "epochs": 3}))
    systems = curves.write_curves([stl, mtl], tmp_path / "out")
    assert curves.aux_row("stl", systems["stl"]) is None
    assert curves.aux_row("mtl_aug", systems["mtl_aug"]) == ["mtl_aug", "30.0 / 60.0 / 80.0", "0.800 / 0.400 / 0.200"]
    md = (tmp_path / "out" / "curves.md").read_text()
    assert "| mtl_aug | 30.0 / 60.0 / 80.0 | 0.800 / 0.400 / 0.200 |" in md and "| stl | 30.0" not in md


def test_curves_md_records_the_command_that_made_it(tmp_path, monkeypatch):
    """The folder list is the input: curves.md must say which command (and where) regenerates it."""
    _run(tmp_path / "stl", "01", 0, [0.5, 0.7], 0.7)
    monkeypatch.chdir(tmp_path)
    assert curves.main(["stl", "--out", "curves"]) == 0
    md = (tmp_path / "curves" / "curves.md").read_text()
    assert "- command: `python -m mtl_aug curves stl --out curves`" in md
    assert f"- run in: `{tmp_path.resolve()}`" in md and "- git commit:" in md


def test_provenance_names_the_working_folder_only_outside_the_repository_root(monkeypatch):
    from mtl_aug.provenance import REPO_ROOT, provenance

    monkeypatch.chdir(REPO_ROOT)
    assert "cwd" not in provenance("cv", [])
    monkeypatch.chdir(REPO_ROOT / "mtl_aug" / "evaluation")
    assert provenance("cv", [])["cwd"] == "mtl_aug/evaluation"
