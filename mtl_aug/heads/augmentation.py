"""Augmentation classifier: which augmentation (chunk) did a row get? (the auxiliary task)"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mtl_aug.masking import masked_mean_std


class AugmentationClassifier(nn.Module):
    """Masked mean + std pooling over valid frames of Z -> MLP -> ``num_types`` logits."""

    def __init__(self, in_dim: int, num_types: int = 4, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * in_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_types),
        )

    def forward(self, z: Tensor, lengths: Tensor) -> Tensor:
        mean, std = masked_mean_std(z, lengths)
        return self.mlp(torch.cat([mean, std], dim=-1))

    @staticmethod
    def loss(logits: Tensor, aug_label: Tensor) -> Tensor:
        return F.cross_entropy(logits, aug_label)

