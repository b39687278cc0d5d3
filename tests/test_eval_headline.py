"""``headline``: README.md's results table from the result folders named in a YAML (rows, columns, normalisations),
written between its markers; ``--check`` fails on a stale README."""

from __future__ import annotations

import json

import pytest
import yaml

from mtl_aug.evaluation import headline

CONFIG = {
    "metric": "uar",
    "normalisations": ["utterance", "speaker"],
    "settings": [{"name": "A", "folder": "a/{system}"}, {"name": "A noisy", "folder": "a/{system}/noise",
                                                         "condition": "0 dB"}],
    "systems": [{"name": "STL", "system": "stl"}, {"name": "SVM", "system": "svm"}, {"name": "Gone", "system": "gone"}],
}


def _summary(path, uar, std, seeds):
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"uar": {"mean": uar, "std": std, "n": len(seeds)}, "seeds": seeds}))


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "results"
    _summary(root / "a" / "stl", 0.712, 0.018, [0, 1, 2])
    _summary(root / "a" / "stl_speakernorm", 0.849, 0.029, [0, 1, 2])
    _summary(root / "a" / "svm", 0.792, None, [0])
    (root / "a" / "stl" / "noise").mkdir()
    (root / "a" / "stl" / "noise" / "summary.json").write_text(json.dumps(
        {"conditions": {"0 dB": {"uar": {"mean": 0.558, "std": 0.031, "n": 3}, "seeds": [0, 1, 2]}}}))
    config = tmp_path / "headline.yaml"
    config.write_text(yaml.safe_dump(CONFIG, allow_unicode=True))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{headline.START}\nold\n{headline.END}\nafter\n")
    return root, config, readme


def test_rows_per_system_and_normalisation_cells_from_summaries(tree):
    root, config, _ = tree
    text = headline.block(config, root)
    assert "| STL | utterance | 71.2 ± 1.8 | 55.8 ± 3.1 | 3 |" in text
    assert "| STL | speaker | 84.9 ± 2.9 | – | 3 |" in text
    assert "| SVM | utterance | 79.2 | – | 1 |" in text  # one run: no ±
    assert "Gone" not in text and "| SVM | speaker" not in text  # rows without any result are left out


def test_write_check_and_print(tree, capsys):
    root, config, readme = tree
    args = ["--config", str(config), "--readme", str(readme), "--results-root", str(root)]
    assert headline.main([*args, "--check"]) == 1
    assert headline.main(args) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{headline.END}\nafter\n") and "\nold\n" not in text
    assert headline.main([*args, "--check"]) == 0
    assert headline.main(args) == 0 and readme.read_text() == text  # idempotent
    capsys.readouterr()
    assert headline.main([*args, "--print"]) == 0
    assert "| STL | utterance |" in capsys.readouterr().out


def test_a_readme_without_markers_is_an_error(tree):
    root, config, readme = tree
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one"):
        headline.main(["--config", str(config), "--readme", str(readme), "--results-root", str(root)])


def test_an_unknown_metric_is_an_error(tree, tmp_path):
    root, _, readme = tree
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(CONFIG | {"metric": "accuracy"}))
    with pytest.raises(SystemExit, match="not one of"):
        headline.main(["--config", str(bad), "--readme", str(readme), "--results-root", str(root)])
