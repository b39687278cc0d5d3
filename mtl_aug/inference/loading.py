"""Models for inference: one checkpoint or several (a seed ensemble), their class names and sample rate, and the
openSMILE + SVM models ``predict --svm`` fuses with them.

Checkpoints are read by the project's one loader, :func:`mtl_aug.checkpoints.load_model` (any device, eval
mode, one-line :class:`~mtl_aug.checkpoints.CheckpointError` for an unusable file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from mtl_aug.checkpoints import CheckpointError, load_model


class MeanNetwork(torch.nn.Module):
    """Networks of one recipe as one: the log of their MEAN softmax, so the softmax a caller takes gives back
    exactly those mean probabilities (soft voting, as ``python -m mtl_aug ensemble`` evaluates it on cv runs)."""

    def __init__(self, networks: list[torch.nn.Module]) -> None:
        super().__init__()
        self.networks = torch.nn.ModuleList(networks)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(net(wave, lengths).float(), dim=-1) for net in self.networks])
        return probs.mean(0).log()


class SeedEnsemble(torch.nn.Module):
    """Several checkpoints of one recipe (its seeds, or its folds' models) as one model for inference: its
    ``network`` is the members' networks' soft vote (:class:`MeanNetwork`)."""

    def __init__(self, members: list) -> None:
        super().__init__()
        self.network = MeanNetwork([m.network for m in members])
        self.hparams = members[0].hparams  # class names and sample rate, checked equal by load_models
        self.checkpoint_path = [m.checkpoint_path for m in members]
        self.checkpoint_format = getattr(members[0], "checkpoint_format", None)

    def emotion_logits(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.network(wave, lengths)


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


def load_svms(paths: Sequence[str], model) -> list:
    """The ``--svm`` models, checked to score the network's classes at its sample rate from one utterance."""
    from mtl_aug.baseline.run import ModelFileError, load_baseline

    svms = []
    for path in paths:
        try:
            svm = load_baseline(path)
            svm.check_scores_one_utterance()
        except ModelFileError as err:
            raise CheckpointError(path, str(err).split(": ", 1)[-1]) from None
        if class_names(svm) != class_names(model):
            raise CheckpointError(path, f"classes {class_names(svm)} differ from the network's {class_names(model)}")
        if svm.hparams.sample_rate != sample_rate(model):
            raise CheckpointError(path, f"features at {svm.hparams.sample_rate} Hz, the network's input at "
                                        f"{sample_rate(model)} Hz")
        svms.append(svm)
    return svms
