"""``python -m mtl_aug paper-tables``: run (resumably) every experiment of the paper's tables, then
write ``experiments/results/tables.md``.

    python -m mtl_aug paper-tables                       # emodb + ravdess, 3 seeds, all six systems
    python -m mtl_aug paper-tables --dry-run             # list what would run, and what is finished
    python -m mtl_aug paper-tables --tables-only         # only rebuild tables.md from finished results
                                                         # (needs no corpus audio or roots)

For the corpora whose manifest exists and whose root resolves: ``cv`` for every system on each
corpus; ``cross`` for each pair (default ravdess→emodb, emodb→ravdess) whose corpora are both
present; ``noise`` and ``adversarial`` on the robustness corpus (default emodb). Every step is the
same code as the single commands and skips finished runs, so an interrupted ``paper-tables`` resumes.
The tables name their protocol and carry the openSMILE + SVM reference points measured on this
machine (pooled UAR).
"""

from __future__ import annotations

import argparse
import traceback
from pathlib import Path
from typing import Callable, Sequence

from . import aggregate, plots, runs, tables

# openSMILE functionals + linear SVM, pooled UAR in % (the evaluation issue; measured on this machine).
PAPER_CORPORA = ("emodb", "ravdess")


def corpus_available(corpus: str, manifest_dir: str | Path) -> tuple[bool, str]:
    from mtl_aug.data.roots import resolve_root

    manifest = Path(manifest_dir) / corpus / "manifest.csv"
    if not manifest.exists():
        return False, f"no manifest at {manifest}"
    try:
        resolve_root(corpus)
    except Exception as e:  # noqa: BLE001 - unknown corpus, unset/missing root: the message says which
        return False, str(e)
    return True, ""


def has_results(results_root: Path, corpus: str) -> tuple[bool, str]:
    """``--tables-only`` needs finished results, not the audio: a corpus is in the tables when some system
    has a summary under ``<results_root>/<corpus>/`` (so committed results rebuild on a machine without it)."""
    if any((Path(results_root) / corpus).glob("*/summary.json")):
        return True, ""
    return False, f"no finished results under {Path(results_root) / corpus}"


# -- tables --------------------------------------------------------------------------------------------
def system_summaries(base: Path, system: str) -> list[Path]:
    """``summary.json`` of the system under each normalisation (``<system>``, ``<system>_speakernorm``, ...):
    exact names, so that ``stl`` does not pick up ``stl_aug_speakernorm``."""
    return [p for p in (runs.normalized_out(base / system, mode) / "summary.json" for mode in runs.NORMALIZATIONS)
            if p.exists()]


def within_table(results_root: Path, corpus: str, systems: Sequence[str]) -> str:
    rows, protocol, bars = [], "", {}
    for system in systems:
        found = system_summaries(results_root / corpus, system)
        if not found:
            rows.append([system, "", "not run", "", "", "", ""])
        for path in found:
            s = runs.read_json(path)
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

    dirs = [p.parent for system in systems if system not in runs.BASELINE_SYSTEMS  # no epochs to plot
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
        for mode in runs.NORMALIZATIONS:
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
        for mode in runs.NORMALIZATIONS:
            d = runs.normalized_out(results_root / corpus / system, mode)
            s = runs.read_json(d / "summary.json")
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
            s = runs.read_json(path) or {}
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


def write_tables(results_root: Path, corpora: Sequence[str], systems: Sequence[str],
                 pairs: Sequence[tuple[str, str]], robustness: str | None, meta: dict,
                 notes: Sequence[str] = ()) -> Path:
    parts = ["# MTL-AUG results", "",
             "Generated by `python -m mtl_aug paper-tables`; every number comes from the per-run result files "
             f"below `{results_root}/` (protocols: docs/protocols.md); each section's `summary.md` records the "
             "command, commit, date and machine that produced it.", ""]
    parts += ["## Within-corpus (speaker-independent)", ""]
    for c in corpora:
        parts += [within_table(results_root, c, systems), paired_section(results_root, c, systems),
                  paired_section(results_root, c, [s for s in systems if s in MTL_VARIANTS], baseline="mtl_aug"),
                  ensemble_section(results_root, c, systems),
                  curves_section(results_root, c, systems, meta)]
    if pairs:
        parts += ["## Cross-corpus / cross-language", ""] + [cross_table(results_root, a, b, systems) for a, b in pairs]
    if robustness:
        folders = [robustness] + [f"{robustness}/{sub}" for sub in robustness_subfolders(results_root / robustness)]
        parts += ["## Robustness", ""] + [robustness_table(results_root, f, kind)
                                          for f in folders for kind in ROBUSTNESS_KINDS]
    if notes:
        parts += ["## Not run", ""] + [f"- {n}" for n in notes] + [""]
    parts += ["## Provenance", "", tables.provenance(meta), ""]
    return runs.atomic_write_text(results_root / "tables.md", "\n".join(parts))


# -- driver --------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug paper-tables", description=__doc__.split("\n")[0],
                                epilog="Flags after -- go to LightningCLI for every training run.")
    p.add_argument("--corpora", default=",".join(PAPER_CORPORA))
    p.add_argument("--systems", default=",".join(runs.SYSTEMS))
    p.add_argument("--cross", default="ravdess:emodb,emodb:ravdess", help="train:test pairs ('' for none)")
    p.add_argument("--robustness-corpus", default="emodb", help="corpus of the noise/adversarial tables ('' for none)")
    p.add_argument("--robustness-systems", default=None,
                   help="systems of the noise/adversarial tables (default: --systems); their cv runs are reused")
    p.add_argument("--folds", default=None, help="restrict cv/noise/adversarial to these folds (smoke tests)")
    p.add_argument("--results-root", default=str(runs.RESULTS_DIR))
    p.add_argument("--tables-only", action="store_true", help="only rebuild tables.md from finished results")
    runs.add_jobs_argument(p, "runs of a cv or cross step (as `cv --jobs`)")
    runs.add_common_arguments(p)
    return p


