"""Models for inference: one checkpoint or several (a seed ensemble), their class names and sample rate.

Checkpoints are read by the project's one loader, :func:`mtl_aug.checkpoints.load_model` (any device, eval
mode, one-line :class:`~mtl_aug.checkpoints.CheckpointError` for an unusable file).
"""

from __future__ import annotations

from pathlib import Path

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
