"""Load a trained MTL-AUG checkpoint for inference, on any device, with one-line errors.

``load_model(ckpt, device)`` maps every tensor to ``device`` (a checkpoint written on a GPU loads on
a CPU-only machine and vice versa), calls ``MTLAugModule.load_from_checkpoint`` and returns the model
in eval mode. Every problem — missing file, a file that is not a Lightning checkpoint, a checkpoint of
another model or of an incompatible ``mtl_aug_format`` version — becomes a :class:`CheckpointError`
whose message is ONE line naming the path and the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

FORMAT_KEY = "mtl_aug_format"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; ``str(err)`` is one line: ``<path>: <reason>``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = _one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is an error (not a silent fallback)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available on this machine (use cpu or auto)")
    return dev


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


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {_one_line(text.splitlines()[0])}" if text else type(err).__name__


def expected_format():
    """The checkpoint format version the installed ``MTLAugModule`` writes (None if it does not say)."""
    from mtl_aug import module as module_mod

    for holder in (module_mod.MTLAugModule, module_mod):
        for name in ("CHECKPOINT_FORMAT", "MTL_AUG_FORMAT", "FORMAT_VERSION", "CHECKPOINT_FORMAT_VERSION"):
            if hasattr(holder, name):
                return getattr(holder, name)
    return None


def check_format(path: str | Path, ckpt: dict) -> None:
    """A clear error for a checkpoint without ``mtl_aug_format`` or with another version."""
    if "hyper_parameters" not in ckpt:
        raise CheckpointError(path, "checkpoint has no hyper-parameters: not an MTL-AUG model checkpoint")
    if FORMAT_KEY not in ckpt:
        raise CheckpointError(
            path, f"missing '{FORMAT_KEY}': not an MTL-AUG checkpoint, or written by a pre-release version; retrain it"
        )
    want = expected_format()
    have = ckpt[FORMAT_KEY]
    if want is not None and have != want:
        raise CheckpointError(
            path, f"incompatible checkpoint format {FORMAT_KEY}={have!r}, this version of mtl_aug reads {want!r}"
        )
    if "speaker_norm" in ckpt:
        # Its weights expect log-mels normalised by the statistics of the speaker being predicted; loaded
        # as a plain model it would see unnormalised features and predict garbage without a word.
        raise CheckpointError(
            path, f"trained with {ckpt['speaker_norm'].get('mode', 'speaker')}-level log-mel normalisation "
            "(--normalize): it needs statistics of the speaker being predicted, which predict and export do "
            "not compute (cv, cross, noise, adversarial do); use a per-utterance model (make pretrained)"
        )


def load_model(ckpt: str | Path, device: str | torch.device = "cpu"):
    """An ``MTLAugModule`` from a checkpoint, on ``device`` (``cpu``/``cuda``/``auto``), in eval mode."""
    from mtl_aug.module import MTLAugModule

    path = Path(ckpt)
    dev = resolve_device(device)
    checkpoint, weights_only = read_checkpoint(path, map_location="cpu")
    check_format(path, checkpoint)
    fmt = checkpoint.get(FORMAT_KEY)
    del checkpoint
    try:
        model = MTLAugModule.load_from_checkpoint(path, map_location=dev, weights_only=weights_only)
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - the module's own format check, state-dict mismatch ...
        raise CheckpointError(path, f"cannot load as MTLAugModule ({_first_line(err)})") from None
    model.to(dev)
    model.checkpoint_format = fmt  # plain attribute (not a hyper-parameter): exported into model metadata
    model.checkpoint_path = str(path)
    model.eval()
    model.requires_grad_(False)
    return model


class SeedEnsemble(torch.nn.Module):
    """Several checkpoints of one recipe (its seeds, or its folds' models) as one model for inference.

    ``emotion_logits`` returns the log of the members' MEAN softmax, so the softmax a caller takes gives back
    exactly those mean probabilities: soft voting, as ``python -m mtl_aug ensemble`` evaluates it on cv runs.
    """

    def __init__(self, members: list) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.hparams = members[0].hparams  # class names and sample rate, checked equal by load_models
        self.checkpoint_path = [m.checkpoint_path for m in members]

    def emotion_logits(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m.emotion_logits(wave, lengths).float(), dim=-1) for m in self.members])
        return probs.mean(0).log()


def load_models(ckpts: list[str | Path], device: str | torch.device = "cpu"):
    """One checkpoint -> its model (:func:`load_model`); several -> a :class:`SeedEnsemble` of them, after
    checking they predict the same classes from audio at the same sample rate (else a :class:`CheckpointError`
    naming the odd one)."""
    if not ckpts:
        raise CheckpointError("--ckpt", "no checkpoint given")
    models = [load_model(c, device) for c in ckpts]
    if len(models) == 1:
        return models[0]
    first = models[0]
    for path, m in zip(ckpts[1:], models[1:]):
        if class_names(m) != class_names(first):
            raise CheckpointError(path, f"classes {class_names(m)} differ from {ckpts[0]}'s {class_names(first)}: "
                                        "not one ensemble")
        if sample_rate(m) != sample_rate(first):
            raise CheckpointError(path, f"sample rate {sample_rate(m)} Hz differs from {ckpts[0]}'s "
                                        f"{sample_rate(first)} Hz: not one ensemble")
    return SeedEnsemble(models).eval()


def class_names(model) -> list[str]:
    return [str(c) for c in model.hparams.class_names]


def sample_rate(model) -> int:
    return int(model.hparams.get("sample_rate", 16000))


def save_untrained_checkpoint(path: str | Path, seed: int = 0, **hparams) -> Path:
    """Write a checkpoint of an UNTRAINED ``MTLAugModule(**hparams)`` (random weights, seeded).

    For smoke tests of the deployment path (predict, export, benchmarks) without training; it goes
    through Lightning's own ``save_checkpoint``, so it has the exact structure of a trained one.
    """
    import lightning as L

    from mtl_aug.module import MTLAugModule

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = MTLAugModule(**hparams)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path
