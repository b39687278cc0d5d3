"""``python -m mtl_aug levels``: recording levels per label, to check a corpus before comparing across corpora.

    python -m mtl_aug levels emodb ravdess --out experiments/results/levels.md

Per corpus and label of the label set: utterances, mean peak level (dBFS), mean RMS level (dBFS) and
share of samples above -80 dBFS, read from the audio itself. A corpus whose files were normalised one
by one (every peak near 0 dBFS) has lost its level cues, and can even reverse them: quiet emotions
(sad, neutral) amplified to full scale come out louder on average than loud ones (angry). A model that
uses level relative to the speaker (``--normalize speaker``) then transfers inverted between such a
corpus and one recorded at natural levels; per-utterance normalisation (the model's default) is immune.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import FOUR_CLASSES, read_manifest
from .audio import load_audio
from .items import labelled_items
from .roots import resolve_root

SILENCE_DBFS = -80.0


def utterance_levels(wave: np.ndarray) -> tuple[float, float, float]:
    """(peak dBFS, RMS dBFS, share of samples above -80 dBFS) of a mono waveform in [-1, 1]."""
    x = np.asarray(wave, dtype=np.float64)
    if x.size == 0:
        return float("-inf"), float("-inf"), 0.0
    peak = float(np.abs(x).max())
    rms = float(np.sqrt(np.mean(x * x)))
    db = lambda v: 20 * np.log10(max(v, 1e-12))  # noqa: E731
    return db(peak), db(rms), float(np.mean(np.abs(x) > 10 ** (SILENCE_DBFS / 20)))


def corpus_levels(corpus: str, manifest_dir: str | Path = "data_manifests", root: str | None = None,
                  label_column: str = "label", class_names: list[str] = FOUR_CLASSES,
                  progress: bool = True) -> pd.DataFrame:
    """One row per labelled utterance of the label set: key, speaker, label, peak_db, rms_db, active."""
    df = read_manifest(Path(manifest_dir) / corpus / "manifest.csv")
    items = labelled_items(df, resolve_root(corpus, root), class_names, label_column)
    rows = []
    for it in tqdm(items, desc=f"{corpus} levels", disable=not progress, leave=False):
        peak, rms, active = utterance_levels(load_audio(it.path).numpy())  # mono, 16 kHz, in [-1, 1]
        rows.append({"key": it.key, "speaker": it.speaker, "label": class_names[it.label], "peak_db": peak,
                     "rms_db": rms, "active": active})
    return pd.DataFrame(rows)


def level_table(levels: pd.DataFrame, class_names: list[str] = FOUR_CLASSES) -> list[list[str]]:
    rows = []
    for label in class_names:
        d = levels[levels["label"] == label]
        if d.empty:
            continue
        rows.append([label, str(len(d)), f"{d['peak_db'].mean():.1f}", f"{d['rms_db'].mean():.1f}",
                     f"{100 * d['active'].mean():.0f}"])
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug levels", description=__doc__.split("\n")[0])
    p.add_argument("corpora", nargs="+", help="prepared corpora (data_manifests/<corpus>/manifest.csv)")
    p.add_argument("--manifest-dir", default="data_manifests")
    p.add_argument("--out", default=None, help="also write the tables to this markdown file")
    return p


def main(argv: list[str]) -> int:
    from mtl_aug import tables
    from mtl_aug.io import atomic_write_text
    from mtl_aug.provenance import provenance

    a = parser().parse_args(argv)
    md = ["## Recording levels per label", "",
          "Mean over the utterances of each label (4-class set) of the peak and RMS level in dBFS, and the share of "
          f"samples above {SILENCE_DBFS:g} dBFS. Files normalised one by one show every peak near 0 dBFS.", ""]
    from .corpora.custom import ensure_registered, read_definition

    for corpus in a.corpora:
        own = read_definition(corpus, a.manifest_dir)  # a user corpus: its own classes
        if own is not None:
            ensure_registered(corpus, a.manifest_dir)
            levels = corpus_levels(corpus, a.manifest_dir, label_column=own.label_column, class_names=own.class_names)
            rows = level_table(levels, own.class_names)
        else:
            levels = corpus_levels(corpus, a.manifest_dir)
            rows = level_table(levels)
        table = tables.markdown_table(["label", "utterances", "peak dBFS", "RMS dBFS", "active %"], rows)
        print(f"{corpus}\n{table}\n")
        md += [f"### {corpus}", "", table, ""]
    if a.out:
        meta = provenance("levels", argv)
        md += [tables.provenance(meta), ""]
        atomic_write_text(a.out, "\n".join(md))
        print(f"-> {a.out}")
    return 0
