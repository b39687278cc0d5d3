"""Manifest schema: one row per audio file, the same columns for every corpus.

A manifest is a CSV with :data:`MANIFEST_COLUMNS`. ``path`` is relative to the corpus root (POSIX
separators) so committed manifests carry no machine's absolute paths; the root comes from config or
the environment (see :mod:`mtl_aug.data.roots`). String columns never hold NaN: unknown values are "".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # reading manifests should not need torch
    from .audio import AudioInfo

MANIFEST_COLUMNS = [
    "key", "corpus", "path", "duration", "sample_rate", "channels", "frames",
    "speaker", "gender", "session", "raw_label", "emotion", "label",
]
FOUR_CLASSES = ["angry", "happy", "neutral", "sad"]

STRING_COLUMNS = ["key", "corpus", "path", "speaker", "gender", "session", "raw_label", "emotion", "label"]
INT_COLUMNS = ["sample_rate", "channels", "frames"]
FLOAT_COLUMNS = ["duration"]
SKIPPED_COLUMNS = ["path", "reason"]


def manifest_row(
    corpus: str,
    path: str,
    info: AudioInfo,
    *,
    key: str,
    speaker: str = "",
    gender: str = "",
    session: str = "",
    raw_label: str = "",
    emotion: str = "",
    label: str = "",
) -> dict[str, object]:
    """One manifest row as a dict (builders collect these and call :func:`to_frame`)."""
    if label and label not in FOUR_CLASSES:
        raise ValueError(f"{path}: label {label!r} is not one of {FOUR_CLASSES}")
    return {
        "key": key, "corpus": corpus, "path": path,
        "duration": round(info.duration, 6), "sample_rate": info.sample_rate,
        "channels": info.channels, "frames": info.frames,
        "speaker": speaker, "gender": gender, "session": session,
        "raw_label": raw_label, "emotion": emotion, "label": label,
    }


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}; expected {MANIFEST_COLUMNS}")
    out = df[MANIFEST_COLUMNS].copy()
    for col in STRING_COLUMNS:
        out[col] = out[col].fillna("").astype(str)
    for col in INT_COLUMNS:
        out[col] = out[col].astype("int64")
    for col in FLOAT_COLUMNS:
        out[col] = out[col].astype("float64")
    return out.reset_index(drop=True)


def to_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rows -> typed manifest DataFrame sorted by path (a stable order makes diffs readable)."""
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    return _typed(df).sort_values("path", kind="stable").reset_index(drop=True)


def validate_manifest(df: pd.DataFrame) -> None:
    """Raise ValueError for duplicate keys or labels outside the 4-class set."""
    dup = df["key"][df["key"].duplicated()].tolist()
    if dup:
        raise ValueError(f"duplicate manifest keys: {dup[:5]}")
    bad = sorted(set(df["label"]) - set(FOUR_CLASSES) - {""})
    if bad:
        raise ValueError(f"labels outside {FOUR_CLASSES}: {bad}")


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV: strings stay strings ("03" not 3, "" not NaN), numbers typed."""
    # dtype=str + keep_default_na=False: speaker ids like "03" and empty genders survive the round trip.
    df = pd.read_csv(path, dtype={c: str for c in STRING_COLUMNS}, keep_default_na=False, na_values=[])
    return _typed(df)


def write_manifest(df: pd.DataFrame, path: str | Path) -> None:
    """Write a manifest CSV with the canonical column order."""
    out = _typed(df)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, lineterminator="\n")


def write_skipped(skipped: list[tuple[str, str]], path: str | Path) -> None:
    """Write ``skipped.csv`` (path, reason); written even when empty so its absence is never ambiguous."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(sorted(skipped), columns=SKIPPED_COLUMNS).to_csv(path, index=False, lineterminator="\n")


def read_skipped(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
