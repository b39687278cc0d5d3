"""prepare(): the four output files, the printed summary, and one-line errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_aug.data.folds import check_folds, read_folds
from mtl_aug.data.manifest import read_manifest, read_skipped
from mtl_aug.data.prepare import main, prepare

NAMES = [f"{spk}a0{i}{emo}a" for spk in ("03", "08", "09") for i, emo in enumerate("WFNTL")]


@pytest.fixture
def emodb_root(tmp_path: Path, make_audio) -> Path:
    root = tmp_path / "emodb"
    for name in NAMES:
        make_audio(root / "wav" / f"{name}.wav", seconds=0.1)
    make_audio(root / "wav" / "03a09Xa.wav", seconds=0.1)
    (root / "wav" / "10a01Wa.wav").write_text("not audio")
    return root


def test_prepare_writes_all_files(emodb_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = prepare("emodb", str(emodb_root), str(out), progress=False)
    files = sorted(p.name for p in (out / "emodb").iterdir())
    assert files == ["folds.json", "manifest.csv", "skipped.csv", "summary.json"]
    df = read_manifest(out / "emodb" / "manifest.csv")
    assert len(df) == 15 and summary["n_rows"] == 15 and summary["n_labelled"] == 12
    assert summary["label_counts"] == {"angry": 3, "happy": 3, "neutral": 3, "sad": 3}
    assert summary["n_skipped"] == 2 and summary["protocol"] == "loso" and summary["n_folds"] == 3
    assert json.loads((out / "emodb" / "summary.json").read_text()) == summary
    skipped = read_skipped(out / "emodb" / "skipped.csv")
    assert skipped["path"].tolist() == ["wav/03a09Xa.wav", "wav/10a01Wa.wav"]
    folds = read_folds(out / "emodb" / "folds.json")
    check_folds(folds, df)
    assert [f["name"] for f in folds["folds"]] == ["03", "08", "09"]
    assert str(tmp_path) not in "".join(p.read_text() for p in (out / "emodb").iterdir())  # relative paths only


def test_main_prints_summary_with_skip_reasons(emodb_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["emodb", "--root", str(emodb_root), "--out-dir", str(tmp_path / "o"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "emodb: 15 rows, 3 speakers" in out
    assert "angry 3, happy 3, neutral 3, sad 3" in out and "folds: 3 (loso)" in out
    assert "skipped: 2" in out and "unknown EMODB emotion letter 'X'" in out and "not a readable audio file" in out
    assert "warning: n_rows = 15 where a full release has 535" in out


@pytest.mark.parametrize("state", ["unset", "missing", "empty"])
def test_main_bad_root_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, state: str) -> None:
    monkeypatch.delenv("RAVDESS_ROOT", raising=False)
    (tmp_path / "empty").mkdir()
    args = {"unset": [], "missing": ["--root", str(tmp_path / "nope")], "empty": ["--root", str(tmp_path / "empty")]}
    assert main(["ravdess", *args[state], "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: ravdess") and "RAVDESS_ROOT" in err


def test_main_root_without_corpus_files(tmp_path: Path, capsys) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "a.txt").write_text("x")
    assert main(["emodb", "--root", str(tmp_path / "stuff"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "no usable audio" in capsys.readouterr().err


def test_all_present_prepares_only_resolvable(emodb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys) -> None:
    for var in ("IEMOCAP_ROOT", "MSP_IMPROV_ROOT", "RAVDESS_ROOT", "LIBRISPEECH_ROOT", "DEMAND_ROOT", "NOISE_ROOT",
                "SYNTHETIC_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EMODB_ROOT", str(emodb_root))
    monkeypatch.chdir(tmp_path)  # no .cache/synthetic here
    assert main(["--all-present", "--out-dir", "o", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["emodb"]
    assert "skip iemocap" in capsys.readouterr().out


def test_usage_errors(capsys) -> None:
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["not_a_corpus"])
