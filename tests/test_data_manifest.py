"""Manifest schema round trip: string ids stay strings, unknowns stay "", numbers are typed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtl_aug.data.audio import AudioInfo
from mtl_aug.data.manifest import (MANIFEST_COLUMNS, manifest_row, read_manifest, to_frame, validate_manifest,
                                   write_manifest)

INFO = AudioInfo(sample_rate=16000, channels=1, frames=32000, duration=2.0)


def _frame() -> pd.DataFrame:
    return to_frame([
        manifest_row("emodb", "wav/03a01Wa.wav", INFO, key="03a01Wa", speaker="03", gender="M", raw_label="W",
                     emotion="anger", label="angry"),
        manifest_row("emodb", "wav/03a01La.wav", INFO, key="03a01La", speaker="03", raw_label="L",
                     emotion="boredom"),
    ])


def test_round_trip_keeps_strings(tmp_path: Path) -> None:
    write_manifest(_frame(), tmp_path / "m.csv")
    df = read_manifest(tmp_path / "m.csv")
    assert list(df.columns) == MANIFEST_COLUMNS
    assert df["speaker"].tolist() == ["03", "03"]
    assert df.loc[df["key"] == "03a01La", "label"].item() == ""
    assert df["session"].tolist() == ["", ""]
    assert not df.isna().any().any()
    assert df["frames"].dtype == "int64" and df["duration"].dtype == "float64"


def test_missing_column_and_bad_label_are_errors(tmp_path: Path) -> None:
    pd.DataFrame({"key": ["a"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="lacks columns"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="not one of"):
        manifest_row("x", "a.wav", INFO, key="a", label="surprised")
    df = _frame()
    df.loc[1, "key"] = df.loc[0, "key"]
    with pytest.raises(ValueError, match="duplicate"):
        validate_manifest(df)
