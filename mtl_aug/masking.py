"""Length and mask helpers shared by the front end, augmentation, encoder and heads.

Convention everywhere: a batch of sequences is ``[B, T, ...]`` plus ``lengths [B]`` (valid steps);
positions ``t >= lengths[b]`` are padding and are kept at exactly zero.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Bool mask ``[B, max_len]``, True on valid steps."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def zero_padding(x: Tensor, lengths: Tensor) -> Tensor:
    """Zero the padded steps of ``x [B, T, ...]`` (out of place, keeps autograd)."""
    mask = lengths_to_mask(lengths, x.size(1))
    mask = mask.view(mask.shape + (1,) * (x.dim() - 2))
    return x * mask.to(x.dtype)


def pooled_lengths(lengths: Tensor, factor: int) -> Tensor:
    """Valid steps after pooling with kernel = stride = ``factor`` and ``ceil_mode=True``.

    A pooled step is valid if its window touches at least one valid input step.
    """
    return torch.div(lengths + factor - 1, factor, rounding_mode="floor")


def pad_to(x: Tensor, length: int) -> Tensor:
    """Zero-pad (or trim) dim 1 of ``x [B, T, ...]`` to ``length``."""
    t = x.size(1)
    if t >= length:
        return x[:, :length]
    pad = x.new_zeros((x.size(0), length - t) + tuple(x.shape[2:]))
    return torch.cat([x, pad], dim=1)


def masked_mean_std(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Mean and std over the valid steps of ``x [B, T, D]`` -> two ``[B, D]`` tensors."""
    mask = lengths_to_mask(lengths, x.size(1)).unsqueeze(-1).to(x.dtype)
    n = mask.sum(1).clamp(min=1.0)
    mean = (x * mask).sum(1) / n
    var = (((x - mean.unsqueeze(1)) * mask) ** 2).sum(1) / n
    return mean, torch.sqrt(var + eps)


def multi_crop(wave: Tensor, lengths: Tensor, crop: int, k: int) -> tuple[Tensor, Tensor]:
    """``k`` evenly spaced crops of ``crop`` samples from each row's valid part: ``[B*k, crop]`` + lengths,
    row-major (row ``b``'s crops are ``b*k ... b*k+k-1``). A row shorter than ``crop`` gives itself ``k``
    times. Differentiable w.r.t. ``wave`` (a gather)."""
    if crop < 1 or k < 1:
        raise ValueError(f"crop and k must be >= 1, got crop={crop}, k={k}")
    b = wave.size(0)
    span = (lengths - crop).clamp(min=0).to(torch.float64)  # room for the crop's start
    frac = torch.linspace(0.0, 1.0, k, dtype=torch.float64, device=wave.device) if k > 1 else \
        torch.full((1,), 0.5, dtype=torch.float64, device=wave.device)
    starts = torch.round(span[:, None] * frac[None, :]).long()  # [B, k]
    crop_lengths = lengths.clamp(max=crop)[:, None].expand(b, k)
    idx = starts[..., None] + torch.arange(crop, device=wave.device)  # [B, k, crop]
    valid = torch.arange(crop, device=wave.device) < crop_lengths[..., None]
    rows = torch.arange(b, device=wave.device)[:, None, None]
    out = wave[rows, idx.clamp(max=wave.size(1) - 1)] * valid.to(wave.dtype)
    return out.reshape(b * k, crop), crop_lengths.reshape(b * k)
