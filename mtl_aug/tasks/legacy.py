"""The flat settings of the module before issue 33 (format-1 checkpoints, older configs and flags), translated
to the nested component config of :class:`~mtl_aug.tasks.multitask.MTLAugModule`.

Each flat key names one or more nested paths (``head_dropout`` sets both heads' dropout), so a flat key can be
translated on its own, wherever it appears: a whole format-1 hyper-parameter dict (:func:`nested_from_flat`,
with the old defaults for what it does not say), one ``model:`` section of a YAML file or one command-line
flag (:func:`nested_partial`, :func:`flag_paths`). The flat keys stay usable as shorthands.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

FE, ENC, AUG = "front_end.init_args.", "encoder.init_args.", "augment.init_args."
EMO, REC, AUGC, OPT = "emotion.init_args.", "reconstruction.init_args.", "aug_classification.init_args.", "optimization."

# flat key -> nested dotted paths (relative to the model section)
FLAT_PATHS: dict[str, tuple[str, ...]] = {
    **{k: (FE + k,) for k in ("n_fft", "n_mels", "win_ms", "hop_ms", "f_min", "f_max", "normalize", "prosody")},
    **{f"enc_{k}": (ENC + k,) for k in ("channels", "kernel_size", "time_pool", "freq_pool", "norm", "out_dim",
                                        "dropout", "deltas")},
    **{k: (EMO + k,) for k in ("lstm_hidden", "lstm_layers", "attn_dim", "embed_dim", "center_lambda", "center_alpha",
                               "label_smoothing", "class_weights")},
    "head_dropout": (EMO + "dropout", AUGC + "dropout"),
    "functionals_hidden": (EMO + "side_hidden",),
    "w_recon": (REC + "weight",), "dec_hidden": (REC + "hidden",), "recon_target": (REC + "target",),
    "w_aug": (AUGC + "weight",), "aug_hidden": (AUGC + "hidden",),
    "augment": (AUG + "enabled",), "aug_types": (AUG + "types",), "aug_proportions": (AUG + "proportions",),
    **{k: (AUG + k,) for k in ("speed_factors", "freq_mask_param", "time_mask_param", "n_freq_masks", "n_time_masks",
                               "mixup_alpha", "seed")},
    **{k: (OPT + k,) for k in ("lr", "weight_decay", "optimizer", "scheduler", "lr_patience", "lr_factor",
                               "cosine_t_max")},
}
UNCHANGED = ("class_names", "sample_rate", "functionals", "tta_crops", "tta_crop_seconds", "init_from", "init_parts")

# the defaults of the flat module (format 1): what a format-1 checkpoint meant by a key it does not hold
FLAT_DEFAULTS: dict[str, Any] = dict(
    class_names=["angry", "happy", "neutral", "sad"], sample_rate=16000, n_fft=512, n_mels=64, win_ms=25.0,
    hop_ms=10.0, f_min=20.0, f_max=8000.0, normalize="utterance", prosody=False, enc_channels=[16, 32, 64],
    enc_kernel_size=3, enc_time_pool=[2, 2, 1], enc_freq_pool=[2, 2, 2], enc_norm="group", enc_out_dim=256,
    enc_dropout=0.1, enc_deltas=False, lstm_hidden=128, lstm_layers=1, attn_dim=128, embed_dim=128, head_dropout=0.3,
    dec_hidden=128, aug_hidden=128, augment=True, aug_types=["none", "speed", "specaug", "mixup"], aug_proportions=None,
    speed_factors=[0.9, 1.1], freq_mask_param=12, time_mask_param=20, n_freq_masks=2, n_time_masks=2, mixup_alpha=0.4,
    center_lambda=0.01, center_alpha=0.5, label_smoothing=0.0, tta_crops=1, tta_crop_seconds=None, w_recon=1.0,
    w_aug=1.0, recon_target="input", lr=1e-3, weight_decay=1e-4, optimizer="adamw", scheduler="plateau", lr_patience=3,
    lr_factor=0.5, cosine_t_max=None, class_weights=None, functionals=None, functionals_hidden=64, init_from=None,
    init_parts=["front_end", "encoder"], seed=0)

CLASS_PATHS = {"front_end": "mtl_aug.features.LogMelFrontEnd", "encoder": "mtl_aug.encoder.ConvEncoder",
               "augment": "mtl_aug.augment.AugmentationPolicy", "emotion": "mtl_aug.tasks.EmotionTask",
               "reconstruction": "mtl_aug.tasks.ReconstructionTask",
               "aug_classification": "mtl_aug.tasks.AugmentationTask"}

# state-dict prefixes: format 1 -> format 2
STATE_PREFIXES = (("front_end.", "network.front_end."), ("encoder.", "network.encoder."),
                  ("emotion_head.", "network.head."), ("func_mean", "network.func_mean"),
                  ("func_std", "network.func_std"), ("decoder.", "tasks.reconstruction.head."),
                  ("aug_head.", "tasks.aug_classification.head."))


def is_flat_key(key: str, value: Any = True) -> bool:
    """Whether ``key: value`` is a flat setting. ``augment`` is both the flat switch (a bool) and the nested
    policy component (a class path or a mapping): only a bool (or its text) is the flat one."""
    if key == "augment":
        return isinstance(value, bool) or str(value).lower() in ("true", "false")
    return key in FLAT_PATHS


def is_flat(section: Mapping) -> bool:
    """Whether a ``model`` section (or hyper-parameter dict) holds flat keys."""
    return any(is_flat_key(k, v) for k, v in section.items())


def flag_paths(key: str, value: Any = True) -> tuple[str, ...] | None:
    """The nested paths of one flat key (None when ``key: value`` is not a flat setting)."""
    return FLAT_PATHS[key] if is_flat_key(key, value) else None


def _set(tree: dict, dotted: str, value: Any) -> None:
    """``tree[a][b][c] = value`` for ``dotted = "a.b.c"``; a mapping value is merged into a mapping already there."""
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    if isinstance(value, Mapping) and isinstance(tree.get(leaf), dict):
        for k, v in value.items():
            _set(tree[leaf], k, v)
    else:
        tree[leaf] = copy.deepcopy(value)


def nested_partial(section: Mapping) -> dict:
    """A ``model`` section with its flat keys moved to their nested paths (other keys kept as given)."""
    out: dict = {}
    for k, v in section.items():
        for path in flag_paths(k, v) or (k,):
            _set(out, path, v)
    return out


def nested_from_flat(flat: Mapping) -> dict:
    """The complete nested config of a format-1 module (its flat hyper-parameters over the format-1 defaults).
    The weight-0 auxiliary tasks are kept (weight 0: not built), as the flat module kept their settings."""
    unknown = sorted(k for k in flat if k not in FLAT_DEFAULTS and not k.startswith("_"))
    if unknown:
        raise ValueError(f"not settings of the flat (format-1) module: {unknown}")
    values = {**FLAT_DEFAULTS, **{k: v for k, v in flat.items() if not k.startswith("_")}}
    tree = nested_partial(values)
    for slot, class_path in CLASS_PATHS.items():
        tree[slot] = {"class_path": class_path, "init_args": tree.get(slot, {}).get("init_args", {})}
    return tree


def migrate_state_dict(state: Mapping) -> dict:
    """A format-1 state dict under the format-2 names."""
    out = {}
    for k, v in state.items():
        for old, new in STATE_PREFIXES:
            if k == old or (old.endswith(".") and k.startswith(old)):
                k = new + k[len(old):]
                break
        out[k] = v
    return out
