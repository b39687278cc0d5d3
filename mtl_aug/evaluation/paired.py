"""``python -m mtl_aug compare``: is system A better than system B on the same folds and seeds?

    python -m mtl_aug compare experiments/results/emodb/mtl_aug experiments/results/emodb/stl

Mean ± std over seeds hides that two systems are tested on the same speakers: the speaker a fold
tests is what moves UAR most, for every system alike. A paired comparison removes that. For each
fold, the difference A − B of the fold's UAR is averaged over the seeds both systems finished; the
folds (test speakers or speaker groups) are the independent units, so

* ``delta`` = mean over folds of that per-fold difference (= the difference of the fold-mean UARs
  when both ran the same seeds);
* ``ci`` = 95 % percentile bootstrap interval of ``delta``, resampling folds (seeded, reproducible);
* ``better / worse / tied`` = folds where A's mean UAR is above / below / equal to B's, and ``p`` the
  two-sided exact sign test over the untied folds (no normality assumed; with 10 folds, p < 0.05 needs
  9 of 10 folds on one side).

That answers "would A beat B on new speakers?", and its CI cannot shrink below the speakers' own spread,
however many seeds run. A second, narrower question is "on these speakers, is A's gain larger than what
the seed alone moves?": ``over_seeds`` takes each seed's mean UAR over the shared folds (a seed counts
when it finished all of them) as the unit, and ``p_seeds`` is the exact two-sided permutation test of the
difference of the two systems' seed means (every split of the pooled seed means into groups of the two
sizes; seeded random splits above 100 000 of them). Seeds need not be paired: seed k of A and seed k of B
share nothing but the number. With 3 + 3 seeds the smallest possible p is 0.1; with 5 + 5 it is 0.008.

Pure functions on ``folds.csv`` rows (``fold``, ``seed``, metric columns), plus a small CLI.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .aggregate import per_seed_fold_mean
from .results import read_fold_rows, read_prediction_rows


def per_fold_differences(rows_a: Iterable[Mapping], rows_b: Iterable[Mapping], metric: str = "uar"
                         ) -> dict[str, dict]:
    """``{fold: {"diff", "seeds"}}``: per fold, mean over the seeds both systems finished of A − B."""
    a = {(str(r["fold"]), int(r["seed"])): float(r[metric]) for r in rows_a}
    b = {(str(r["fold"]), int(r["seed"])): float(r[metric]) for r in rows_b}
    by_fold: dict[str, list[float]] = defaultdict(list)
    seeds: dict[str, list[int]] = defaultdict(list)
    for key in sorted(a.keys() & b.keys()):
        by_fold[key[0]].append(a[key] - b[key])
        seeds[key[0]].append(key[1])
    return {f: {"diff": float(np.mean(d)), "seeds": seeds[f]} for f, d in by_fold.items()}


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact binomial sign test (ties excluded before the call); 1.0 with no untied pair."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_ci(values: Sequence[float], n_boot: int = 10000, level: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def seed_means(rows: Iterable[Mapping], folds: set[str], metric: str = "uar") -> dict[int, float]:
    """``{seed: mean of metric over folds}`` (the seed's fold-mean, as cv's summary defines it) for the seeds
    that have a row for every one of ``folds``."""
    rows = [r for r in rows if str(r["fold"]) in folds]
    seen: dict[int, set[str]] = defaultdict(set)
    for r in rows:
        seen[int(r["seed"])].add(str(r["fold"]))
    complete = {s for s, f in seen.items() if f == folds}
    return {s: v[metric] for s, v in per_seed_fold_mean([r for r in rows if int(r["seed"]) in complete],
                                                        [metric]).items()}


def permutation_p(a: Sequence[float], b: Sequence[float], max_exact: int = 100_000, n_random: int = 100_000,
                  seed: int = 0) -> float:
    """Two-sided permutation test of mean(a) − mean(b): the share of the splits of a + b into groups of
    len(a) and len(b) whose |difference of means| reaches the observed one (exact when there are at most
    ``max_exact`` splits, else ``n_random`` seeded random splits); 1.0 when a side is empty."""
    pooled = np.asarray(list(a) + list(b), dtype=np.float64)
    na, n = len(a), len(a) + len(b)
    if not len(a) or not len(b):
        return 1.0
    observed = abs(pooled[:na].mean() - pooled[na:].mean()) - 1e-12  # float slack: ties count as reaching
    total = pooled.sum()
    if math.comb(n, na) <= max_exact:
        sums = np.array([pooled[list(idx)].sum() for idx in itertools.combinations(range(n), na)])
    else:
        rng = np.random.default_rng(seed)
        sums = np.array([pooled[rng.permutation(n)[:na]].sum() for _ in range(n_random)])
    diffs = np.abs(sums / na - (total - sums) / (n - na))
    return float((diffs >= observed).mean())


def over_seeds(rows_a: Iterable[Mapping], rows_b: Iterable[Mapping], folds: set[str], metric: str = "uar",
               seed: int = 0) -> dict:
    """Seed means over the shared ``folds`` for A and B, their difference and ``p_seeds`` (docstring)."""
    ma, mb = seed_means(rows_a, folds, metric), seed_means(rows_b, folds, metric)
    va, vb = list(ma.values()), list(mb.values())
    mean = (lambda v: float(np.mean(v)) if v else float("nan"))
    return {"seeds_a": list(ma), "seeds_b": list(mb), "mean_a": mean(va), "mean_b": mean(vb),
            "delta": mean(va) - mean(vb), "p_seeds": permutation_p(va, vb, seed=seed)}


def compare(rows_a: Iterable[Mapping], rows_b: Iterable[Mapping], metric: str = "uar", seed: int = 0) -> dict:
    """The paired comparison of A against B (module docstring); ``n_folds == 0`` when nothing is shared."""
    rows_a, rows_b = list(rows_a), list(rows_b)
    per_fold = per_fold_differences(rows_a, rows_b, metric)
    diffs = [d["diff"] for d in per_fold.values()]
    better = sum(d > 0 for d in diffs)
    worse = sum(d < 0 for d in diffs)
    lo, hi = bootstrap_ci(diffs, seed=seed)
    return {"metric": metric, "n_folds": len(diffs), "n_pairs": sum(len(d["seeds"]) for d in per_fold.values()),
            "seeds": sorted({s for d in per_fold.values() for s in d["seeds"]}),
            "delta": float(np.mean(diffs)) if diffs else float("nan"), "ci": (lo, hi),
            "better": better, "worse": worse, "tied": len(diffs) - better - worse,
            "p": sign_test_p(better, worse), "per_fold": per_fold,
            "over_seeds": over_seeds(rows_a, rows_b, set(per_fold), metric, seed)}


def class_recalls(pred_rows: Iterable[Mapping], runs: set[tuple[str, int]]) -> dict[str, float]:
    """Recall per class (``label_name``) over the predictions of the ``(fold, seed)`` runs given, pooled:
    where a UAR difference comes from (the UAR is the mean of these recalls over classes)."""
    hit: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for r in pred_rows:
        if (str(r["fold"]), int(r["seed"])) in runs:
            total[r["label_name"]] += 1
            hit[r["label_name"]] += int(r["label"]) == int(r["pred"])
    return {c: hit[c] / total[c] for c in total}


def shared_runs(result: Mapping) -> set[tuple[str, int]]:
    """The ``(fold, seed)`` runs a :func:`compare` result is based on."""
    return {(f, s) for f, d in result["per_fold"].items() for s in d["seeds"]}


def row(name: str, result: Mapping) -> list[str]:
    """A markdown table row: name, Δ (points), 95 % CI, better/worse/tied folds, sign-test p, seeds, and the
    seed-level Δ with its permutation p (``HEADER``)."""
    if not result["n_folds"]:
        return [name, "–", "–", "no shared fold × seed", "–", "–", "–"]
    lo, hi = result["ci"]
    s = result["over_seeds"]
    p_seeds = f"{s['p_seeds']:.2f}" if s["p_seeds"] >= 0.01 else f"{s['p_seeds']:.3f}"
    by_seed = (f"{100 * s['delta']:+.1f} (p {p_seeds}; {len(s['seeds_a'])} / {len(s['seeds_b'])})"
               if s["seeds_a"] and s["seeds_b"] else "no seed finished every shared fold")
    return [name, f"{100 * result['delta']:+.1f}", f"[{100 * lo:+.1f}, {100 * hi:+.1f}]",
            f"{result['better']} / {result['worse']} / {result['tied']}", f"{result['p']:.2f}",
            ",".join(map(str, result["seeds"])), by_seed]


HEADER = ["A − B", "Δ UAR (points)", "95 % CI (folds resampled)", "folds better / worse / tied", "sign-test p",
          "seeds", "over seeds: Δ (permutation p; seeds A / B)"]


def _seed_list(s: Mapping, side: str) -> str:
    return f"{100 * s['mean_' + side]:.1f} (seeds {','.join(map(str, s['seeds_' + side]))})"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug compare", description=__doc__.split("\n")[0])
    p.add_argument("a", help="result directory of system A (holds folds.csv)")
    p.add_argument("b", help="result directory of system B, the baseline")
    p.add_argument("--metric", default="uar", choices=["uar", "wa", "f1"])
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--ensemble", action="store_true",
                   help="compare the two systems' seed ensembles (soft voting over each one's seeds in "
                        "predictions.csv): per fold as usual, and over seeds the exact permutation test of the "
                        "seeds between the two ensembles (`ensemble.permutation_test`)")
    p.add_argument("--exclude-folds", default="",
                   help="comma-separated folds to leave out, e.g. the folds whose test speakers a hyperparameter "
                        "search validated on: the comparison on the folds blind to that choice")
    return p


def drop_folds(rows_a: list[dict], rows_b: list[dict], folds: set[str]) -> tuple[list[dict], list[dict]]:
    """Both results without ``folds``; a named error for a fold neither has (a typo would otherwise leave the
    comparison silently unchanged)."""
    unknown = folds - {str(r["fold"]) for r in rows_a + rows_b}
    if unknown:
        raise SystemExit(f"compare: --exclude-folds {','.join(sorted(unknown))}: no such fold in either result")
    return tuple([r for r in rows if str(r["fold"]) not in folds] for rows in (rows_a, rows_b))


def ensemble_comparison(args: argparse.Namespace, preds_a: list[dict] | None, preds_b: list[dict] | None,
                        excluded: set[str]) -> tuple[dict, list[dict], list[dict]]:
    """``--ensemble``: :func:`compare` on the two seed ensembles' fold rows, its seed-level column replaced by the
    ensemble permutation test; returns the result and both ensembles' voted predictions."""
    from . import ensemble

    if preds_a is None or preds_b is None:
        raise SystemExit(f"compare --ensemble: {args.a if preds_a is None else args.b}/predictions.csv is missing")
    preds_a, preds_b = ([r for r in p if str(r["fold"]) not in excluded] for p in (preds_a, preds_b))
    try:
        votes_a, votes_b = ensemble.soft_vote(preds_a), ensemble.soft_vote(preds_b)
        perm = ensemble.permutation_test(preds_a, preds_b, seed=args.seed)
    except ValueError as e:
        raise SystemExit(f"compare --ensemble: {e}") from None
    seeds_a, seeds_b = ensemble.member_seeds(preds_a), ensemble.member_seeds(preds_b)
    folds_a, folds_b = ensemble.fold_rows(votes_a, [], seeds_a), ensemble.fold_rows(votes_b, [], seeds_b)
    result = compare(folds_a, folds_b, args.metric, args.seed)
    result["seeds"] = ["ensembles"]  # one model per fold and side
    mean = (lambda rows: float(np.mean([r["uar"] for r in rows])))
    result["over_seeds"] = {"seeds_a": seeds_a, "seeds_b": seeds_b, "mean_a": mean(folds_a), "mean_b": mean(folds_b),
                            "delta": perm["delta"], "p_seeds": perm["p"], "exact": perm["exact"],
                            "n_splits": perm["n_splits"]}
    return result, votes_a, votes_b


