"""``python -m mtl_aug directions OUT``: the recipe-direction table of an offline sweep's trials.

Each trial of a directions sweep (``experiments/sweeps/recipe_directions.yaml``) is one recipe YAML, or a
combination, on the dev folds; this reads every finished trial's result JSON (``<out>/trials/*/result.json``,
written by ``mtl_aug.sweep.objective``) and writes one row per trial: the direction, the mean over the dev
folds of the best-epoch validation UAR and of the last-10-epoch mean (the less optimistic view), and the
change of both against a reference trial (the current recipe). Validation speakers only: never a test speaker.

    python -m mtl_aug directions runs/sweeps/recipe_directions --reference current \\
        --out experiments/results/emodb/recipe_search/directions.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mtl_aug.tables import markdown_table


def direction_name(args: list[str]) -> str:
    """The trial's recipe files (stems, after the base/corpus/system configs) and its other flags."""
    recipes = [Path(a.split("=", 1)[1]).stem for a in args
               if a.startswith("--config=") and "/recipes/" in a]
    flags = [a[2:] for a in args if a.startswith("--") and not a.startswith(("--config=", "--trainer.enable_progress_bar",
                                                                                 "--seed_everything"))]
    return " + ".join(recipes + flags) or "?"


def read_trials(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "trials").glob("*/result.json")):
        r = json.loads(path.read_text())
        seed = next((a.split("=", 1)[1] for a in r.get("args", []) if a.startswith("--seed_everything=")), "0")
        rows.append({"trial": path.parent.name, "direction": direction_name(r.get("args", [])), "seed": seed,
                     "best": r["val_uar_mean"], "tail": r.get("val_uar_tail_mean"), "last": r.get("val_uar_last_mean"),
                     "folds": r.get("folds", {}), "curves": r.get("curves", {}), "epochs": r.get("epochs", {}),
                     "minutes": r.get("time_s", 0) / 60})
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _delta(x: float | None, ref: float | None) -> str:
    return "–" if x is None or ref is None else f"{100 * (x - ref):+.1f}"


def table(rows: list[dict], reference: str) -> str:
    refs = [r for r in rows if r["direction"] == reference]
    ref = refs[0] if refs else None
    body = []
    for r in sorted(rows, key=lambda r: -(r["tail"] if r["tail"] is not None else r["best"])):
        tails = [f"{100 * sum(c[-10:]) / len(c[-10:]):.0f}" for _, c in sorted(r["curves"].items()) if c]
        body.append([r["direction"], r["seed"], _pct(r["tail"]), _delta(r["tail"], ref and ref["tail"]), _pct(r["best"]),
                     _delta(r["best"], ref and ref["best"]), " / ".join(tails) or "–",
                     " / ".join(str(e) for _, e in sorted(r["epochs"].items())), f"{r['minutes']:.0f}"])
    head = ["direction", "seed", "last-10-epoch val UAR", f"Δ vs {reference}", "best-epoch val UAR",
            f"Δ vs {reference}", "per fold (last 10)", "epochs", "min"]
    return markdown_table(head, body)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtl_aug directions", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the sweep's output folder (holds trials/*/result.json)")
    p.add_argument("--reference", default="current", help="direction the others are compared with (default: current)")
    p.add_argument("--out", dest="md", type=Path, default=None, help="write the table here (markdown) as well")
    p.add_argument("--title", default="Recipe directions on the dev folds (validation speakers only)")
    a = p.parse_args(argv)
    rows = read_trials(a.out)
    if not rows:
        print(f"directions: no finished trial under {a.out / 'trials'}")
        return 1
    text = f"## {a.title}\n\n{table(rows, a.reference)}\n"
    print(text)
    if a.md:
        a.md.parent.mkdir(parents=True, exist_ok=True)
        a.md.write_text(text)
    return 0
