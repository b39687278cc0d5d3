"""Emotion head: BLSTM -> attention pooling -> embedding (center loss) -> logits."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mtl_aug.heads.blstm import MaskedBLSTM
from mtl_aug.heads.center_loss import CenterLoss
from mtl_aug.masking import lengths_to_mask


class AttentionPooling(nn.Module):
    """u = Σ_i α_i h_i, α = softmax(vᵀ tanh(W h_i)) over VALID frames (padding scored −inf)."""

    def __init__(self, in_dim: int, attn_dim: int = 128) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, h: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)  # [B, T]
        scores = scores.masked_fill(~lengths_to_mask(lengths, h.size(1)), float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        return torch.bmm(alpha.unsqueeze(1), h).squeeze(1), alpha


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """Inverse-frequency CE weights ``n / (C * n_c)`` (sklearn's "balanced"; 1.0 for a uniform set).

    Weighting the CE this way makes its optimum the UAR-like balanced error rather than accuracy.
    A class absent from ``labels`` gets weight 0 (it contributes no rows anyway)."""
    counts = [0] * num_classes
    for y in labels:
        if 0 <= y < num_classes:
            counts[y] += 1
    n = sum(counts)
    if n == 0:
        raise ValueError("balanced class weights need at least one labelled row")
    return [n / (num_classes * c) if c else 0.0 for c in counts]


class EmotionClassifier(nn.Module):
    """``forward(Z [B, T, in_dim], lengths [B]) -> (logits [B, C], embedding [B, E], attn [B, T])``.

    ``side_dim`` > 0: an utterance-level side vector ``side [B, side_dim]`` (e.g. standardised openSMILE
    functionals) goes through dropout + a ``side_hidden`` ReLU layer and joins the attention-pooled BLSTM
    output before the embedding layer (feature-level fusion).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int = 4,
        lstm_hidden: int = 128,
        lstm_layers: int = 1,
        attn_dim: int = 128,
        dropout: float = 0.3,
        embed_dim: int = 128,
        class_weights: list[float] | None = None,
        center_alpha: float = 0.5,
        label_smoothing: float = 0.0,
        side_dim: int = 0,
        side_hidden: int = 64,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.lstm = MaskedBLSTM(in_dim, lstm_hidden, lstm_layers, dropout if lstm_layers > 1 else 0.0)
        self.attention = AttentionPooling(2 * lstm_hidden, attn_dim)
        self.side_dim = side_dim
        self.side = nn.Sequential(nn.Dropout(dropout), nn.Linear(side_dim, side_hidden), nn.ReLU()) if side_dim else None
        self.embed = nn.Sequential(nn.Linear(2 * lstm_hidden + (side_hidden if side_dim else 0), embed_dim), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_classes)
        self.center_loss = CenterLoss(num_classes, embed_dim, alpha=center_alpha)
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"class_weights needs {num_classes} entries, got {len(class_weights)}")
        weights = torch.ones(num_classes) if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights)

    def forward(self, z: Tensor, lengths: Tensor, side: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        lengths = lengths.clamp(min=1)
        h = self.lstm(z, lengths)
        u, alpha = self.attention(h, lengths)
        if self.side is not None:
            if side is None or side.shape != (z.size(0), self.side_dim):
                raise ValueError(f"this emotion head fuses a side vector of {self.side_dim} features per row; got "
                                 f"{None if side is None else tuple(side.shape)}")
            u = torch.cat([u, self.side(side)], -1)
        embedding = self.embed(u)
        return self.classifier(self.dropout(embedding)), embedding, alpha

    def loss(
        self,
        logits: Tensor,
        embedding: Tensor,
        targets_soft: Tensor,
        labels: Tensor,
        mixed: Tensor,
        center_lambda: float,
    ) -> dict[str, Tensor]:
        """Soft-target CE over labelled rows (target sum > 0; the others contribute exactly 0 and get
        zero gradient), class-weighted mean like ``F.cross_entropy(weight=...)``; center loss on
        labelled, un-mixed rows (``labels >= 0`` and not ``mixed``). ``label_smoothing`` moves that share of
        each labelled row's target mass to the uniform distribution (the class weight stays the row's own)."""
        row_w = targets_soft @ self.class_weights  # 0 for unlabelled rows
        if self.label_smoothing > 0:
            mass = targets_soft.sum(-1, keepdim=True)  # 1 for labelled rows, 0 for the others
            targets_soft = (1 - self.label_smoothing) * targets_soft + self.label_smoothing * mass / logits.size(-1)
        nll = -(targets_soft * F.log_softmax(logits, dim=-1)).sum(-1)
        ce = (row_w * nll).sum() / row_w.sum().clamp(min=1e-12)
        center_rows = (labels >= 0) & ~mixed & (targets_soft.sum(-1) > 0)
        if center_lambda > 0:
            center = self.center_loss(embedding, labels, center_rows)
        else:
            center = logits.new_zeros(())
        return {"ce": ce, "center": center, "total": ce + center_lambda * center}
