"""Center loss (Wen et al., ECCV 2016): pull each embedding towards its class centre.

The centres are a BUFFER, not a parameter: the optimizer never sees them. In training mode each
call first computes the loss against the current centres, then moves the centres with the paper's
rule  c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)  (x detached). Under DDP the
per-class sums are all-reduced so every rank keeps identical centres.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


class CenterLoss(nn.Module):
    def __init__(self, num_classes: int, feat_dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))

    def forward(self, x: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
        """Mean over selected rows of ½‖x − c_y‖². ``weight [B]`` (0/1) selects rows; rows with
        weight 0 (e.g. unlabelled, label -1) get exactly zero gradient and don't move the centres."""
        w = torch.ones_like(labels, dtype=x.dtype) if weight is None else weight.to(x.dtype)
        y = labels.clamp(min=0)
        diff = x - self.centers[y]
        loss = (0.5 * (diff**2).sum(-1) * w).sum() / w.sum().clamp(min=1.0)
        if self.training:
            self._update(x.detach(), y, w.detach())
        return loss

    @torch.no_grad()
    def _update(self, x: Tensor, y: Tensor, w: Tensor) -> None:
        onehot = torch.nn.functional.one_hot(y, self.centers.size(0)).to(x.dtype) * w.unsqueeze(1)  # [B, C]
        sum_x = onehot.t() @ x  # [C, D]
        count = onehot.sum(0)  # [C]
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sum_x)
            dist.all_reduce(count)
        delta = (count.unsqueeze(1) * self.centers - sum_x) / (1.0 + count.unsqueeze(1))
        self.centers.sub_(self.alpha * delta)
