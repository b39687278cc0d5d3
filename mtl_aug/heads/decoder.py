"""Reconstruction decoder: rebuild the log-mels ``[B, F, n_mels]`` from the encoder output Z."""

from __future__ import annotations

from torch import Tensor, nn

from mtl_aug.masking import lengths_to_mask, pad_to, zero_padding


class ReconstructionDecoder(nn.Module):
    """Per-frame MLP and a temporal conv at the encoder's frame rate, then a linear "transposed
    convolution" that emits ``r = time_upsample`` (= the encoder's ``time_reduction``) input frames per
    encoder frame (encoder frame i covers input frames ``[i*r, (i+1)*r)``); trimmed/padded to ``n_frames``.
    Working at the encoder rate keeps the decoder cheap: the auxiliary task must not dominate the step."""

    def __init__(self, in_dim: int, n_mels: int = 64, hidden: int = 256, time_upsample: int = 2) -> None:
        super().__init__()
        self.time_upsample = time_upsample
        self.n_mels = n_mels
        self.inp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.smooth = nn.Sequential(nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU())
        self.out = nn.Linear(hidden, n_mels * time_upsample)

    def forward(self, z: Tensor, n_frames: int, z_lengths: Tensor | None = None) -> Tensor:
        h = self.inp(z)
        if z_lengths is not None:  # keep padding at 0 so the smoothing conv sees the same edge for any padding
            h = zero_padding(h, z_lengths)
        h = self.smooth(h.transpose(1, 2)).transpose(1, 2)
        b, t, _ = h.shape
        frames = self.out(h).reshape(b, t * self.time_upsample, self.n_mels)  # [B, T'*r, n_mels]
        return pad_to(frames, n_frames)

    @staticmethod
    def loss(recon: Tensor, target: Tensor, frame_lengths: Tensor) -> Tensor:
        """MSE over valid frames only (mean over valid frames x mel bands)."""
        mask = lengths_to_mask(frame_lengths, target.size(1)).unsqueeze(-1).to(recon.dtype)
        n = (mask.sum() * target.size(2)).clamp(min=1.0)
        return (((recon - target) ** 2) * mask).sum() / n
