"""Fold construction and checking: LOSO, grouped k-fold, leaks and coverage errors, file round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtl_aug.data.folds import (UnknownFoldError, check_folds, get_fold, grouped_kfold, loso_folds, partner_rule,
                                read_folds, write_folds)

EMODB = ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]


def _manifest(speakers: list[str], unlabelled: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = [{"speaker": s, "label": "angry"} for s in speakers] + [{"speaker": s, "label": ""} for s in unlabelled]
    return pd.DataFrame(rows)


def test_loso_next_speaker_wraps() -> None:
    folds = loso_folds(list(reversed(EMODB)))
    assert [f["name"] for f in folds] == EMODB
    assert folds[0] == {"name": "03", "train": EMODB[2:], "val": ["08"], "test": ["03"]}
    assert folds[-1]["val"] == ["03"]
    check_folds(folds, _manifest(EMODB))


def test_loso_partner_rule_same_session() -> None:
    speakers = [f"Ses0{i}{g}" for i in range(1, 6) for g in "FM"]
    folds = loso_folds(speakers, partner_rule(lambda s: s[:-1] + ("M" if s[-1] == "F" else "F")))
    fold = get_fold({"corpus": "iemocap", "folds": folds}, "Ses03M")
    assert fold["val"] == ["Ses03F"] and fold["test"] == ["Ses03M"] and len(fold["train"]) == 8


def test_grouped_kfold_ravdess() -> None:
    actors = [f"{i:02d}" for i in range(1, 25)]
    folds = grouped_kfold(actors, 4)
    assert [f["name"] for f in folds] == ["01-04", "05-08", "09-12", "13-16", "17-20", "21-24"]
    assert folds[0]["val"] == ["05"] and folds[-1]["val"] == ["01"]
    assert folds[1]["test"] == ["05", "06", "07", "08"] and len(folds[1]["train"]) == 19
    check_folds(folds, _manifest(actors))


def test_check_folds_rejects_leaks_and_gaps() -> None:
    folds = loso_folds(EMODB)
    leak = [dict(f) for f in folds]
    leak[0] = {**leak[0], "train": leak[0]["train"] + ["03"]}
    with pytest.raises(ValueError, match="both train and test"):
        check_folds(leak, _manifest(EMODB))
    with pytest.raises(ValueError, match="never tested"):
        check_folds(folds[:-1], _manifest(EMODB))
    twice = folds + [{**folds[0], "name": "again"}]
    with pytest.raises(ValueError, match="tested in folds"):
        check_folds(twice, _manifest(EMODB))
    # a speaker with only unlabelled utterances need not be tested, and may not appear at all
    check_folds(folds, _manifest(EMODB, unlabelled=("99",)))


def test_write_read_get(tmp_path: Path) -> None:
    folds = loso_folds(EMODB)
    write_folds(tmp_path / "folds.json", "emodb", "loso", folds)
    doc = read_folds(tmp_path / "folds.json")
    assert doc == {"corpus": "emodb", "protocol": "loso", "label_column": "label", "folds": folds}
    assert get_fold(doc, "10")["test"] == ["10"]
    with pytest.raises(UnknownFoldError, match="available: 03, 08"):
        get_fold(doc, "3")
