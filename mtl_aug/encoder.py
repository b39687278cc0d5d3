"""Shared 2-D convolutional encoder over log-mels, masking-aware.

Padded frames are zeroed after every block, and the normalisation never mixes padding into its
statistics, so a row's output does not depend on how much padding the batch added after it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mtl_aug.masking import lengths_to_mask, pooled_lengths, zero_padding

NORMS = ("group", "layer", "batch")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at each (time, freq) bin: no statistics across rows or time, so rows
    are independent (unlabelled rows cannot influence labelled ones) in train and eval alike."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # x [B, C, T, F], mask [B, T]
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MaskedGroupNorm(nn.Module):
    """GroupNorm whose statistics are taken per row over (channels of the group, VALID frames, freq).

    Rows stay independent (unlabelled rows cannot leak into labelled ones through statistics) and,
    unlike a LayerNorm over channels at each bin, the local energy contrast survives: with one input
    channel, a per-bin channel norm divides every 3x3 patch by its own scale and the network loses
    loudness and contrast cues (measured: STL on EMODB stayed at chance for 6 epochs).
    """

    def __init__(self, channels: int, groups: int = 4, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups = groups if channels % groups == 0 else 1
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # x [B, C, T, F], mask [B, T]
        # One masked sum and one sum of squares per (row, group), folded with the affine weights into a
        # per-(row, channel) scale and shift: two elementwise passes over x instead of about eight, and
        # less autograd state (MTL-AUG step x1.18, STL x1.20 at 32 x 3 s; bench_history.md). Same
        # statistics as the two-pass form (inputs are normalised log-mels, so E[x²] - mean² is stable).
        b, c, t, f = x.shape
        per = c // self.groups
        m = mask[:, None, :, None].to(x.dtype)
        xg = (x * m).reshape(b, self.groups, -1)
        n = (m.sum(dim=(1, 2, 3)) * per * f).clamp(min=1.0).unsqueeze(1)  # [B, 1] valid values per group
        mean = xg.sum(-1) / n
        var = (xg.square().sum(-1) / n - mean * mean).clamp(min=0.0)
        scale = torch.rsqrt(var + self.eps).repeat_interleave(per, 1) * self.weight  # [B, C]
        shift = self.bias - mean.repeat_interleave(per, 1) * scale
        return x * scale[:, :, None, None] + shift[:, :, None, None]


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics use valid frames only (padding excluded).
    Eval mode uses the running statistics like ``nn.BatchNorm2d``."""

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        if not self.training:
            return super().forward(x)
        m = mask[:, None, :, None].to(x.dtype)  # [B, 1, T, 1]
        n = (m.sum() * x.size(3)).clamp(min=1.0)
        mean = (x * m).sum(dim=(0, 2, 3)) / n
        var = (((x - mean.view(1, -1, 1, 1)) * m) ** 2).sum(dim=(0, 2, 3)) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            mom = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean.detach(), mom)
            self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1.0), mom)
        y = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


NORM_LAYERS = {"group": MaskedGroupNorm, "layer": ChannelLayerNorm, "batch": MaskedBatchNorm2d}


