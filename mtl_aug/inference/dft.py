"""An exportable mel spectrogram for the legacy ONNX exporter (which does not take the complex STFT): the STFT
as a strided ``conv1d`` with a windowed DFT basis, followed by the model's own mel filterbank.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class DFTPowerSpectrogram(nn.Module):
    """``torch.stft(...).abs().pow(power)`` as a strided ``conv1d`` with a windowed DFT kernel.

    Same framing as torchaudio's ``Spectrogram`` with ``center=True, pad_mode="constant"``: the
    signal is zero-padded by ``n_fft // 2`` on both sides, a ``win_length`` window is centred inside
    the ``n_fft`` frame. Output ``[B, n_fft // 2 + 1, frames]``.
    """

    def __init__(self, n_fft: int, hop_length: int, window: Tensor, power: float = 2.0, center: bool = True) -> None:
        super().__init__()
        win_length = window.numel()
        left = (n_fft - win_length) // 2
        full = torch.zeros(n_fft, dtype=torch.float64)
        full[left : left + win_length] = window.to(torch.float64)
        n_bins = n_fft // 2 + 1
        k = torch.arange(n_bins, dtype=torch.float64).unsqueeze(1)
        n = torch.arange(n_fft, dtype=torch.float64).unsqueeze(0)
        angle = 2.0 * math.pi * k * n / n_fft
        basis = torch.cat([torch.cos(angle) * full, -torch.sin(angle) * full], dim=0)  # [2*bins, n_fft]
        self.register_buffer("basis", basis.to(torch.float32).unsqueeze(1))  # [2*bins, 1, n_fft]
        self.n_fft, self.hop_length, self.n_bins = n_fft, hop_length, n_bins
        self.power, self.center = power, center

    def forward(self, wave: Tensor) -> Tensor:  # [B, T]
        x = wave.unsqueeze(1)
        if self.center:
            x = nn.functional.pad(x, (self.n_fft // 2, self.n_fft // 2))
        spec = nn.functional.conv1d(x, self.basis, stride=self.hop_length)  # [B, 2*bins, frames]
        re, im = spec[:, : self.n_bins], spec[:, self.n_bins :]
        mag2 = re * re + im * im
        if self.power == 2.0:
            return mag2
        return mag2.clamp(min=0).pow(self.power / 2.0)


class DFTMelSpectrogram(nn.Module):
    """Drop-in for ``torchaudio.transforms.MelSpectrogram`` (``wave [B, T] -> [B, n_mels, frames]``)."""

    def __init__(self, mel: nn.Module) -> None:
        super().__init__()
        spec = mel.spectrogram
        if spec.pad or spec.normalized or not spec.onesided or spec.power is None:
            raise ValueError("DFT front end supports pad=0, normalized=False, onesided=True, power!=None only")
        if spec.center and spec.pad_mode != "constant":
            raise ValueError(f"DFT front end needs pad_mode='constant' (zero padding), got {spec.pad_mode!r}")
        self.spectrogram = DFTPowerSpectrogram(spec.n_fft, spec.hop_length, spec.window, float(spec.power), spec.center)
        self.mel_scale = mel.mel_scale

    def forward(self, wave: Tensor) -> Tensor:
        return self.mel_scale(self.spectrogram(wave))
