"""The recipe-direction table (python -m mtl_aug directions) from trial result files."""

import json

from mtl_aug.sweep.directions import direction_name, main


def _trial(root, name, recipe, best, curves):
    d = root / "trials" / name
    d.mkdir(parents=True)
    tails = [sum(c[-10:]) / len(c[-10:]) for c in curves.values()]
    d.joinpath("result.json").write_text(json.dumps({
        "val_uar_mean": best, "val_uar_tail_mean": sum(tails) / len(tails), "val_uar_last_mean": 0.5,
        "folds": {k: best for k in curves}, "curves": curves, "epochs": {k: len(c) for k, c in curves.items()},
        "args": ["--config=experiments/base.yaml", f"--config=experiments/recipes/{recipe}.yaml",
                 "--trainer.enable_progress_bar=false", "--seed_everything=1"], "time_s": 600}))


def test_table_ranks_by_the_last_epochs_and_compares_with_the_reference(tmp_path, capsys):
    _trial(tmp_path, "001", "current", 0.95, {"03": [0.5] * 10 + [0.8] * 10, "08": [0.9] * 20})
    _trial(tmp_path, "002", "ema", 0.90, {"03": [0.9] * 20, "08": [0.9] * 20})
    assert main([str(tmp_path), "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    lines = [l for l in text.splitlines() if l.startswith("| ema") or l.startswith("| current")]
    assert lines[0].startswith("| ema | 1 | 90.0 | +5.0 | 90.0 | -5.0 | 90 / 90 |")  # ranked first on the tail
    assert lines[1].startswith("| current | 1 | 85.0 | +0.0 | 95.0 |")
    assert direction_name(["--config=experiments/recipes/a.yaml", "--config=experiments/recipes/b.yaml",
                           "--model.lr=0.001"]) == "a + b + model.lr=0.001"
