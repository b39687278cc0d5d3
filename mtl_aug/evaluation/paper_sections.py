"""The sections of ``experiments/results/tables.md`` (``paper-tables``): within-corpus, paired and ensemble
comparisons, validation vs test, cross-corpus and robustness, each read from finished result files."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mtl_aug import tables
from mtl_aug.io import read_json
from mtl_aug.recipes import BASELINE_SYSTEMS, NORMALIZATIONS

from . import aggregate, plots, runs


def system_summaries(base: Path, system: str) -> list[Path]:
    """``summary.json`` of the system under each normalisation (``<system>``, ``<system>_speakernorm``, ...):
    exact names, so that ``stl`` does not pick up ``stl_aug_speakernorm``."""
    return [p for p in (runs.normalized_out(base / system, mode) / "summary.json" for mode in NORMALIZATIONS)
            if p.exists()]


def within_table(results_root: Path, corpus: str, systems: Sequence[str]) -> str:
    rows, protocol, bars = [], "", {}
    for system in systems:
        found = system_summaries(results_root / corpus, system)
        if not found:
            rows.append([system, "", "not run", "", "", "", ""])
        for path in found:
            s = read_json(path)
            if not s:
                continue
            bars.setdefault(system, {})[s.get("normalize", "utterance")] = (
                s["uar"]["mean"], s["uar"]["std"] or 0.0, len(s["seeds"]))
            protocol = protocol or s.get("protocol", "").split(";")[0]
            rows.append([system, s.get("normalize", "utterance"), aggregate.fmt_pct(s["uar"]),
                         aggregate.fmt_pct(s.get("pooled_uar")), aggregate.fmt_pct(s["wa"]), aggregate.fmt_pct(s["f1"]),
                         len(s["seeds"])])
    lines = [f"### Within-corpus: {corpus}", "", f"Protocol: {protocol or corpus + ' (no finished run yet)'}. "
             "Values in %, mean ± std over seeds; UAR = mean of per-fold UARs, pooled UAR = UAR of all folds' "
             "predictions together. Normalisation: `utterance` = the model's own per-utterance log-mel normalisation; "
             "`speaker` = per-speaker statistics over each speaker's audio (the test speaker's unlabelled audio "
             "included, never its labels).", "",
             tables.markdown_table(["system", "normalisation", "UAR", "pooled UAR", "WA", "macro-F1", "seeds"], rows), ""]
    if bars:
        png = plots.bars_png(bars, results_root / corpus / "within.png", {},
                             title=f"{corpus}: UAR (fold mean) ± std over seeds, n = seeds")
        lines += [f"Plot: `{png.name}` in `{png.parent}`.", ""]
    return "\n".join(lines)


def curves_section(results_root: Path, corpus: str, systems: Sequence[str], meta: dict | None = None) -> str:
    """Validation vs test per system (``curves``), written to ``<corpus>/curves/``; "" when nothing has run."""
    from .curves import system_row, write_curves

    dirs = [p.parent for system in systems if system not in BASELINE_SYSTEMS  # no epochs to plot
            for p in system_summaries(results_root / corpus, system)]
    if not dirs:
        return ""
    out = results_root / corpus / "curves"
    found = write_curves(dirs, out, meta=meta)
    return "\n".join([
        f"Validation vs test ({corpus}; `curves.md`, `curves.png`, `val_vs_test.png` in `{out}`): mean best "
        "validation UAR of the checkpoints tested, their mean test UAR, the gap, and the correlation over runs.", "",
        tables.markdown_table(["system", "runs", "best val UAR", "test UAR", "gap", "chosen epoch", "epochs",
                               "corr(val, test)"], [system_row(n, rl) for n, rl in found.items()]), ""])


# Variants of MTL-AUG that add or remove one part: paired against MTL-AUG itself, they say which part
# costs or gains (against STL alone they would only repeat MTL-AUG's own gap).
MTL_VARIANTS = ("mtl_aug_unlabelled", "no_recon", "no_augcls")


def paired_section(results_root: Path, corpus: str, systems: Sequence[str], baseline: str = "stl") -> str:
    """Each system against ``baseline`` under the same normalisation, paired on folds × seeds (``compare``);
    "" when no pair has shared runs."""
    from . import paired

    rows = []
    for system in systems:
        if system == baseline:
            continue
        for mode in NORMALIZATIONS:
            a, b = (runs.normalized_out(results_root / corpus / s, mode) for s in (system, baseline))
            if (a / "folds.csv").exists() and (b / "folds.csv").exists():
                result = paired.compare(paired.read_fold_rows(a), paired.read_fold_rows(b))
                if result["n_folds"]:
                    rows.append(paired.row(f"{system} − {baseline} ({mode})", result))
    if not rows:
        return ""
    return "\n".join([
        f"Paired against {baseline} ({corpus}; `python -m mtl_aug compare A B`): per fold, A − B averaged over "
        "the seeds both finished; folds are the independent units (bootstrap CI over folds, exact sign test). "
        "Last column: each seed's mean over those folds is the unit instead (same speakers; exact permutation "
        "test of the seed means), i.e. whether the gap exceeds what the seed alone moves.", "",
        tables.markdown_table(paired.HEADER, rows), ""])


def ensemble_section(results_root: Path, corpus: str, systems: Sequence[str], baseline: str = "stl") -> str:
    """Each system's seeds as one model (``ensemble``: soft voting), beside its members, and paired against the
    ``baseline``'s ensemble under the same normalisation; "" when no system has two seeds."""
    from . import ensemble, paired

    built: dict[tuple[str, str], tuple[dict, list[dict], list[dict]]] = {}
    rows = []
    for system in systems:
        for mode in NORMALIZATIONS:
            d = runs.normalized_out(results_root / corpus / system, mode)
            s = read_json(d / "summary.json")
            if not s or len(s.get("seeds", [])) < 2 or not (d / "predictions.csv").exists():
                continue
            try:
                summary, folds, _, member_preds = ensemble.build(d)
            except ValueError as e:  # e.g. an old predictions.csv without probabilities: say so, go on
                rows.append([system, mode, len(s["seeds"]), aggregate.fmt_pct(s["uar"]), f"not built: {e}", "", "",
                             ""])
                continue
            built[(system, mode)] = (summary, folds, member_preds)
            rows.append([system, mode, len(summary["members"]), aggregate.fmt_pct(summary["members_uar"]),
                         aggregate.fmt_pct(summary["uar"]), aggregate.fmt_pct(summary.get("pooled_uar")),
                         f"{100 * summary['gain_over_members']:+.1f}", ""])
    if not built:
        return ""
    for row in rows:
        base = built.get((baseline, row[1]))
        own = built.get((row[0], row[1]))
        if base and own and row[0] != baseline:
            r = paired.compare(own[1], base[1])
            lo, hi = r["ci"]
            perm = ensemble.permutation_test(own[2], base[2])
            row[-1] = (f"{100 * r['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], {r['better']} / {r['worse']}, "
                       f"p = {perm['p']:.2f}")
    return "\n".join([
        f"Seed ensembles ({corpus}; `python -m mtl_aug ensemble <cv folder>`): each system's seeds as one model, "
        "the mean of their class probabilities per utterance (soft voting; nothing retrained or chosen on test "
        "speakers). One model per fold, so no ± over seeds; \"gain\" = ensemble − its members' mean (points); the "
        f"last column pairs the ensemble with {baseline}'s ensemble fold by fold (Δ, 95 % CI over folds, folds "
        "better / worse) and gives the exact permutation p of the seeds between the two ensembles (`compare "
        "--ensemble`: is the gap larger than which seeds each ensemble got? 3 + 3 seeds cannot go below 0.1).",
        "", tables.markdown_table(["system", "normalisation", "seeds", "members' UAR", "ensemble UAR",
                                   "ensemble pooled UAR", "gain", f"vs {baseline} ensemble"], rows), ""])


