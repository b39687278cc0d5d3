"""Synthetic corpus: layout, idempotence, speed, prosodic differences between emotions, registry builders."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mtl_aug.data.corpora import CORPORA
from mtl_aug.data.prepare import prepare
from mtl_aug.data.synthetic import generate_synthetic, main


@pytest.fixture(scope="module")
def default_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("synthetic")
    start = time.perf_counter()
    generate_synthetic(root)
    return root, time.perf_counter() - start


def test_default_corpus_layout_and_speed(default_corpus: tuple[Path, float]) -> None:
    root, seconds = default_corpus
    assert seconds < 10.0, f"default generation took {seconds:.1f} s"
    wavs = sorted(root.glob("labelled/*/*.wav"))
    assert len(wavs) == 6 * 4 * 12
    assert sorted(p.name for p in (root / "labelled").iterdir()) == ["F01", "F03", "F05", "M02", "M04", "M06"]
    assert (root / "labelled" / "M04" / "M04_sad_011.wav").is_file()
    assert len(list(root.glob("unlabelled/*/*.flac"))) == 40
    assert sorted(p.name for p in (root / "unlabelled").iterdir()) == ["F07", "F09", "M08", "M10"]
    info = sf.info(wavs[0])
    assert info.samplerate == 16000 and 1.5 <= info.duration <= 3.0


def test_emotions_differ_in_loudness_but_overlap(default_corpus: tuple[Path, float]) -> None:
    root, _ = default_corpus
    level = {}
    for emotion in ("angry", "happy", "neutral", "sad"):
        level[emotion] = np.array([10 * np.log10(np.mean(sf.read(p)[0] ** 2))
                                   for p in sorted(root.glob(f"labelled/*/*_{emotion}_*.wav"))])
    means = [level[e].mean() for e in ("angry", "happy", "neutral", "sad")]
    assert means == sorted(means, reverse=True)
    assert level["happy"].min() < level["neutral"].max()  # loudness alone does not separate them


def test_idempotent_and_regenerates_on_new_params(tmp_path: Path) -> None:
    kwargs = dict(n_speakers=3, utts_per_emotion=1, n_unlabelled=2, seconds=(0.3, 0.4))
    generate_synthetic(tmp_path, **kwargs)
    probe = tmp_path / "labelled" / "F01" / "F01_angry_000.wav"
    stamp = probe.stat().st_mtime_ns
    generate_synthetic(tmp_path, **kwargs)
    assert probe.stat().st_mtime_ns == stamp
    generate_synthetic(tmp_path, **{**kwargs, "n_speakers": 4, "seed": 1})
    assert json.loads((tmp_path / "params.json").read_text())["seed"] == 1
    assert len(list(tmp_path.glob("labelled/*/*.wav"))) == 16


def test_registry_builders_and_folds(tmp_path: Path) -> None:
    root = tmp_path / "syn"
    assert main(["--root", str(root), "--n-speakers", "3", "--utts-per-emotion", "2", "--n-unlabelled", "3",
                 "--min-seconds", "0.3", "--max-seconds", "0.4"]) == 0
    rows = CORPORA["synthetic"].build(root).rows
    assert len(rows) == 24 and set(rows["label"]) == {"angry", "happy", "neutral", "sad"}
    assert rows.set_index("key").loc["M02_happy_001", ["speaker", "gender", "emotion"]].tolist() == ["M02", "M", "happy"]
    unl = CORPORA["synthetic_unlabelled"].build(root).rows
    assert sorted(unl["key"]) == ["F05_000", "M04_000", "M06_000"] and set(unl["label"]) == {""}
    summary = prepare("synthetic", str(root), str(tmp_path / "out"), progress=False)
    assert summary["n_folds"] == 3 and summary["protocol"] == "loso"