def main(argv: list[str]) -> int:
    from .adversarial import run_adversarial
    from .cross import run_cross
    from .cv import run_cv
    from .noise import run_noise

    own, extra = runs.split_extra(argv)
    a = parser().parse_args(own)
    meta = runs.provenance("paper-tables", argv)
    root = Path(a.results_root)
    seeds = runs.parse_seeds(a.seeds)
    systems = [s for s in a.systems.split(",") if s]
    notes: list[str] = []
    corpora = []
    for c in [c for c in a.corpora.split(",") if c]:
        ok, why = has_results(root, c) if a.tables_only else corpus_available(c, a.manifest_dir)
        (corpora.append(c) if ok else notes.append(f"{c}: {why}"))
    pairs = []
    for pair in [p for p in a.cross.split(",") if p]:
        train, test = pair.split(":")
        if train in corpora and test in corpora:
            pairs.append((train, test))
        else:
            notes.append(f"cross {train} → {test}: corpus not available")
    robust = a.robustness_corpus if a.robustness_corpus in corpora else None
    if a.robustness_corpus and not robust:
        notes.append(f"noise/adversarial on {a.robustness_corpus}: corpus not available")

    common = dict(max_epochs=a.max_epochs, extra=extra, manifest_dir=a.manifest_dir, force=a.force)
    jobs = runs.parse_jobs(a.jobs)  # cv and cross steps only
    steps: list[tuple[str, Path, Callable[[], object]]] = []
    for c in corpora:
        for s in systems:
            steps.append((f"cv {c} {s}", root / c / s,
                          lambda c=c, s=s: run_cv(c, s, seeds, a.folds, root / c / s, meta=meta, jobs=jobs,
                                                 **common)))
    for train, test in pairs:
        for s in systems:
            out = root / "cross" / f"{train}_to_{test}" / s
            steps.append((f"cross {train}->{test} {s}", out,
                          lambda t=train, u=test, s=s, o=out: run_cross(t, u, s, seeds, o, meta=meta, jobs=jobs,
                                                                         **common)))
    robust_systems = [s for s in (a.robustness_systems or a.systems).split(",") if s]
    if robust:
        for s in robust_systems:
            steps.append((f"noise {robust} {s}", root / robust / s / "noise",
                          lambda s=s: run_noise(robust, s, seeds, a.folds, results_dir=root / robust, meta=meta, **common)))
        for s in [s for s in robust_systems if s not in runs.BASELINE_SYSTEMS]:  # no gradient to attack through
            steps.append((f"adversarial {robust} {s}", root / robust / s / "adversarial",
                          lambda s=s: run_adversarial(robust, s, seeds, a.folds, results_dir=root / robust, meta=meta,
                                                      **common)))

    if a.dry_run:
        for name, out, _ in steps:
            n = len(list(Path(out).glob(f"runs/*/{runs.RESULT_FILE}")))
            print(f"{name:<40} {n:>3} finished run(s) in {out}")
        for n in notes:
            print(f"skipped: {n}")
        return 0
    failed = []
    if not a.tables_only:
        for name, _, step in steps:
            print(f"== {name}", flush=True)
            try:
                step()
            except (Exception, SystemExit) as e:  # noqa: BLE001 - report, go on with the other tables
                traceback.print_exc()
                failed.append(f"{name}: {e}")
    path = write_tables(root, corpora, systems, pairs, robust, meta, notes + [f"FAILED {f}" for f in failed])
    print(f"tables: {path}")
    return 1 if failed else 0
