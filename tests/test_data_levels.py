"""``levels``: peak/RMS dBFS per label, from the audio itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtl_aug.data import levels


def test_utterance_levels_of_known_signals():
    t = np.arange(16000) / 16000
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    peak, rms, active = levels.utterance_levels(sine)
    assert peak == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert rms == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    padded = np.concatenate([sine, np.zeros(16000)])  # half digital silence
    assert levels.utterance_levels(padded)[2] == pytest.approx(active / 2, abs=0.01)
    assert levels.utterance_levels(np.zeros(0)) == (float("-inf"), float("-inf"), 0.0)


def test_corpus_levels_and_table_on_the_synthetic_corpus(synthetic_corpus):
    df = levels.corpus_levels("synthetic", synthetic_corpus["manifest_dir"], str(synthetic_corpus["root"]),
                              progress=False)
    assert len(df) == 4 * 4 * 8 and set(df["label"]) == {"angry", "happy", "neutral", "sad"}
    assert (df["peak_db"] <= 0.0).all() and (df["rms_db"] < df["peak_db"]).all()
    rows = levels.level_table(df)
    assert [r[0] for r in rows] == ["angry", "happy", "neutral", "sad"] and all(r[1] == "32" for r in rows)
    manual = df[df["label"] == "sad"]["rms_db"].mean()
    assert rows[3][3] == f"{manual:.1f}"


def test_level_table_skips_labels_without_utterances():
    df = pd.DataFrame({"label": ["sad"], "peak_db": [-1.0], "rms_db": [-20.0], "active": [0.5]})
    assert levels.level_table(df) == [["sad", "1", "-1.0", "-20.0", "50"]]