class ConvBlock(nn.Module):
    """conv -> masked norm -> ReLU -> zero padding -> max-pool (ceil mode) -> zero padding -> dropout."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, time_pool: int, freq_pool: int, norm: str, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)
        self.norm = NORM_LAYERS[norm](c_out)
        self.pool = nn.MaxPool2d((time_pool, freq_pool), ceil_mode=True)
        self.time_pool = time_pool
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:  # x [B, C, T, F]
        mask = lengths_to_mask(lengths, x.size(2))
        x = F.relu(self.norm(self.conv(x), mask))
        # padding must be 0 before pooling: after ReLU valid values are >= 0, so a window that
        # straddles the end of a row pools to the max over its valid part
        x = x * mask[:, None, :, None].to(x.dtype)
        x = self.pool(x)
        lengths = pooled_lengths(lengths, self.time_pool)
        x = x * lengths_to_mask(lengths, x.size(2))[:, None, :, None].to(x.dtype)
        return self.dropout(x), lengths


def with_deltas(feats: Tensor, frame_lengths: Tensor, win_length: int = 5) -> Tensor:
    """``feats [B, F, M]`` -> ``[B, 3, F, M]``: the features, their Δ and ΔΔ over time (regression over
    ``win_length`` frames, torchaudio's ``compute_deltas``), zero on padded frames. Computed here, from the
    encoder's input, so that SpecAugment/mixup (applied to the log-mels) reach the deltas too."""
    b, t, m = feats.shape
    mask = lengths_to_mask(frame_lengths, t)[:, :, None].to(feats.dtype)
    # each row's last valid frame repeated over its padding: the row's edge is replicated, as compute_deltas
    # does at the tensor's edge, so a row's deltas do not depend on the batch's padding
    last = (frame_lengths.clamp(min=1) - 1)[:, None]
    idx = torch.minimum(torch.arange(t, device=feats.device)[None, :], last)[:, :, None].expand(b, t, m)

    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3.0

    def delta(x: Tensor) -> Tensor:
        # torchaudio's compute_deltas (sum_k k * (x[t+k] - x[t-k]) / denom, edges replicated) written with
        # shifted slices: its conv1d kernel is built from the input's shape, which the ONNX exporter refuses
        x = F.pad(torch.gather(x, 1, idx).transpose(1, 2), (n, n), mode="replicate").transpose(1, 2)
        d = sum(k * (x[:, n + k:n + k + t] - x[:, n - k:n - k + t]) for k in range(1, n + 1)) / denom
        return d * mask

    d1 = delta(feats)
    d2 = delta(d1)
    return torch.stack([feats, d1, d2], 1)


class ConvEncoder(nn.Module):
    """``feats [B, F, n_mels]`` -> ``Z [B, F', out_dim]`` with ``F' = ceil(F / time_reduction)``.

    ``out_dim=None`` keeps the flattened ``channels[-1] * pooled_mels`` features; an int adds a
    linear projection to that size. ``deltas=True`` feeds the first block 3 channels (features, Δ, ΔΔ).
    ``extra_dims`` > 0: the last ``extra_dims`` columns of ``feats`` are frame-level tracks (e.g. prosody,
    :class:`~mtl_aug.features.ProsodyTracks`), not bands: they bypass the convolutions, are averaged over
    each output frame's ``time_reduction`` input frames and join the flattened conv features.
    """

    def __init__(
        self,
        n_mels: int = 64,
        extra_dims: int = 0,
        channels: list[int] = [16, 32, 64],
        kernel_size: int = 3,
        time_pool: list[int] = [2, 2, 1],
        freq_pool: list[int] = [2, 2, 2],
        dropout: float = 0.1,
        norm: str = "group",
        out_dim: int | None = 256,
        deltas: bool = False,
    ) -> None:
        """``n_mels`` and ``extra_dims`` come first: the model injects them from its front end (in a config the
        encoder is ``Callable[[int, int], ConvEncoder]``, given by class path with the other arguments)."""
        super().__init__()
        if extra_dims < 0:
            raise ValueError(f"extra_dims must be >= 0, got {extra_dims}")
        self.n_mels, self.extra_dims = n_mels, extra_dims
        if not (len(channels) == len(time_pool) == len(freq_pool)):
            raise ValueError("channels, time_pool and freq_pool need one entry per block")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.deltas = deltas
        blocks, c_in, mels = [], 3 if deltas else 1, n_mels
        for c, tp, fp in zip(channels, time_pool, freq_pool):
            blocks.append(ConvBlock(c_in, c, kernel_size, tp, fp, norm, dropout))
            c_in, mels = c, -(-mels // fp)  # ceil: pooling runs in ceil mode
        self.blocks = nn.ModuleList(blocks)
        flat = c_in * mels + extra_dims
        self.proj = nn.Linear(flat, out_dim) if out_dim is not None else nn.Identity()
        self.out_dim = out_dim if out_dim is not None else flat
        self.time_reduction = 1
        for tp in time_pool:
            self.time_reduction *= tp

    def forward(self, feats: Tensor, frame_lengths: Tensor) -> tuple[Tensor, Tensor]:
        extra = None
        if self.extra_dims:
            feats, extra = feats[..., : self.n_mels], feats[..., self.n_mels:]
        x, lengths = feats.unsqueeze(1), frame_lengths
        if self.deltas:
            x = with_deltas(feats, frame_lengths)
        for block in self.blocks:
            x, lengths = block(x, lengths)
        b, c, t, m = x.shape
        flat = x.permute(0, 2, 1, 3).reshape(b, t, c * m)
        if extra is not None:
            flat = torch.cat([flat, self._pool_tracks(extra, frame_lengths, t)], -1)
        z = self.proj(flat)
        return zero_padding(z, lengths), lengths

    def _pool_tracks(self, extra: Tensor, frame_lengths: Tensor, t: int) -> Tensor:
        """``[B, F, extra_dims]`` -> ``[B, t, extra_dims]``: mean over each output frame's valid input frames."""
        r = self.time_reduction
        mask = lengths_to_mask(frame_lengths, extra.size(1)).to(extra.dtype)[..., None]
        pad = t * r - extra.size(1)
        summed = F.pad(extra * mask, (0, 0, 0, pad)).reshape(extra.size(0), t, r, -1).sum(2)
        count = F.pad(mask, (0, 0, 0, pad)).reshape(extra.size(0), t, r, 1).sum(2)
        return summed / count.clamp(min=1.0)
