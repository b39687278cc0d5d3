"""``data.label_map``: relabel a manifest column before the label set is applied (RAVDESS calm -> neutral)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mtl_aug.data import FOUR_CLASSES, read_manifest
from mtl_aug.data.items import labelled_items

REPO = Path(__file__).resolve().parents[1]


def test_ravdess_calm_into_neutral_on_the_committed_manifest():
    df = read_manifest(REPO / "data_manifests" / "ravdess" / "manifest.csv")
    plain = labelled_items(df, Path("/root"), FOUR_CLASSES, "label")
    cfg = yaml.safe_load((REPO / "experiments" / "corpora" / "ravdess_calm.yaml").read_text())["data"]
    calm = labelled_items(df, Path("/root"), FOUR_CLASSES, cfg["label_column"], cfg["label_map"])
    count = lambda items: Counter(FOUR_CLASSES[it.label] for it in items)  # noqa: E731
    assert count(plain) == {"angry": 192, "happy": 192, "neutral": 96, "sad": 192}
    assert count(calm) == {"angry": 192, "happy": 192, "neutral": 96 + 192, "sad": 192}
    by_key = {it.key: FOUR_CLASSES[it.label] for it in calm}
    assert by_key["03-01-02-01-01-01-01"] == "neutral"  # code 02 = calm
    assert {it.key for it in plain} < set(by_key)


def _df(labels):
    return pd.DataFrame({"key": [f"k{i}" for i in range(len(labels))], "path": [f"{i}.wav" for i in range(len(labels))],
                         "speaker": "s", "duration": 1.0, "emotion": labels})


def test_label_map_target_must_be_in_the_label_set():
    with pytest.raises(ValueError, match="outside class_names"):
        labelled_items(_df(["calm"]), Path("."), FOUR_CLASSES, "emotion", {"calm": "relaxed"})


def test_unknown_label_column_is_named():
    with pytest.raises(ValueError, match="no column 'mood'"):
        labelled_items(_df(["sad"]), Path("."), FOUR_CLASSES, "mood")


def test_rows_outside_the_set_are_left_out_after_mapping():
    items = labelled_items(_df(["calm", "sad", "fearful", "neutral"]), Path("."), FOUR_CLASSES, "emotion",
                           {"calm": "neutral"})
    assert [(it.key, FOUR_CLASSES[it.label]) for it in items] == [("k0", "neutral"), ("k1", "sad"), ("k3", "neutral")]
