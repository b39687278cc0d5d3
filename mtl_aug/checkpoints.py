"""The project's one checkpoint loader (training layer), for every command that reads a trained model.

* :func:`load_model` — a model for inference (``predict``, ``export``, release models): any device, eval
  mode, no gradients; every problem is a :class:`CheckpointError` whose message is ONE line naming the path.
* :func:`load_for_evaluation` — ``(model, datamodule, group statistics or None)`` for ``noise`` and
  ``adversarial``: the model of a cv run's checkpoint (a neural ``.ckpt`` or a baseline's ``model.pkl``) and
  its data rebuilt from the checkpoint (same corpus, fold, test corpus, sample rate, eval crop).

Both read the file once (:func:`read_checkpoint`), check it (:func:`check_format`) and build the module with
``MTLAugModule.load_from_checkpoint`` (:func:`mtl_aug.tasks.config.load_module`; format-1 checkpoints of the
flat module translated).
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtl_aug.tasks import MTLAugModule
from mtl_aug.tasks.config import (CHECKPOINT_FORMAT, FORMAT_KEY, GROUP_NORM_KEY, READABLE_FORMATS, CheckpointError,
                                  _first_line, normalization_mode, read_checkpoint)


def expected_format() -> int:
    """The checkpoint format version this mtl_aug writes."""
    return CHECKPOINT_FORMAT


def check_format(path: str | Path, ckpt: dict, group_norm: bool = False) -> None:
    """A clear error for a checkpoint without ``mtl_aug_format``, with another version, or (unless
    ``group_norm``: the caller normalises its test groups) with speaker/corpus-level normalisation."""
    if "hyper_parameters" not in ckpt:
        raise CheckpointError(path, "checkpoint has no hyper-parameters: not an MTL-AUG model checkpoint")
    if FORMAT_KEY not in ckpt:
        raise CheckpointError(
            path, f"missing '{FORMAT_KEY}': not an MTL-AUG checkpoint, or written by a pre-release version; retrain it")
    have = ckpt[FORMAT_KEY]
    if have not in READABLE_FORMATS:
        raise CheckpointError(
            path, f"incompatible checkpoint format {FORMAT_KEY}={have!r}, this version of mtl_aug reads {CHECKPOINT_FORMAT!r}")
    if GROUP_NORM_KEY in ckpt and not group_norm:
        # Its weights expect log-mels normalised by the statistics of the speaker being predicted; loaded
        # as a plain model it would see unnormalised features and predict garbage without a word.
        raise CheckpointError(
            path, f"trained with {normalization_mode(ckpt)}-level log-mel normalisation "
            "(--normalize): it needs statistics of the speaker being predicted, which predict and export do "
            "not compute (cv, cross, noise, adversarial do); use a per-utterance model (make pretrained)")


def _module(path: Path, checkpoint: dict, device):
    try:
        return MTLAugModule.load_from_checkpoint(path, map_location=device, checkpoint=checkpoint)
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - the module's own format check, state-dict mismatch ...
        raise CheckpointError(path, f"cannot load as MTLAugModule ({_first_line(err)})") from None


def load_model(ckpt: str | Path, device: str | torch.device = "cpu"):
    """An ``MTLAugModule`` from a checkpoint, on ``device`` (``cpu``/``cuda``/``auto``), in eval mode."""
    path = Path(ckpt)
    dev = resolve_device(device)
    checkpoint, _ = read_checkpoint(path, map_location="cpu")
    check_format(path, checkpoint)
    model = _module(path, checkpoint, dev)
    model.checkpoint_format = checkpoint[FORMAT_KEY]  # plain attribute (not a hyper-parameter): export metadata
    model.checkpoint_path = str(path)
    model.eval()
    model.requires_grad_(False)
    return model


def load_for_evaluation(path: str | Path, group_norm: bool = True):
    """``(model in eval mode on CPU, SERDataModule set up for testing, group-normalisation state or None)``.

    A speaker/corpus-normalised checkpoint is refused unless ``group_norm`` (the caller computes the test
    groups' statistics; the stored ones are returned); a baseline's ``model.pkl`` loads as its model."""
    if Path(path).name.endswith(".pkl"):  # a classical baseline's model file (mtl_aug.baseline.run)
        from mtl_aug.baseline.run import load

        return load(path)
    from mtl_aug.data.datamodule import SERDataModule

    path = Path(path)
    checkpoint, _ = read_checkpoint(path, map_location="cpu")
    check_format(path, checkpoint, group_norm=group_norm)
    try:
        model = MTLAugModule.load_from_checkpoint(path, map_location="cpu", checkpoint=checkpoint).eval()
    except RuntimeError as e:  # a state dict of another model version (architecture changed since)
        raise RuntimeError(f"{path} does not load into the current model code ({str(e).splitlines()[0]} ...): it was "
                           "trained by an older version; retrain its runs (cv ... --force)") from e
    dm = SERDataModule.load_from_checkpoint(path, use_unlabelled=False)
    dm.setup("test")
    return model, dm, checkpoint.get(GROUP_NORM_KEY)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA if available else CPU; ``cuda`` without a GPU is an error (not a silent fallback)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available on this machine (use cpu or auto)")
    return dev


def save_untrained_checkpoint(path: str | Path, seed: int = 0, **flat) -> Path:
    """Write a checkpoint of an UNTRAINED ``MTLAugModule.from_flat(**flat)`` (random weights, seeded).

    For smoke tests of the deployment path (predict, export, benchmarks) without training; it goes
    through Lightning's own ``save_checkpoint``, so it has the exact structure of a trained one.
    """
    import lightning as L

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = MTLAugModule.from_flat(**flat)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path
