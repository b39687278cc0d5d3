"""Speaker-independent folds (see docs/protocols.md): LOSO and speaker-grouped k-fold, and the one reader of
fold files (:func:`read_folds`, :func:`corpus_folds`, :func:`fold_names`).

A fold is ``{"name", "train", "val", "test"}`` with lists of speaker ids. Folds are pure data,
written to ``data_manifests/<corpus>/folds.json`` and checked by :func:`check_folds` so that no
speaker leaks between train, validation and test, and every labelled speaker is tested exactly once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

Fold = dict[str, Any]
ValRule = Callable[[str, list[str]], str]


def speaker_sort_key(speaker: str) -> tuple:
    """Natural order ("2" < "10", "Ses01F" < "Ses01M" < "Ses02F")."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", speaker))


def sorted_speakers(speakers: Iterable[str]) -> list[str]:
    return sorted(set(speakers), key=speaker_sort_key)


def next_speaker(test: str, speakers: list[str]) -> str:
    """Default validation rule: the next speaker in sorted order, wrapping around."""
    order = sorted_speakers(speakers)
    return order[(order.index(test) + 1) % len(order)]


def partner_rule(partner: Callable[[str], str]) -> ValRule:
    """Validation = ``partner(test)`` (e.g. the other speaker of the same session) when present,
    else the next speaker (a partial corpus may lack the partner)."""

    def rule(test: str, speakers: list[str]) -> str:
        other = partner(test)
        return other if other in speakers and other != test else next_speaker(test, speakers)

    return rule


def loso_folds(speakers: list[str], val_rule: ValRule | None = None) -> list[Fold]:
    """Leave-one-speaker-out: one fold per speaker, named by the test speaker."""
    order = sorted_speakers(speakers)
    if len(order) < 3:
        raise ValueError(f"LOSO needs at least 3 speakers (test, validation, train); got {order}")
    rule = val_rule or next_speaker
    folds = []
    for test in order:
        val = rule(test, order)
        folds.append({"name": test, "train": [s for s in order if s not in (test, val)], "val": [val], "test": [test]})
    return folds


def grouped_kfold(speakers: list[str], group_size: int) -> list[Fold]:
    """Folds of ``group_size`` consecutive speakers (sorted); validation = the next group's first speaker.

    The fold is named "<first>-<last>" of its test group, e.g. "01-04".
    """
    order = sorted_speakers(speakers)
    groups = [order[i:i + group_size] for i in range(0, len(order), group_size)]
    if len(groups) < 2:
        raise ValueError(f"grouped k-fold needs at least 2 groups of {group_size}; got speakers {order}")
    folds = []
    for i, test in enumerate(groups):
        val = groups[(i + 1) % len(groups)][0]
        train = [s for s in order if s not in test and s != val]
        folds.append({"name": f"{test[0]}-{test[-1]}", "train": train, "val": [val], "test": list(test)})
    return folds


def _fold_list(folds: dict | list[Fold]) -> list[Fold]:
    return folds["folds"] if isinstance(folds, dict) else folds


def check_folds(folds: dict | list[Fold], manifest_df: pd.DataFrame, label_column: str = "label") -> None:
    """Raise ValueError unless the folds are speaker-independent and test every labelled speaker once.

    Labelled speakers are those with a non-empty ``label_column`` (all speakers if no row has one).
    """
    fold_list = _fold_list(folds)
    if not fold_list:
        raise ValueError("no folds")
    labelled = manifest_df[manifest_df[label_column].astype(str) != ""] if label_column in manifest_df else manifest_df
    if labelled.empty:
        labelled = manifest_df
    speakers = set(labelled["speaker"].astype(str))
    names = [f["name"] for f in fold_list]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate fold names: {names}")
    tested: dict[str, str] = {}
    for fold in fold_list:
        parts = {part: set(fold[part]) for part in ("train", "val", "test")}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = parts[a] & parts[b]
            if both:
                raise ValueError(f"fold {fold['name']}: speakers {sorted(both)} are in both {a} and {b}")
        if not parts["test"] or not parts["train"]:
            raise ValueError(f"fold {fold['name']}: empty train or test set")
        unknown = set().union(*parts.values()) - speakers
        if unknown:
            raise ValueError(f"fold {fold['name']}: speakers {sorted(unknown)} have no labelled utterance")
        for spk in parts["test"]:
            if spk in tested:
                raise ValueError(f"speaker {spk} is tested in folds {tested[spk]} and {fold['name']}")
            tested[spk] = fold["name"]
    untested = speakers - set(tested)
    if untested:
        raise ValueError(f"speakers never tested: {sorted(untested, key=speaker_sort_key)}")


def folds_document(corpus: str, protocol: str, folds: list[Fold], label_column: str = "label") -> dict:
    return {"corpus": corpus, "protocol": protocol, "label_column": label_column, "folds": folds}


def write_folds(path: str | Path, corpus: str, protocol: str, folds: list[Fold], label_column: str = "label") -> dict:
    """Write ``folds.json`` and return the written document."""
    doc = folds_document(corpus, protocol, folds, label_column)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(_format(doc))
    return doc


def _format(doc: dict) -> str:
    """JSON with one line per fold: short, and a diff shows exactly which fold changed."""
    head = {k: v for k, v in doc.items() if k != "folds"}
    lines = [json.dumps(head, indent=2)[:-2] + ',\n  "folds": [']
    lines.append(",\n".join("    " + json.dumps(f) for f in doc["folds"]))
    lines.append("  ]\n}\n")
    return "\n".join(lines)


def read_folds(path: str | Path) -> dict:
    doc = json.loads(Path(path).read_text())
    missing = {"corpus", "protocol", "folds"} - set(doc)
    if missing:
        raise ValueError(f"{path}: not a folds file, missing {sorted(missing)}")
    doc.setdefault("label_column", "label")
    return doc


FOLDS_FILE = "folds.json"


def folds_path(corpus: str, manifest_dir: str | Path = "data_manifests") -> Path:
    """Where a prepared corpus's fold file is: ``<manifest_dir>/<corpus>/folds.json``."""
    return Path(manifest_dir) / corpus / FOLDS_FILE


def corpus_folds(corpus: str, manifest_dir: str | Path = "data_manifests") -> dict | None:
    """The fold document of a prepared corpus (:func:`read_folds`), or None when the corpus is not prepared."""
    path = folds_path(corpus, manifest_dir)
    return read_folds(path) if path.exists() else None


def fold_names(corpus: str, manifest_dir: str | Path = "data_manifests") -> list[str]:
    """The fold names of a prepared corpus, in file order; FileNotFoundError naming the command that makes them."""
    doc = corpus_folds(corpus, manifest_dir)
    if doc is None:
        raise FileNotFoundError(f"no folds for corpus '{corpus}' at {folds_path(corpus, manifest_dir)}: run "
                                f"`python -m mtl_aug prepare {corpus}` first")
    return [str(f["name"]) for f in doc["folds"]]


def protocol_kind(doc: dict) -> str:
    """``LOSO`` when every fold tests one speaker, else ``speaker-grouped k-fold``."""
    return "LOSO" if all(len(f["test"]) == 1 for f in doc["folds"]) else "speaker-grouped k-fold"


class UnknownFoldError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def get_fold(folds_dict: dict, name: str) -> Fold:
    """The fold called ``name``; the error lists the available names."""
    for fold in folds_dict["folds"]:
        if fold["name"] == str(name):
            return fold
    available = ", ".join(f["name"] for f in folds_dict["folds"])
    raise UnknownFoldError(f"no fold {name!r} in {folds_dict.get('corpus', '?')} folds; available: {available}")
