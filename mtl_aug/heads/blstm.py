"""Bidirectional LSTM over padded batches without packing.

The forward direction is causal, so padding after a row's end cannot reach its valid outputs; the
backward direction runs on each row reversed *within its valid length* (a gather), so it starts at the
row's last real frame. Outputs at valid frames are therefore invariant to extra padding, like packed
sequences, but run on the fast dense LSTM kernels (packed variable-length batches fall back to a
per-step loop on CPU) and export to TorchScript/ONNX as plain gathers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def reverse_within_lengths(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[i]`` steps of ``x [B, T, D]``; padding stays in place."""
    t = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    idx = lengths.unsqueeze(1) - 1 - t
    idx = torch.where(idx >= 0, idx, t).unsqueeze(-1).expand(-1, -1, x.size(2))
    return torch.gather(x, 1, idx)


class MaskedBLSTM(nn.Module):
    """``forward(x [B, T, D], lengths [B]) -> h [B, T, 2*hidden]`` (padding frames are zero)."""

    def __init__(self, in_dim: int, hidden: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.fwd = nn.ModuleList()
        self.bwd = nn.ModuleList()
        for layer in range(num_layers):
            d = in_dim if layer == 0 else 2 * hidden
            self.fwd.append(nn.LSTM(d, hidden, batch_first=True))
            self.bwd.append(nn.LSTM(d, hidden, batch_first=True))
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        valid = (torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        h = x
        for i, (f, b) in enumerate(zip(self.fwd, self.bwd)):
            if i > 0:
                h = self.dropout(h)
            forward = f(h)[0]
            backward = reverse_within_lengths(b(reverse_within_lengths(h, lengths))[0], lengths)
            h = torch.cat([forward, backward], dim=-1) * valid
        return h
