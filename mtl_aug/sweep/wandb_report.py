"""The sweep objective's W&B run: started when an agent (or the offline runner) asks for one, the trial's
metric logged once; and the small JSON/flag helpers of the objective."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import yaml

from mtl_aug.sweep.dev_folds import METRIC


def wandb_active(opts: argparse.Namespace) -> bool:
    if opts.no_wandb:
        return False
    if os.environ.get("WANDB_SWEEP_ID"):  # started by `wandb agent`
        return True
    return os.environ.get("WANDB_MODE", "").lower() in ("online", "offline", "dryrun", "run", "shared")


def start_wandb(opts: argparse.Namespace, common: list[str]):
    """The trial's W&B run, started before training so it shows (and is marked crashed) like any run.
    Mode, project, group and name come from the environment (agent or offline runner)."""
    import wandb

    config = {"objective": {"dev_folds": opts.folds, "base_config": opts.base_config}}
    if not os.environ.get("WANDB_SWEEP_ID"):  # under an agent the sweep's parameters are the config already
        config.update(overrides(common))
    return wandb.init(project=os.environ.get("WANDB_PROJECT") or "mtl-aug", job_type="sweep-trial", config=config)


def report_to_wandb(run, summary: dict) -> dict:
    import wandb

    # the sweep's metric, logged exactly once for the trial, with the per-fold values beside it
    extra = {k: summary[k] for k in ("val_uar_tail_mean", "val_uar_last_mean") if summary.get(k) is not None}
    wandb.log({METRIC: summary[METRIC], "val_uar_std": summary["val_uar_std"], **extra,
               **{f"val_uar/{fold}": v for fold, v in summary["folds"].items()}})
    run.summary["dev_folds"] = list(summary["folds"])
    return {"id": run.id, "dir": str(Path(run.dir).parent), "mode": str(run.settings.mode)}


def rank_zero_env() -> bool:
    """False in the processes a DDP launcher starts for ranks > 0 (they must not open a W&B run)."""
    return all(os.environ.get(k, "0") == "0" for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def overrides(common: list[str]) -> dict[str, Any]:
    """``--name=value`` flags as a dict of values (the W&B run's config outside an agent)."""
    out = {}
    for a in common:
        if a.startswith("--") and "=" in a and not a.startswith("--config="):
            k, v = a[2:].split("=", 1)
            out[k] = _value(v)
    return out


def _value(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eE") and not text.startswith("[") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return text
