"""``python -m mtl_aug noise``: UAR on the test utterances mixed with real noise at 20, 10 and 0 dB SNR.

    python -m mtl_aug noise --corpus emodb --system mtl_aug --seeds 3

Protocol (docs/protocols.md, setting 3): the models are the cross-validation models of the system
(trained on clean speech): the best checkpoint of ``<results-dir>/<system>/runs/<fold>_s<seed>`` is
reused when that cv run has finished, otherwise the run is trained first, exactly as ``cv`` would
(so a later ``cv`` skips it). Each test utterance is mixed with ``NoiseBank(split="eval")`` noise —
the second half of each real noise file, file and offset chosen deterministically from (utterance
key, SNR), gain set for an exact SNR by RMS over the utterance (``mtl_aug.data.noise``). Noise:
DEMAND when ``<manifest-dir>/demand`` exists, else the real Speech Commands background recordings.

Outputs: ``<results-dir>/<system>/noise/`` (per-run JSON with the checkpoint path, ``summary.json``,
``summary.md``, ``predictions.csv``) and, over every system with noise results in ``<results-dir>``,
``<results-dir>/noise.md`` and ``<results-dir>/noise.png`` (UAR vs SNR, one line per system).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from . import aggregate, plots, runs, tables

CLEAN = "clean"


# -- generic "evaluate the cv checkpoints under conditions" driver (noise and adversarial) ---------------
def evaluate_checkpoints(
    cv_runs: Sequence[runs.Run],
    out: Path,
    conditions: Sequence[str],
    evaluate: Callable[[object, object, runs.Run], dict[str, list[dict]]],
    desc: str,
    force: bool = False,
    extra_meta: dict | None = None,
) -> list[dict]:
    """For every cv run: its best checkpoint (training the run first if it has not finished), then
    ``evaluate(model, datamodule, run) -> {condition: prediction rows}``; one result JSON per run in
    ``out/runs/<fold>_s<seed>/result.json``, written atomically, so reruns resume."""
    by_name = {r.name: r for r in cv_runs}
    eval_runs = [runs.Run(r.fold, r.seed, Path(out) / "runs" / r.name) for r in cv_runs]

    def execute(run: runs.Run) -> dict:
        cv_run = by_name[run.name]
        cv_result = cv_run.load() or runs.execute(cv_run)
        ckpt = cv_result.get("best_checkpoint") or (cv_result.get("checkpoints") or [None])[-1]
        if not ckpt or not Path(ckpt).exists():
            raise FileNotFoundError(f"cv run {cv_run.run_dir} has no checkpoint (result {cv_run.result_path})")
        start = time.perf_counter()
        model, dm = runs.load_checkpoint(ckpt)
        preds = evaluate(model, dm, run)
        class_names = list(model.hparams.class_names)
        result = {"fold": run.fold, "seed": run.seed, "checkpoint": str(ckpt), "cv_result": str(cv_run.result_path),
                  "class_names": class_names, **(extra_meta or {}),
                  "conditions": {c: runs.condition_metrics(preds[c], len(class_names)) for c in conditions},
                  "predictions": {c: preds[c] for c in conditions},
                  "seconds": round(time.perf_counter() - start, 2),
                  "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        if CLEAN in result["conditions"]:
            # Same checkpoint, same test set: the clean UAR must be the cv run's test UAR. A difference
            # means the model code changed since the checkpoint was trained (same keys, new behaviour).
            from .cv import fold_row

            cv_uar = fold_row(cv_result)["uar"]
            result["cv_test_uar"] = cv_uar
            result["clean_matches_cv"] = abs(result["conditions"][CLEAN]["uar"] - cv_uar) < 1e-6
            if not result["clean_matches_cv"]:
                tqdm.write(f"WARNING {run.name}: clean UAR {result['conditions'][CLEAN]['uar']:.4f} differs from the cv "
                           f"test UAR {cv_uar:.4f} of the same checkpoint: the model code changed since it was "
                           f"trained (at {cv_result.get('git_commit', '?')}); retrain with cv --force")
        runs.atomic_write_json(run.result_path, result)
        runs.EXECUTED.append(f"{desc}:{run.name}")
        return result

    def line(run: runs.Run, result: dict, cached: bool) -> str:
        parts = "  ".join(f"{c} {runs.fmt(result['conditions'][c]['uar'], '.3f')}" for c in conditions)
        return f"fold {run.fold} seed {run.seed}: UAR {parts}{'  (finished earlier)' if cached else ''}"

    def complete(result: dict) -> bool:  # evaluated under every condition asked for now (and same settings)
        same = all(result.get(k) == v for k, v in (extra_meta or {}).items())
        return same and set(conditions) <= set(result.get("conditions", {}))

    return runs.run_all(eval_runs, desc, line, force=force, executor=execute, complete=complete)


def checkpoint_runs(corpus: str, system: str, seeds: list[int], folds: str | None, results_dir: str | Path | None,
                    max_epochs: int | None, extra: Sequence[str], manifest_dir: str) -> tuple[Path, list[str], list[runs.Run]]:
    """``(results dir, folds, the cv runs whose checkpoints are evaluated)``: the same runs as ``cv`` makes,
    so that a robustness evaluation reuses (or first trains) exactly the cv checkpoints."""
    results_dir = Path(results_dir or runs.RESULTS_DIR / corpus)
    fold_list = runs.select_folds(runs.fold_names(corpus, manifest_dir), folds)
    cv_runs = runs.make_runs(corpus, system, fold_list, seeds, results_dir / system, max_epochs, extra,
                             manifest_dir=manifest_dir)
    return results_dir, fold_list, cv_runs


def dry_run_eval(cv_runs: Sequence[runs.Run], out: Path) -> dict:
    """Print, per fold x seed, whether its cv checkpoint exists (else it will be trained) and whether
    it has been evaluated already."""
    for r in cv_runs:
        cv_state = "cv finished" if r.load() else "cv to train first"
        done = runs.read_json(Path(out) / "runs" / r.name / runs.RESULT_FILE)
        print(f"{r.name:<20} {cv_state:<18} {'evaluated' if done else 'to evaluate'}")
    return {}


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
    from .cv import write_csv

    rows = [{"fold": r["fold"], "seed": r["seed"], "condition": c, **p}
            for r in results for c in conditions for p in r["predictions"][c]]
    write_csv(path, rows, ["fold", "seed", "condition", "key", "speaker", "label", "pred"])


def condition_table(summaries: dict[str, dict], conditions: Sequence[str], metric: str = "uar") -> list[list[str]]:
    """Rows ``[system, mean ± std per condition]`` (percent)."""
    return [[system, *(aggregate.fmt_pct(s["conditions"].get(c, {}).get(metric)) for c in conditions)]
            for system, s in summaries.items()]


def collect(results_dir: Path, kind: str) -> dict[str, dict]:
    """``{system: summary}`` of every ``<results_dir>/<system>/<kind>/summary.json``."""
    found = {}
    for path in sorted(Path(results_dir).glob(f"*/{kind}/summary.json")):
        s = runs.read_json(path)
        if s:
            found[path.parent.parent.name] = s
    order = {name: i for i, name in enumerate(runs.SYSTEMS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


# -- noise ---------------------------------------------------------------------------------------------
def snr_label(snr: float) -> str:
    return f"{snr:g} dB"


def noise_source(manifest_dir: str | Path, choice: str = "auto") -> str:
    if choice != "auto":
        return choice
    return "demand" if (Path(manifest_dir) / "demand" / "manifest.csv").exists() else "speech_commands"


def make_bank(name: str, manifest_dir: str | Path, sample_rate: int):
    from mtl_aug.data.manifest import read_manifest
    from mtl_aug.data.noise import NoiseBank
    from mtl_aug.data.roots import resolve_root

    manifest = Path(manifest_dir) / name / "manifest.csv"
    if not manifest.exists():
        raise SystemExit(f"no noise manifest at {manifest}: run `python -m mtl_aug prepare {name}` first")
    return NoiseBank(read_manifest(manifest), resolve_root(name), split="eval", sample_rate=sample_rate)


def mix_batch(bank, batch: dict, snr: float):
    """Each row's valid samples mixed with its (key, SNR) noise at exactly ``snr`` dB; padding stays 0."""
    wave = batch["wave"].clone()
    for i, (key, n) in enumerate(zip(batch["key"], batch["lengths"].tolist())):
        wave[i, :n] = bank.mix(key, batch["wave"][i, :n], snr)
    return wave


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug noise", description=__doc__.split("\n")[0],
                                epilog="Flags after -- go to LightningCLI for runs that must be trained.")
    p.add_argument("--corpus", required=True)
    p.add_argument("--system", required=True, help="a system, or a comma list of systems")
    p.add_argument("--folds", default=None)
    p.add_argument("--snrs", default="20,10,0", help="comma-separated SNRs in dB (default 20,10,0)")
    p.add_argument("--noise", default="auto", choices=["auto", "demand", "speech_commands"])
    p.add_argument("--results-dir", default=None, help="default experiments/results/<corpus>")
    runs.add_common_arguments(p)
    return p


