"""Pre-trained encoder files (``python -m mtl_aug pretrain``): save the shared parts of a module, and load
some of them into another module (``init_from`` / ``init_parts``, when fitting starts).

A file holds ``{part}.{key}`` weights of the parts ``front_end``, ``encoder``, ``decoder``, ``aug_head`` (the
module's properties of those names), the module's settings and the pool it saw. Files written before issue 33
hold the same names and load the same way.

``init_from`` may also be a model checkpoint (``.ckpt`` of cv, cross or ``make pretrained``): fine-tuning a model
trained with emotion labels on another corpus. Its parts are found under the same module paths as in this model,
and ``emotion_head`` can be taken too when both models have the same classes in the same order.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import legacy

FORMAT_KEY = "mtl_aug_pretrained_encoder"
FORMAT = 1
PARTS = ("front_end", "encoder", "decoder", "aug_head")
CHECKPOINT_PARTS = (*PARTS, "emotion_head")  # a model checkpoint also holds the emotion head
# the head's per-class CE weights come from the fine-tuning corpus's own training rows (EmotionTask.prepare_fit)
NOT_TRANSFERRED = {"emotion_head": ("class_weights",)}


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
    """Copy ``parts`` (sub-module names) of a pre-trained encoder file or of a model checkpoint into ``model``;
    returns the names loaded."""
    p = Path(path)
    if not p.is_file():
        raise PretrainError(f"{p}: init_from file not found (a pre-trained encoder from `python -m mtl_aug pretrain`, "
                            "or a model checkpoint .ckpt)")
    if p.suffix == ".ckpt":
        state, hparams, known = _checkpoint_parts(model, p, parts)
    else:
        (state, hparams), known = _encoder_file(p), PARTS
    for part in parts:
        sub = getattr(model, part, None)
        if part not in known or sub is None:
            raise PretrainError(f"{p}: cannot initialise '{part}': this model has no such part, or the file cannot "
                                f"hold it (parts: {', '.join(k for k in known if getattr(model, k, None) is not None)})")
        skip = NOT_TRANSFERRED.get(part, ())
        src = {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")}
        src = {k: v for k, v in src.items() if k not in skip}
        if not src:
            raise PretrainError(f"{p}: holds no weights for '{part}'")
        own = {k: v for k, v in sub.state_dict().items() if k not in skip}
        bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in src.items() if k in own and own[k].shape != v.shape]
        missing, extra = sorted(set(own) - set(src)), sorted(set(src) - set(own))
        if bad or missing or extra:
            raise PretrainError(f"{p}: '{part}' does not match this model's architecture (pre-trained with "
                                f"{_arch(hparams)}); shapes: {bad[:3]}, missing: {missing[:3]}, unexpected: {extra[:3]}")
        sub.load_state_dict(src, strict=not skip)
    return parts


def _encoder_file(p: Path) -> tuple[dict, dict]:
    """The ``{part}.{key}`` weights of a ``pretrain`` file and its settings."""
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise PretrainError(f"{p}: not a readable pre-trained encoder file ({type(err).__name__}: {err})") from None
    if not isinstance(blob, dict) or blob.get(FORMAT_KEY) != FORMAT:
        raise PretrainError(f"{p}: not a pre-trained encoder file of format {FORMAT} (key '{FORMAT_KEY}'), nor a "
                            "model checkpoint (.ckpt)")
    return blob["state_dict"], blob["hparams"]


def _checkpoint_parts(model: torch.nn.Module, p: Path, parts: list[str]) -> tuple[dict, dict, tuple[str, ...]]:
    """A model checkpoint's weights renamed to ``{part}.{key}``: each part sits under the same module path in
    the checkpoint as in ``model`` (both are MTLAugModules)."""
    from .config import CheckpointError, module_config, normalization_mode, read_checkpoint

    try:
        ckpt, _ = read_checkpoint(p, map_location="cpu")
    except CheckpointError as err:
        raise PretrainError(str(err)) from None
    hparams = ckpt.get("hyper_parameters") or {}
    # group statistics (speaker/corpus) or the front end's own per-utterance mode (utterance, _band, _mean)
    theirs_norm = normalization_mode(ckpt)
    if theirs_norm == "utterance":
        theirs_norm = ((module_config(ckpt).get("front_end") or {}).get("init_args") or {}).get("normalize", "utterance")
    ours_norm = getattr(model.network.front_end, "normalize", "utterance")  # its group_norm is built from this mode
    if theirs_norm != ours_norm:  # its weights expect log-mels normalised another way: it would start off wrong
        raise PretrainError(f"{p}: trained with {theirs_norm}-level log-mel normalisation, this model uses "
                            f"{ours_norm}-level: start from a model trained with the same normalisation (cv --normalize, "
                            "front_end.normalize)")
    if "emotion_head" in parts:
        theirs, ours = [str(c) for c in hparams.get("class_names") or []], [str(c) for c in model.hparams.class_names]
        if theirs != ours:
            raise PretrainError(f"{p}: its emotion head predicts {theirs}, this model {ours}: leave 'emotion_head' "
                                "out of init_parts (the other parts transfer)")
    paths = {id(m): name for name, m in model.named_modules()}
    state = {}
    for part in parts:
        sub = getattr(model, part, None)
        if part not in CHECKPOINT_PARTS or sub is None:
            continue  # reported by the caller
        prefix = paths[id(sub)] + "."
        state.update({f"{part}.{k[len(prefix):]}": v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})
    return state, hparams, CHECKPOINT_PARTS


def _arch(hp: dict) -> str:
    """The architecture settings a file was pre-trained with (format-1 flat or nested hyper-parameters)."""
    if not legacy.is_flat(hp):
        args = {**(hp.get("front_end") or {}).get("init_args", {}),
                **{f"enc_{k}": v for k, v in (hp.get("encoder") or {}).get("init_args", {}).items()}}
        hp = args
    keys = ("n_mels", "n_fft", "prosody", "voice_tracks", "enc_channels", "enc_out_dim", "enc_deltas", "enc_norm")
    return ", ".join(f"{k}={hp.get(k)}" for k in keys if k in hp)
