"""The utterances of a prepared corpus as dataset items: its manifest's rows in the label set, unlabelled rows,
and one fold's train/validation/test split of them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .dataset import Item
from .folds import folds_path

ALL_SPEAKERS = "all"  # fold name: train on every speaker but the validation ones (cross-corpus, release)


def manifest_paths(corpus: str, manifest_dir: str | Path) -> tuple[Path, Path]:
    manifest, folds = Path(manifest_dir) / corpus / "manifest.csv", folds_path(corpus, manifest_dir)
    if not manifest.exists():
        raise FileNotFoundError(
            f"no manifest for corpus '{corpus}' at {manifest}: run `make prepare CORPUS={corpus}` "
            f"(or `python -m mtl_aug prepare {corpus}`) first"
        )
    return manifest, folds


def labelled_items(df: pd.DataFrame, root: Path, class_names: list[str], label_column: str,
                   label_map: dict[str, str] | None = None, corpus: str = "") -> list[Item]:
    """Rows whose ``label_column`` value, after ``label_map`` (e.g. ``{"calm": "neutral"}``), is one of
    ``class_names``; the others are outside the label set."""
    index = {c: i for i, c in enumerate(class_names)}
    label_map = dict(label_map or {})
    bad = {k: v for k, v in label_map.items() if v not in index}
    if bad:
        raise ValueError(f"label_map {bad} maps to labels outside class_names {list(class_names)}")
    if label_column not in df.columns:
        raise ValueError(f"the manifest has no column '{label_column}' (columns: {list(df.columns)})")
    labels = df[label_column].astype(str).map(lambda v: label_map.get(v, v))
    keep = labels.isin(index)
    return [
        Item(r.key, root / r.path, index[label], str(r.speaker), float(r.duration), corpus)
        for r, label in zip(df[keep].itertuples(index=False), labels[keep])
    ]


def unlabelled_items(df: pd.DataFrame, root: Path, corpus: str = "") -> list[Item]:
    return [Item(r.key, root / r.path, -1, str(r.speaker), float(r.duration), corpus)
            for r in df.itertuples(index=False)]


def split_speakers(fold: dict, items: list[Item], group_of: dict[str, str] | None = None) -> dict[str, list[Item]]:
    """Train/val/test items of one fold: a speaker is in exactly one part (checked). With ``group_of``
    (utterance key -> group, for folds grouped by another column or a given split) groups take the place of
    speakers."""
    parts = {name: set(fold[name]) for name in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if parts[a] & parts[b]:
            raise ValueError(f"fold '{fold['name']}': speakers {sorted(parts[a] & parts[b])} in both {a} and {b}")
    group = (lambda it: group_of.get(it.key, "")) if group_of is not None else (lambda it: it.speaker)
    return {name: [it for it in items if group(it) in spk] for name, spk in parts.items()}