def write_combined(results_dir: Path, kind: str, conditions: Sequence[str], title: str, xlabel: str,
                   xs: Sequence[str] | None = None, labels: Sequence[str] | None = None) -> dict[str, dict]:
    """``<results_dir>/<kind>.md`` + ``.png`` over every system with ``<kind>`` results."""
    summaries = collect(results_dir, kind)
    if not summaries:
        return summaries
    header = ["system", *(labels or conditions)]
    protocol = next(iter(summaries.values())).get("protocol", "")
    md = [f"## {title}", "", f"Protocol: {protocol}. UAR in %, mean ± std over seeds (a seed's UAR = mean of its "
          "per-fold UARs).", "", tables.markdown_table(header, condition_table(summaries, conditions)), "",
          "Pooled UAR (all folds' predictions per seed):", "",
          tables.markdown_table(header, condition_table(summaries, conditions, "pooled_uar")), ""]
    runs.atomic_write_text(Path(results_dir) / f"{kind}.md", "\n".join(md))
    series = {system: {c: (s["conditions"][c]["uar"]["mean"], s["conditions"][c]["uar"]["std"])
                       for c in conditions if c in s["conditions"]} for system, s in summaries.items()}
    plots.lines_png(series, list(xs or conditions), Path(results_dir) / f"{kind}.png", xlabel=xlabel, title=title)
    return summaries


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
    runs.atomic_write_json(out / "summary.json", summary)
    runs.atomic_write_text(out / "summary.md", "\n".join(md))
    return summary


