"""The leaderboard of an offline sweep: ``leaderboard.csv`` / ``.md`` / ``.png``, best first, rewritten after
every trial, and the cv command that reports the best parameters over every fold."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from mtl_aug.sweep.config import Sweep, flags
from mtl_aug.sweep.params import is_number


def ranked(trials: list[dict], goal: str) -> list[dict]:
    """Finished trials best first (goal-aware), then failed ones in trial order."""
    ok = [t for t in trials if t["status"] == "ok"]
    bad = sorted((t for t in trials if t["status"] != "ok"), key=lambda t: t["trial"])
    ok.sort(key=lambda t: (-t["metric"] if goal == "maximize" else t["metric"], t["trial"]))
    return ok + bad


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e4:
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.4g}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def write_leaderboard(out: Path, sweep: Sweep, trials: list[dict]) -> tuple[Path, Path]:
    rows = ranked(trials, sweep.goal)
    names = sorted({k for t in trials for k in t["params"]})
    extra = sorted({k for t in trials for k in t.get("extra", {})})
    header = ["rank", "trial", sweep.metric, *names, *extra, "status", "time_s", "wandb_run"]
    csv_path, md_path = out / "leaderboard.csv", out / "leaderboard.md"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for rank, t in enumerate(rows, 1):
            w.writerow([rank if t["status"] == "ok" else "", t["trial"], "" if t["metric"] is None else t["metric"],
                        *[_cell(t["params"].get(k, "")) for k in names], *[t.get("extra", {}).get(k, "") for k in extra],
                        t["status"], t["time_s"], t.get("wandb_run") or ""])
    n_ok = sum(t["status"] == "ok" for t in trials)
    # offline, bayes is random draws (see _main); the leaderboard says what actually ran
    method_label = "random draws (the YAML asks for bayes, which needs W&B's server)" if sweep.method == "bayes" else sweep.method
    lines = [f"# Sweep `{sweep.name}`", "",
             f"{method_label} over {', '.join(f'`{n}`' for n in names)}; metric `{sweep.metric}` "
             f"({sweep.goal}); {n_ok} of {len(trials)} trials finished.", ""]
    if sweep.metric.startswith("val"):
        lines += ["Validation metric over the sweep's dev folds (no test speaker is evaluated): pick values "
                  "here, then report `make cv` with them over every fold."]
        seen = sorted({s for t in trials for spk in (t.get("val_speakers") or {}).values() for s in spk})
        if seen:
            lines += [f"The tuning saw the validation speakers {', '.join(seen)}: in `make cv`, the folds that "
                      f"test on them are not blind to this choice (the usual bias of tuning inside CV)."]
        lines += [""]
    md_header = ["rank", "trial", f"`{sweep.metric}`", *[f"`{k}`" for k in names], *[f"`{k}`" for k in extra],
                 "status", "time (s)"]
    lines += ["| " + " | ".join(md_header) + " |", "|" + "---|" * len(md_header)]
    for rank, t in enumerate(rows, 1):
        cells = [str(rank) if t["status"] == "ok" else "–", str(t["trial"]),
                 "–" if t["metric"] is None else f"{t['metric']:.4f}",
                 *[_fmt(t["params"].get(k, "")) for k in names], *[_fmt(t.get("extra", {}).get(k, "")) for k in extra],
                 t["status"], f"{t['time_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if rows and rows[0]["status"] == "ok":
        lines += ["", "Best flags: `" + " ".join(flags(rows[0]["params"])) + "`"]
        report = cv_command(sweep, rows[0]["params"])
        if report:
            lines += ["", f"Final numbers, every fold: `{report}`"]
    points = plot_points(rows)
    if points:
        from mtl_aug.evaluation.plots import sweep_png  # matplotlib costs ~0.4 s: not for --check / --dry-run

        png = sweep_png(points, out / "leaderboard.png", sweep.metric,
                        log_x=[p.name for p in sweep.parameters if "log" in p.distribution],
                        best=(rows[0]["params"], rows[0]["metric"]),
                        title=f"sweep {sweep.name}: {n_ok} finished trials, best ringed")
        lines += ["", f"Figure: `{png.name}` ({sweep.metric} against each parameter, one dot per finished trial)."]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def plot_points(rows: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """``name -> [(value, metric), ...]`` over the finished trials, for every parameter that is a number in
    all of them and takes more than one value (constants and categorical flags say nothing on a scatter)."""
    ok = [t for t in rows if t["status"] == "ok" and t["metric"] is not None]
    names = sorted({k for t in ok for k in t["params"]})
    points = {}
    for name in names:
        values = [t["params"].get(name) for t in ok]
        if all(is_number(v) for v in values) and len(set(values)) > 1:
            points[name] = [(float(v), float(t["metric"])) for v, t in zip(values, ok)]
    return points


def cv_command(sweep: Sweep, params: dict) -> str | None:
    """The cross-validation command that reports ``params`` (when the sweep's command names the corpus and
    system configs), into its own results folder so the untuned results stay."""
    cmd = [str(c) for c in sweep.command]
    found = {}
    for kind in ("corpora", "systems"):
        for c in cmd:
            m = re.search(rf"experiments/{kind}/([\w-]+)\.yaml$", c)
            if m:
                found[kind] = m.group(1)
    if len(found) < 2:
        return None
    corpus, system = found["corpora"], found["systems"]
    return (f"python -m mtl_aug cv --corpus {corpus} --system {system} "
            f"--out experiments/results/{corpus}/{system}_{sweep.name} -- " + " ".join(flags(params)))