def main(argv: list[str]) -> int:
    from mtl_aug.tables import markdown_table

    args = parser().parse_args(argv)
    try:
        rows_a, rows_b = read_fold_rows(args.a), read_fold_rows(args.b)
    except FileNotFoundError as e:
        raise SystemExit(f"compare: {e}") from None
    excluded = {f.strip() for f in args.exclude_folds.split(",") if f.strip()}
    if excluded:
        rows_a, rows_b = drop_folds(rows_a, rows_b, excluded)
    preds_a, preds_b = read_prediction_rows(args.a), read_prediction_rows(args.b)
    if args.ensemble:
        result, preds_a, preds_b = ensemble_comparison(args, preds_a, preds_b, excluded)
    else:
        result = compare(rows_a, rows_b, args.metric, args.seed)
    pa, pb = Path(args.a).resolve(), Path(args.b).resolve()
    # same folder name (e.g. two `stl` results): name them by parent folder too
    name = (f"{pa.name} − {pb.name}" if pa.name != pb.name
            else f"{pa.parent.name}/{pa.name} − {pb.parent.name}/{pb.name}")
    if excluded:
        name += f" (without folds {','.join(sorted(excluded))})"
    if args.ensemble:
        name = f"ensembles: {name}"
    print(markdown_table(HEADER, [row(name, result)]))
    if result["n_folds"]:
        print("\nper fold (A − B, points): " + "  ".join(f"{f}: {100 * d['diff']:+.1f}"
                                                         for f, d in sorted(result["per_fold"].items())))
        s = result["over_seeds"]
        if args.ensemble:
            print(f"\nover seeds: ensemble of {len(s['seeds_a'])} seeds {100 * s['mean_a']:.1f}, of {len(s['seeds_b'])} "
                  f"seeds {100 * s['mean_b']:.1f}; Δ {100 * s['delta']:+.1f}, permutation p = {s['p_seeds']:.4f} "
                  f"({'all' if s['exact'] else 'random'} {s['n_splits']} splits of the pooled seeds into two ensembles)")
        elif s["seeds_a"] and s["seeds_b"]:
            print(f"\nover seeds (mean over the {result['n_folds']} shared folds, points): A {_seed_list(s, 'a')}; "
                  f"B {_seed_list(s, 'b')}; Δ {100 * s['delta']:+.1f}, permutation p = {s['p_seeds']:.3f}")
        if preds_a is not None and preds_b is not None:
            runs = shared_runs(result)
            ra, rb = class_recalls(preds_a, runs), class_recalls(preds_b, runs)
            rows = [[c, f"{100 * ra[c]:.1f}", f"{100 * rb[c]:.1f}", f"{100 * (ra[c] - rb[c]):+.1f}"]
                    for c in ra if c in rb]
            print("\nrecall per class over the shared runs (pooled, %):\n")
            print(markdown_table(["class", "A", "B", "A − B"], rows))
    return 0