def cross_table(results_root: Path, train: str, test: str, systems: Sequence[str]) -> str:
    pair = results_root / "cross" / f"{train}_to_{test}"
    rows = []
    for system in systems:
        found = system_summaries(pair, system)
        if not found:
            rows.append([system, "", "not run", "", "", ""])
        for path in found:
            s = read_json(path) or {}
            if s:
                rows.append([system, s.get("normalize", "utterance"), aggregate.fmt_pct(s["uar"]),
                             aggregate.fmt_pct(s["wa"]), aggregate.fmt_pct(s["f1"]), len(s["seeds"])])
    lines = [f"### Cross-corpus: {train} → {test}", "",
             f"Protocol: trained on all {train} speakers (validation speaker(s) of {train}'s first fold held out "
             f"for early stopping), tested on every 4-class utterance of {test}. Values in %, mean ± std over seeds.",
             "", tables.markdown_table(["system", "normalisation", "UAR", "WA", "macro-F1", "seeds"], rows), ""]
    return "\n".join(lines)


def robustness_table(results_root: Path, corpus: str, kind: str) -> str:
    path = results_root / corpus / f"{kind}.md"
    title = "Noise robustness" if kind == "noise" else "Adversarial robustness"
    lines = [f"### {title}: {corpus}", ""]
    if not path.exists():
        return "\n".join(lines + ["not run", ""])
    body = path.read_text().split("\n", 2)[2]  # drop the file's own heading
    lines.append(body.strip())
    lines.append("")
    lines.append(f"Plot: `{kind}.png` in `{results_root / corpus}`.")
    return "\n".join(lines + [""])


ROBUSTNESS_KINDS = ("noise", "adversarial")


def robustness_subfolders(corpus_dir: Path) -> list[str]:
    """Folders below a corpus's results with their own noise/adversarial tables (other models of the same
    systems, e.g. the speaker-normalised retrains of ``speakernorm_robustness/``), so that tables.md shows them too."""
    return sorted(d.name for d in corpus_dir.glob("*/") if any((d / f"{k}.md").exists() for k in ROBUSTNESS_KINDS))
