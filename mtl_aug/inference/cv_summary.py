"""What a release model's card says of its system's cross-validation: the cv folder's summary, and whether those
runs had the model's recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

RESULTS_DIR = Path("experiments/results")


def cv_result(corpus: str, system: str, results_dir: str | Path = RESULTS_DIR, args: Sequence[str] = (),
              members: int = 1) -> dict:
    """The cross-validated UAR of ``system`` on ``corpus`` from the evaluation suite, if it was run, and whether its
    runs had the recipe of a model trained with ``args`` (``same_recipe``: True, False, or None = not recorded).
    When ``<corpus>/<system>/`` holds runs of another (or an unrecorded) recipe and another cv folder of the corpus
    recorded exactly this one (e.g. ``<system>_<recipe name>/``), that folder's numbers are the ones quoted.
    ``members`` > 1 (a seed-ensemble release): the folder's seed ensemble (``<folder>/ensemble/``) is quoted too."""
    from mtl_aug.recipes import recipe_fingerprints

    path = Path(results_dir) / corpus / system / "summary.json"
    fingerprints = recipe_fingerprints(args) if args else set()
    same = _same(path.parent, fingerprints) if args else None
    if args and not same:
        for other in sorted(Path(results_dir, corpus).glob("*/summary.json")):
            if _same(other.parent, fingerprints):
                path, same = other, True
                break
    how = f"not yet measured: run `make cv CORPUS={corpus} SYSTEM={system}` (writes {path})"
    if not path.exists():
        return {"measured": False, "text": how, "summary": str(path)}
    try:
        s = json.loads(path.read_text())
        uar = s["uar"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return {"measured": False, "text": f"unreadable {path} ({err}); {how}", "summary": str(path)}

    def pct(stat) -> str | None:
        if not isinstance(stat, dict) or stat.get("mean") is None:
            return None
        return f"{100 * stat['mean']:.1f} ± {100 * stat.get('std', 0.0):.1f} %"

    seeds = s.get("seeds") or []
    text = f"UAR {pct(uar)} (mean ± std over {len(seeds)} seed(s) of the fold-mean UAR"
    if pct(s.get("pooled_uar")):
        text += f"; pooled {pct(s.get('pooled_uar'))}"
    text += f"), protocol: {s.get('protocol', '?')}"
    if path.parent.name != system:
        text += f"; from {path.parent}, the cv folder with this model's recipe"
    if same is False:
        text += ("; WARNING: these cv runs had another recipe than this model (config files or flags differ): "
                 f"rerun `python -m mtl_aug cv --corpus {corpus} --system {system} --out <new folder>` for its numbers")
    elif args and same is None:
        text += "; the cv runs do not record their recipe (they may be of an earlier one: see their summary.md)"
    ensemble = _ensemble(path.parent) if members > 1 else None
    if ensemble:  # one model per fold: no spread over seeds to give
        text += (f". As a soft-voting ensemble of its {len(ensemble.get('members') or [])} seeds (as this release "
                 f"of {members}): UAR {100 * ensemble['uar']['mean']:.1f} %")
        if (ensemble.get("pooled_uar") or {}).get("mean") is not None:
            text += f", pooled {100 * ensemble['pooled_uar']['mean']:.1f} %"
    elif members > 1:
        text += f"; its seed ensemble is not scored yet: run `python -m mtl_aug ensemble {path.parent}`"
    return {"measured": True, "text": text, "summary": str(path), "same_recipe": same, "uar": uar,
            "pooled_uar": s.get("pooled_uar"), "ensemble": ensemble, "wa": s.get("wa"), "f1": s.get("f1"),
            "seeds": seeds, "n_runs": s.get("n_runs"),
            "protocol": s.get("protocol"), "git_commit": s.get("git_commit"), "date": s.get("date")}


def _ensemble(folder: Path) -> dict | None:
    """The summary ``python -m mtl_aug ensemble`` wrote for a cv folder's seeds, if any."""
    from mtl_aug.io import read_json

    s = read_json(Path(folder) / "ensemble" / "summary.json")
    return s if isinstance(s, dict) and (s.get("uar") or {}).get("mean") is not None else None


def same_recipe(folder: Path, args: Sequence[str]) -> bool | None:
    """Whether the runs of a cv folder recorded the recipe ``args`` trains (None: none recorded one)."""
    from mtl_aug.recipes import recipe_fingerprints

    return _same(folder, recipe_fingerprints(args))


def _same(folder: Path, fingerprints: set[str]) -> bool | None:
    from mtl_aug.io import read_json

    recorded = {(read_json(p) or {}).get("recipe") for p in Path(folder).glob("runs/*/result.json")}
    recorded.discard(None)
    return None if not recorded else recorded <= fingerprints
