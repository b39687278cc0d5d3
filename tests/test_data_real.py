"""Real corpora in ../shared/data (skipped when absent) and the committed data_manifests/ files."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from mtl_aug.data.audio import load_audio
from mtl_aug.data.corpora import CORPORA
from mtl_aug.data.folds import check_folds, read_folds
from mtl_aug.data.manifest import read_manifest
from mtl_aug.data.noise import NoiseBank

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "data_manifests"
ROOTS = {"emodb": "emodb", "ravdess": "ravdess", "librispeech": "librispeech/LibriSpeech",
         "speech_commands": "speech_commands"}
FOLD_FILES = sorted(MANIFESTS.glob("*/folds.json"))


def _build(corpus: str, shared: Path) -> pd.DataFrame:
    result = CORPORA[corpus].build(shared / ROOTS[corpus])
    assert result.skipped == []
    return result.rows


def _same_as_committed(corpus: str, rows: pd.DataFrame) -> None:
    """The committed manifest is what the builder produces today (no stale files)."""
    committed = read_manifest(MANIFESTS / corpus / "manifest.csv")
    pd.testing.assert_frame_equal(committed, rows.reset_index(drop=True))


@pytest.mark.shared_data
def test_emodb_counts(shared_data: Path) -> None:
    rows = _build("emodb", shared_data)
    assert len(rows) == 535 and rows["speaker"].nunique() == 10
    assert dict(Counter(rows["emotion"])) == {"anger": 127, "boredom": 81, "disgust": 46, "fear": 69,
                                              "happiness": 71, "neutral": 79, "sadness": 62}
    assert dict(Counter(rows["label"])) == {"angry": 127, "happy": 71, "neutral": 79, "sad": 62, "": 196}
    assert sorted(rows["speaker"].unique()) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    _same_as_committed("emodb", rows)
    wave = load_audio(shared_data / "emodb" / rows["path"].iloc[0])  # 2 s at 22050 Hz -> 16 kHz
    assert wave.shape == (32000,)


@pytest.mark.shared_data
def test_ravdess_counts_and_speed(shared_data: Path) -> None:
    start = time.perf_counter()
    rows = _build("ravdess", shared_data)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"RAVDESS manifest took {elapsed:.1f} s"
    assert len(rows) == 1440 and rows["speaker"].nunique() == 24
    assert set(Counter(rows["speaker"]).values()) == {60}
    assert dict(Counter(rows["label"])) == {"angry": 192, "happy": 192, "neutral": 96, "sad": 192, "": 768}
    assert Counter(rows["gender"]) == {"M": 720, "F": 720}
    _same_as_committed("ravdess", rows)


@pytest.mark.shared_data
def test_librispeech_counts(shared_data: Path) -> None:
    rows = _build("librispeech", shared_data)
    assert len(rows) == 351 and rows["speaker"].nunique() == 261
    assert set(rows["gender"]) == {"M", "F"} and set(rows["label"]) == {""}
    _same_as_committed("librispeech", rows)


@pytest.mark.shared_data
def test_speech_commands_noise_bank(shared_data: Path) -> None:
    rows = _build("speech_commands", shared_data)
    assert Counter(rows["raw_label"]) == {"real": 4, "synthetic": 2}
    _same_as_committed("speech_commands", rows)
    bank = NoiseBank(rows, shared_data / "speech_commands", "eval")
    assert bank.keys == ["doing_the_dishes", "dude_miaowing", "exercise_bike", "running_tap"]
    assert bank.noise_for("03a01Wa", 10.0, 16000).shape == (16000,)


@pytest.mark.parametrize("folds_path", FOLD_FILES, ids=[p.parent.name for p in FOLD_FILES])
def test_committed_folds_are_speaker_independent(folds_path: Path) -> None:
    doc = read_folds(folds_path)
    df = read_manifest(folds_path.parent / "manifest.csv")
    assert doc["corpus"] == folds_path.parent.name and doc["protocol"] in ("loso", "grouped_kfold")
    check_folds(doc, df)
    labelled = df[df[doc["label_column"]] != ""]
    tested = Counter(k for f in doc["folds"] for k in labelled.loc[labelled["speaker"].isin(f["test"]), "key"])
    assert set(tested) == set(labelled["key"]) and set(tested.values()) == {1}


def test_committed_manifests_have_relative_paths() -> None:
    for corpus in ROOTS:
        folder = MANIFESTS / corpus
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["warnings"] == [] and summary["n_skipped"] == 0
        assert (folder / "manifest.csv").is_file() and (folder / "skipped.csv").is_file()
        df = read_manifest(folder / "manifest.csv")
        assert not df["path"].str.startswith("/").any() and not df["path"].str.contains(r"\\|\.\./").any()
        for path in folder.iterdir():
            assert str(REPO.parent) not in path.read_text(), f"absolute path in {path}"
