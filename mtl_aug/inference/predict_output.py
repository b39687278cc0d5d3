"""What ``python -m mtl_aug predict`` writes: the terminal table, ``--csv`` (one row per file) and ``--json``."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def csv_columns(names: list[str]) -> list[str]:
    return ["file", "emotion"] + [f"prob_{c}" for c in names] + ["n_windows", "duration_s"]


def write_csv(path: str | Path, results: list[dict], names: list[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(csv_columns(names))
        for r in results:
            writer.writerow([r["file"], r["emotion"]] + [f"{r['probabilities'][c]:.6f}" for c in names]
                            + [r["n_windows"], f"{r['duration']:.3f}"])


def write_json(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")


def format_table(results: list[dict], names: list[str], timeline: bool = False, max_file: int = 48) -> str:
    def short(s: str) -> str:
        return s if len(s) <= max_file else "..." + s[-(max_file - 3):]

    width = max([4] + [len(short(r["file"])) for r in results])
    cw = max(7, *(len(c) for c in names))
    head = f"{'file':<{width}}  {'emotion':<{cw}}  {'windows':>7}  {'dur(s)':>7}  " + "  ".join(f"{c:>{cw}}" for c in names)
    lines = [head, "-" * len(head)]
    for r in results:
        probs = "  ".join(f"{r['probabilities'][c]:>{cw}.3f}" for c in names)
        lines.append(f"{short(r['file']):<{width}}  {r['emotion']:<{cw}}  {r['n_windows']:>7d}  {r['duration']:>7.2f}  {probs}")
        if timeline and r["n_windows"] > 1:
            for w in r["windows"]:
                span = f"  {w['start']:7.2f}-{w['end']:7.2f}s"
                wp = "  ".join(f"{w['probabilities'][c]:>{cw}.3f}" for c in names)
                lines.append(f"{span:<{width}}  {w['emotion']:<{cw}}  {'':>7}  {'':>7}  {wp}")
    return "\n".join(lines)
