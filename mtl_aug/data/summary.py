"""What ``prepare`` reports about a corpus it wrote (registered or a user's own): ``summary.json`` and its lines."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from .corpora import CorpusSpec
from .folds import Fold
from .manifest import FOUR_CLASSES


class EmptyCorpusError(ValueError):
    """A root that exists but holds no usable file in the corpus's layout."""


def summarize(spec: CorpusSpec, df: pd.DataFrame, skipped: list[tuple[str, str]], folds: list[Fold] | None) -> dict:
    labelled = df[df["label"] != ""]
    return {
        "corpus": spec.name,
        "kind": spec.kind,
        "n_rows": int(len(df)),
        "n_labelled": int(len(labelled)),
        "n_speakers": int(df["speaker"].nunique()) if (df["speaker"] != "").any() else 0,
        "hours": round(float(df["duration"].sum()) / 3600.0, 4),
        "emotion_counts": {k: int(v) for k, v in sorted(Counter(df["emotion"]).items()) if k},
        "label_counts": {k: int((labelled["label"] == k).sum()) for k in FOUR_CLASSES} if len(labelled) else {},
        "speaker_counts": {k: int(v) for k, v in sorted(Counter(df["speaker"]).items()) if k},
        "sample_rates": {str(k): int(v) for k, v in sorted(Counter(df["sample_rate"]).items())},
        "noise_counts": {k: int(v) for k, v in sorted(Counter(df["raw_label"]).items())} if spec.kind == "noise" else {},
        "n_skipped": len(skipped),
        "skip_reasons": dict(Counter(reason for _, reason in skipped).most_common()),
        "protocol": spec.protocol if folds else None,
        "n_folds": len(folds) if folds else 0,
        "warnings": [f"{k} = {n} where a full release has {spec.expected[k]} (partial copy?)"
                     for k, n in (("n_rows", len(df)), ("n_labelled", len(labelled))) if spec.expected.get(k, n) != n],
    }


def format_summary(summary: dict, out: str = "") -> str:
    """A few human lines: rows, labels, speakers, folds, skips with their first reasons."""
    speakers = f", {summary['n_speakers']} speakers" if summary["n_speakers"] else ""
    lines = [f"{summary['corpus']}: {summary['n_rows']} rows{speakers}, "
             f"{summary['hours']:.2f} h" + (f" -> {out}" if out else "")]
    if summary["noise_counts"]:
        lines.append("  noise: " + ", ".join(f"{v} {k}" for k, v in summary["noise_counts"].items()))
    if summary["label_counts"]:
        counts = ", ".join(f"{k} {v}" for k, v in summary["label_counts"].items())
        lines.append(f"  4-class: {summary['n_labelled']} ({counts})")
    if summary["n_folds"]:
        lines.append(f"  folds: {summary['n_folds']} ({summary['protocol']})")
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    lines.append(f"  skipped: {summary['n_skipped']}")
    for reason, n in list(summary["skip_reasons"].items())[:5]:
        lines.append(f"    {n} x {reason}")
    return "\n".join(lines)
