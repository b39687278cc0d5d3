"""The LightningCLI side of the sweep objective: one dev fold's args, parsing them without training, and
reading the resolved config (dev folds of the corpus, a parameter's value, whether DDP launches processes)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mtl_aug.data.folds import corpus_folds

FOLD_FLAG = "--data.fold"


def split_configs(args: list[str]) -> tuple[list[str], list[str]]:
    """Pull ``--config X`` / ``--config=X`` / ``-c X`` out of ``args``: (config files, the other args)."""
    configs, rest, i = [], [], 0
    while i < len(args):
        a = args[i]
        if a in ("--config", "-c") and i + 1 < len(args):
            configs.append(args[i + 1])
            i += 2
            continue
        if a.startswith("--config="):
            configs.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return configs, rest


def fold_args(common: list[str], fold: str, out_dir: Path) -> list[str]:
    """LightningCLI args of one dev fold: its fold, and a CSV logger under the trial's directory."""
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": str(out_dir), "name": f"fold_{fold}", "version": 0}}
    return [*common, f"{FOLD_FLAG}={fold}", f"--trainer.logger={json.dumps(logger)}",
            f"--trainer.default_root_dir={out_dir}"]


def _make_cli(args: list[str]):
    """``make_cli(args, run=False)``, with ``sys.argv`` hidden (LightningCLI warns when it sees both)."""
    from mtl_aug.training import make_cli

    argv0, sys.argv = sys.argv, sys.argv[:1]
    try:
        return make_cli(args, run=False)
    finally:
        sys.argv = argv0


def check_cli_args(args: list[str]) -> dict[str, Any]:
    """Parse ``args`` with the project's LightningCLI without instantiating anything; returns the
    resolved config (a dict). Raises ValueError with jsonargparse's message when LightningCLI refuses."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            _make_cli([*args, "--print_config"])
        except SystemExit as e:
            code = e.code
    if code not in (0, None):
        text = err.getvalue().strip()
        msg = text.split("error:", 1)[1].strip() if "error:" in text else (text or f"exit code {code}")
        raise ValueError(f"LightningCLI rejected the flags: {msg}\n  args: {' '.join(args)}")
    return yaml.safe_load(out.getvalue()) or {}


def check_dev_folds(resolved: dict, folds: list[str]) -> bool:
    """Dev folds must be folds of the corpus (``data_manifests/<corpus>/folds.json``), scored on validation speakers
    that are not trained on (no ``data.train_on_val``). Returns False when
    the corpus is not prepared here (nothing to check against); raises ValueError for unknown folds."""
    data = resolved.get("data") or {}
    if data.get("train_on_val"):
        raise ValueError("data.train_on_val trains on the validation speakers a sweep trial is scored on; drop it "
                         "from the sweep")
    doc = corpus_folds(str(data.get("corpus")), data.get("manifest_dir") or "data_manifests")
    if doc is None:
        return False
    names = [f["name"] for f in doc["folds"]]
    unknown = [f for f in folds if f not in names]
    if unknown:
        raise ValueError(f"dev fold(s) {', '.join(unknown)} are not folds of {data.get('corpus')} ({', '.join(names)})")
    return True


def lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def multi_process(resolved: dict) -> bool:
    """Whether the resolved trainer config launches several processes (DDP over devices or nodes)."""
    t = resolved.get("trainer") or {}
    if int(t.get("num_nodes") or 1) > 1:
        return True
    devices = t.get("devices", "auto")
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    if devices in ("auto", -1, "-1"):
        import torch

        return t.get("accelerator") not in ("cpu",) and torch.cuda.device_count() > 1
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()]) > 1
    try:
        return int(devices) > 1
    except (TypeError, ValueError):
        return False
