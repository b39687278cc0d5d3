"""Reconstruction decoder: rebuild the log-mels ``[B, F, n_mels]`` from the encoder output Z."""

from __future__ import annotations

from torch import Tensor, nn

from mtl_aug.masking import lengths_to_mask, pad_to, zero_padding


class ReconstructionDecoder(nn.Module):
    """Per-frame MLP, time upsampling by repetition (encoder frame i covers input frames
    ``[i*r, (i+1)*r)`` for ``r = time_upsample`` = the encoder's ``time_reduction``), a temporal conv
    to smooth the repeated frames, and a projection to ``n_mels``; trimmed/padded to ``n_frames``."""

    def __init__(self, in_dim: int, n_mels: int = 64, hidden: int = 256, time_upsample: int = 2) -> None:
        super().__init__()
        self.time_upsample = time_upsample
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.smooth = nn.Sequential(nn.Conv1d(hidden, hidden, 5, padding=2), nn.ReLU())
        self.out = nn.Linear(hidden, n_mels)

    def forward(self, z: Tensor, n_frames: int, z_lengths: Tensor | None = None) -> Tensor:
        h = self.inp(z)
        if z_lengths is not None:  # keep padding at 0 so the smoothing conv sees the same edge for any padding
            h = zero_padding(h, z_lengths)
        h = h.repeat_interleave(self.time_upsample, dim=1)  # [B, T'*r, H]
        h = self.smooth(h.transpose(1, 2)).transpose(1, 2)
        return pad_to(self.out(h), n_frames)

    @staticmethod
    def loss(recon: Tensor, target: Tensor, frame_lengths: Tensor) -> Tensor:
        """MSE over valid frames only (mean over valid frames x mel bands)."""
        mask = lengths_to_mask(frame_lengths, target.size(1)).unsqueeze(-1).to(recon.dtype)
        n = (mask.sum() * target.size(2)).clamp(min=1.0)
        return (((recon - target) ** 2) * mask).sum() / n
