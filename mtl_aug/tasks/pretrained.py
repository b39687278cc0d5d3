"""Pre-trained encoder files (``python -m mtl_aug pretrain``): save the shared parts of a module, and load
some of them into another module (``init_from`` / ``init_parts``, when fitting starts).

A file holds ``{part}.{key}`` weights of the parts ``front_end``, ``encoder``, ``decoder``, ``aug_head`` (the
module's properties of those names), the module's settings and the pool it saw. Files written before issue 33
hold the same names and load the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import legacy

FORMAT_KEY = "mtl_aug_pretrained_encoder"
FORMAT = 1
PARTS = ("front_end", "encoder", "decoder", "aug_head")


class PretrainError(RuntimeError):
    """A pre-trained encoder file that cannot initialise this model; the message names the file."""


def save_parts(model, path: Path, pool: dict) -> Path:
    state = {f"{part}.{k}": v.detach().cpu() for part in PARTS if getattr(model, part, None) is not None
             for k, v in getattr(model, part).state_dict().items()}
    hparams = json.loads(json.dumps(dict(model.hparams), default=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({FORMAT_KEY: FORMAT, "state_dict": state, "hparams": hparams, "pool": pool}, tmp)
    tmp.replace(path)
    return path


def load_parts(model: torch.nn.Module, path: str | Path, parts: list[str]) -> list[str]:
    """Copy ``parts`` (sub-module names) of the pre-trained file into ``model``; returns the names loaded."""
    p = Path(path)
    if not p.is_file():
        raise PretrainError(f"{p}: pre-trained encoder file not found (make it with `python -m mtl_aug pretrain`)")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise PretrainError(f"{p}: not a readable pre-trained encoder file ({type(err).__name__}: {err})") from None
    if not isinstance(blob, dict) or blob.get(FORMAT_KEY) != FORMAT:
        raise PretrainError(f"{p}: not a pre-trained encoder file of format {FORMAT} (key '{FORMAT_KEY}')")
    state = blob["state_dict"]
    for part in parts:
        sub = getattr(model, part, None)
        if part not in PARTS or sub is None:
            raise PretrainError(f"{p}: cannot initialise '{part}': this model has no such part "
                                f"(parts: {', '.join(k for k in PARTS if getattr(model, k, None) is not None)})")
        src = {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")}
        if not src:
            raise PretrainError(f"{p}: holds no weights for '{part}'")
        own = sub.state_dict()
        bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in src.items() if k in own and own[k].shape != v.shape]
        missing, extra = sorted(set(own) - set(src)), sorted(set(src) - set(own))
        if bad or missing or extra:
            raise PretrainError(f"{p}: '{part}' does not match this model's architecture (pre-trained with "
                                f"{_arch(blob['hparams'])}); shapes: {bad[:3]}, missing: {missing[:3]}, unexpected: {extra[:3]}")
        sub.load_state_dict(src)
    return parts


def _arch(hp: dict) -> str:
    """The architecture settings a file was pre-trained with (format-1 flat or nested hyper-parameters)."""
    if not legacy.is_flat(hp):
        args = {**(hp.get("front_end") or {}).get("init_args", {}),
                **{f"enc_{k}": v for k, v in (hp.get("encoder") or {}).get("init_args", {}).items()}}
        hp = args
    keys = ("n_mels", "n_fft", "prosody", "enc_channels", "enc_out_dim", "enc_deltas", "enc_norm")
    return ", ".join(f"{k}={hp.get(k)}" for k in keys if k in hp)