def run_noise(corpus: str, system: str, seeds: list[int], folds: str | None = None, snrs: Sequence[float] = (20, 10, 0),
              noise: str = "auto", results_dir: str | Path | None = None, max_epochs: int | None = None,
              extra: Sequence[str] = (), manifest_dir: str = "data_manifests", force: bool = False,
              meta: dict | None = None, dry_run: bool = False) -> dict:
    from .cv import protocol_name

    results_dir, fold_list, cv_runs = checkpoint_runs(corpus, system, seeds, folds, results_dir, max_epochs, extra,
                                                      manifest_dir)
    if dry_run:
        return dry_run_eval(cv_runs, results_dir / system / "noise")
    source = noise_source(manifest_dir, noise)
    conditions = [CLEAN] + [snr_label(s) for s in snrs]
    banks: dict[int, object] = {}

    def evaluate(model, dm, run):
        sr = int(dm.hparams.sample_rate)
        if sr not in banks:
            banks[sr] = make_bank(source, manifest_dir, sr)
        out = {CLEAN: runs.predict_test(model, dm)}
        for snr in snrs:
            out[snr_label(snr)] = runs.predict_test(model, dm, lambda b, s=snr: mix_batch(banks[sr], b, s))
        return out

    out = results_dir / system / "noise"
    results = evaluate_checkpoints(cv_runs, out, conditions, evaluate, f"noise {corpus}/{system}", force,
                                   {"noise": source})
    meta = meta or runs.provenance("noise", ["--corpus", corpus, "--system", system])
    protocol = (f"{protocol_name(corpus, len(fold_list), manifest_dir)}; trained on clean speech, test utterances "
                f"mixed with real noise ({source}, evaluation half of each file) at exact SNR")
    summary = system_report(out, results, conditions, meta | {"noise": source}, f"{system} on {corpus} under noise",
                            protocol)
    write_combined(results_dir, "noise", conditions, f"UAR vs SNR on {corpus} ({source} noise)", "SNR")
    return summary


def main(argv: list[str]) -> int:
    own, extra = runs.split_extra(argv)
    a = parser().parse_args(own)
    meta = runs.provenance("noise", argv)
    snrs = [float(s) for s in a.snrs.split(",") if s.strip()]
    for system in a.system.split(","):
        s = run_noise(a.corpus, system, runs.parse_seeds(a.seeds), a.folds, snrs, a.noise, a.results_dir,
                      a.max_epochs, extra, a.manifest_dir, a.force, meta, a.dry_run)
        if a.dry_run:
            continue
        print(f"{system} on {a.corpus}: " + ", ".join(
            f"{c} UAR {aggregate.fmt_pct(s['conditions'][c]['uar'])}" for c in s["order"]))
    results_dir = Path(a.results_dir or runs.RESULTS_DIR / a.corpus)
    if not a.dry_run:
        print(f"table: {results_dir / 'noise.md'}  plot: {results_dir / 'noise.png'}")
    return 0

