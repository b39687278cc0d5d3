"""The module's config <-> the module: hyper-parameters as class paths, building from a config, and the
project's one reader of checkpoint files (:func:`read_checkpoint`, one-line :class:`CheckpointError`) and of the
module in them (:func:`load_module`); the commands load through :mod:`mtl_aug.checkpoints`.

A module's hyper-parameters are always its nested config (``{"front_end": {"class_path": ..., "init_args":
{...}}, ...}``), whether LightningCLI built it or Python code did with classes or ``functools.partial``
factories: :func:`normalize_hparams` writes factories as class paths, so every checkpoint holds a config that
:func:`build_module` turns back into the same module.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Any

import torch

from . import legacy

CHECKPOINT_FORMAT = 2  # 1 = the flat-hyperparameter module before issue 33 (still read: see legacy.py)
FORMAT_KEY = "mtl_aug_format"
READABLE_FORMATS = (1, CHECKPOINT_FORMAT)
GROUP_NORM_KEY = "speaker_norm"  # statistics of a speaker/corpus-normalised model's groups


log = logging.getLogger(__name__)


class CheckpointFormatError(RuntimeError):
    """A checkpoint without, or with another, ``mtl_aug_format``."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; ``str(err)`` is one line: ``<path>: <reason>``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = _one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {_one_line(text.splitlines()[0])}" if text else type(err).__name__


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, bool]:
    """``torch.load`` a checkpoint file -> ``(checkpoint dict, weights_only used)``; CheckpointError on failure.

    Tries the safe ``weights_only=True`` loader first; a Lightning checkpoint holding objects it does
    not allow (e.g. a custom callback's state) is then read with the full unpickler — the user chose
    the file — with a warning in the log.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(p, "checkpoint file not found")
    if not p.is_file():
        raise CheckpointError(p, "not a file (expected a .ckpt checkpoint)")
    if p.stat().st_size == 0:
        raise CheckpointError(p, "empty file (0 bytes), not a checkpoint")
    weights_only = True
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a random file makes the unpickler raise anything
        if "Unsupported global" not in str(err):
            raise CheckpointError(p, f"not a PyTorch checkpoint ({_first_line(err)})") from None
        # a genuine torch file holding objects beyond tensors/containers/primitives
        log.warning("%s: holds objects the weights-only loader refuses; loading it with the full unpickler", p)
        weights_only = False
        try:
            ckpt = torch.load(p, map_location=map_location, weights_only=False)
        except Exception as err2:  # noqa: BLE001
            raise CheckpointError(p, f"not a readable PyTorch checkpoint ({_first_line(err2)})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(p, "not a Lightning checkpoint (no 'state_dict'); expected a .ckpt written by training")
    return ckpt, weights_only


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def spec_of(value: Any) -> Any:
    """A component factory as ``{"class_path", "init_args"}`` (classes, ``functools.partial`` of a class,
    jsonargparse's factories); dataclasses as dicts; containers recursively; other values unchanged."""
    if isinstance(value, functools.partial):
        cls = value.func if isinstance(value.func, type) else next((a for a in value.args if isinstance(a, type)), None)
        if cls is None:
            raise TypeError(f"cannot write {value!r} as a class path")
        return {"class_path": class_path(cls), "init_args": {k: spec_of(v) for k, v in value.keywords.items()}}
    if isinstance(value, type):
        return {"class_path": class_path(value), "init_args": {}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: spec_of(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: spec_of(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [spec_of(v) for v in value]
    return value


def normalize_hparams(module) -> None:
    """Rewrite the module's saved hyper-parameters as its config (class paths, plain values)."""
    for k, v in list(module.hparams.items()):
        module.hparams[k] = spec_of(v)


def build_module(cls: type, config: dict):
    """A ``cls`` module from its nested config (what LightningCLI would build from it)."""
    from jsonargparse import ArgumentParser

    config = {k: v for k, v in config.items() if not k.startswith("_")}  # Lightning's _instantiator, _class_path
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "model", fail_untyped=False)
    return parser.instantiate(parser.parse_object({"model": config})).model


def normalization_mode(checkpoint: dict) -> str:
    """The log-mel normalisation a checkpoint's model was trained with: the mode (speaker / corpus) of the group
    statistics it holds, else ``utterance``."""
    if GROUP_NORM_KEY not in checkpoint:
        return "utterance"
    return (checkpoint[GROUP_NORM_KEY] or {}).get("mode", "speaker")


def module_config(checkpoint: dict) -> dict:
    """The nested config of a checkpoint's module, format 1 (flat hyper-parameters) translated."""
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if checkpoint.get(FORMAT_KEY) == 1 or legacy.is_flat(hparams):
        if GROUP_NORM_KEY in checkpoint and hparams.get("normalize", "utterance") == "none":
            hparams["normalize"] = normalization_mode(checkpoint)  # format 1: set by a callback
        return legacy.nested_from_flat(hparams)
    return hparams


def load_module(cls: type, path: str | Path, map_location: Any = None, checkpoint: dict | None = None,
                strict: bool = True, **_: Any):
    """The ``cls`` module of a checkpoint file (or of its already loaded ``checkpoint`` dict), on ``map_location``."""
    if checkpoint is None:
        checkpoint, _ = read_checkpoint(path)
    model = build_module(cls, module_config(checkpoint))
    model.on_load_checkpoint(checkpoint)  # format check, format-1 state-dict names, policy RNG, group statistics
    model.load_state_dict(checkpoint["state_dict"], strict=strict)
    if map_location is not None:
        model.to(map_location)
    return model
