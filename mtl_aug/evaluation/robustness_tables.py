"""Reports of the robustness settings (``noise``, ``adversarial``): per system (summary.json/md, predictions.csv)
and the combined tables over every system evaluated in a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mtl_aug import tables
from mtl_aug.io import atomic_write_json, atomic_write_text, read_json
from mtl_aug.recipes import SYSTEMS

from . import aggregate
from .results import write_csv

CLEAN = "clean"


def summarize_conditions(results: list[dict], conditions: Sequence[str]) -> dict:
    """``{condition: aggregate.summarize(...)}`` over the runs' per-condition predictions."""
    n_classes = len(results[0]["class_names"])
    out = {}
    for c in conditions:
        rows = [{"fold": r["fold"], "seed": r["seed"], **{m: r["conditions"][c][m] for m in aggregate.METRICS}}
                for r in results]
        preds = [p | {"seed": r["seed"]} for r in results for p in r["predictions"][c]]
        out[c] = aggregate.summarize(rows, preds, n_classes)
        out[c].pop("per_seed")
    return out


def write_prediction_csv(path: Path, results: list[dict], conditions: Sequence[str]) -> None:
    rows = [{"fold": r["fold"], "seed": r["seed"], "condition": c, **p}
            for r in results for c in conditions for p in r["predictions"][c]]
    write_csv(path, rows, ["fold", "seed", "condition", "key", "speaker", "label", "pred"])


def seeds_label(summary: dict) -> str:
    """The seeds a robustness summary averages over, e.g. ``0,1,2`` (systems may differ: a combined table says so)."""
    return ",".join(map(str, summary["seeds"]))  # system_report always writes them


def condition_table(summaries: dict[str, dict], conditions: Sequence[str], metric: str = "uar") -> list[list[str]]:
    """Rows ``[system, seeds, mean ± std per condition]`` (percent)."""
    return [[system, seeds_label(s), *(aggregate.fmt_pct(s["conditions"].get(c, {}).get(metric)) for c in conditions)]
            for system, s in summaries.items()]


def collect(results_dir: Path, kind: str) -> dict[str, dict]:
    """``{system: summary}`` of every ``<results_dir>/<system>/<kind>/summary.json``."""
    found = {}
    for path in sorted(Path(results_dir).glob(f"*/{kind}/summary.json")):
        s = read_json(path)
        if s:
            found[path.parent.parent.name] = s
    order = {name: i for i, name in enumerate(SYSTEMS)}
    base = lambda name: name.rsplit("_", 1)[0] if name.endswith("norm") else name
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != base(kv[0]), order.get(base(kv[0]), 99), kv[0])))


def by_protocol(summaries: dict[str, dict]) -> list[tuple[str, dict[str, dict]]]:
    """``summaries`` split by their protocol line, in first-seen order: a combined table must not print one
    system's protocol (e.g. utterance normalisation) over another's (speaker normalisation)."""
    groups: dict[str, dict[str, dict]] = {}
    for system, s in summaries.items():
        groups.setdefault(s.get("protocol", ""), {})[system] = s
    return list(groups.items())


def protocol_line(protocol: str, note: str = "") -> str:
    """The line above a combined robustness table: its protocol and what its numbers are."""
    return (f"Protocol: {protocol}. UAR in %, mean ± std over seeds (a seed's UAR = mean of its per-fold UARs)."
            + (f" {note}" if note else ""))


def system_report(out: Path, results: list[dict], conditions: Sequence[str], meta: dict, title: str,
                  protocol: str) -> dict:
    summary = {"title": title, "protocol": protocol, "class_names": results[0]["class_names"],
               "conditions": summarize_conditions(results, conditions), "order": list(conditions),
               "runs": {f"{r['fold']}_s{r['seed']}": r["checkpoint"] for r in results},
               "seeds": sorted({r["seed"] for r in results}), "folds": sorted({r["fold"] for r in results}), **meta}
    write_prediction_csv(out / "predictions.csv", results, conditions)
    rows = [[c, aggregate.fmt_pct(summary["conditions"][c]["uar"]), aggregate.fmt_pct(summary["conditions"][c].get("pooled_uar")),
             aggregate.fmt_pct(summary["conditions"][c]["wa"]), aggregate.fmt_pct(summary["conditions"][c]["f1"])]
            for c in conditions]
    mismatched = sorted(f"{r['fold']}_s{r['seed']}" for r in results if r.get("clean_matches_cv") is False)
    summary["clean_differs_from_cv"] = mismatched
    md = [f"## {title}", "", f"Protocol: {protocol}. Values in %, mean ± std over seeds {summary['seeds']}.", "",
          tables.markdown_table(["condition", "UAR", "pooled UAR", "WA", "macro-F1"], rows), ""]
    if mismatched:
        md += [f"**Warning**: for runs {', '.join(mismatched)} the clean UAR differs from the cv test UAR of the same "
               "checkpoint: the model code changed after training; retrain them (cv --force).", ""]
    md += [tables.provenance(meta), ""]
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", "\n".join(md))
    return summary
