"""Log-mel front end, run on the accelerator inside the step (not in the data loader).

Frames are centred with *zero* (constant) padding, so frame ``t`` of a row only depends on the row's
samples, whatever the amount of batch padding after it: features are invariant to padding.
A row with ``L`` valid samples has ``1 + L // hop`` valid frames; the rest are set to 0.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from mtl_aug.masking import lengths_to_mask

NORMALIZE_MODES = ("utterance", "utterance_band", "none")


class PowerMelSpectrogram(torchaudio.transforms.MelSpectrogram):
    """``torchaudio.transforms.MelSpectrogram`` (same submodules, buffers, state-dict keys and attributes)
    whose power spectrum (``power=2``) is ``re² + im²`` of the STFT. torchaudio computes
    ``abs().pow(2)``, a complex magnitude (a square root per bin) then a square, which on CPU costs more
    than the STFT itself (benchmarks/bench_data.py; the front end is about 25 % faster this way)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.spectrogram.power != 2.0:
            raise ValueError(f"PowerMelSpectrogram computes the power spectrum (power=2), got power={self.spectrogram.power}")

    def forward(self, waveform: Tensor) -> Tensor:
        s = self.spectrogram
        spec = torchaudio.functional.spectrogram(waveform, s.pad, s.window, s.n_fft, s.hop_length, s.win_length, None,
                                                 s.normalized, s.center, s.pad_mode, s.onesided)
        return self.mel_scale(spec.real.square() + spec.imag.square())


class LogMelFrontEnd(nn.Module):
    """``wave [B, T]`` + ``lengths [B]`` -> ``feats [B, F, n_mels]`` + ``frame_lengths [B]``.

    ``normalize="utterance"``: per-utterance mean/variance normalisation over the VALID frames and all
    bands (one scalar pair per row: removes recording gain, keeps the long-term spectral envelope, an
    emotion cue — per-band normalisation flattens it); ``"utterance_band"``: per-utterance, per-mel-band
    (CMVN as in ASR). Either way the mean is 0, so a SpecAugment mask value of 0 means "average".
    Log compression has a floor ``top_db`` below each row's peak, so digital silence (zero-padded
    corpora such as EMODB-2s) does not dominate the statistics.
    Differentiable w.r.t. ``wave`` (adversarial attacks go through it).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_mels: int = 64,
        f_min: float = 20.0,
        f_max: float | None = 8000.0,
        normalize: str = "utterance",
        top_db: float = 80.0,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {normalize!r}")
        win_length = int(round(sample_rate * win_ms / 1000.0))
        if win_length > n_fft:
            raise ValueError(f"window ({win_length} samples) is longer than n_fft={n_fft}")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.hop_length = int(round(sample_rate * hop_ms / 1000.0))
        self.normalize = normalize
        self.floor = top_db / 10.0 * 2.302585  # dB of power -> natural-log units
        self.mel = PowerMelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=self.hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            center=True,
            pad_mode="constant",  # zero padding: no reflection of batch padding into valid frames
            power=2.0,
        )

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Number of valid frames for ``lengths`` valid samples (centred frames)."""
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats = torch.log(self.mel(wave) + 1e-6).transpose(1, 2)  # [B, F, n_mels]
        frame_lengths = self.frame_lengths(lengths).clamp(max=feats.size(1))
        mask = lengths_to_mask(frame_lengths, feats.size(1)).unsqueeze(-1).to(feats.dtype)
        peak = (feats * mask + (mask - 1.0) * 1e4).amax(dim=(1, 2), keepdim=True)
        feats = torch.maximum(feats, peak - self.floor)
        if self.normalize != "none":
            n = mask.sum(1, keepdim=True).clamp(min=1.0)
            mean = (feats * mask).sum(1, keepdim=True) / n  # [B, 1, n_mels]
            sq = (feats * feats * mask).sum(1, keepdim=True) / n
            if self.normalize == "utterance":  # pool the bands: one scalar pair per row
                mean, sq = mean.mean(2, keepdim=True), sq.mean(2, keepdim=True)
            var = (sq - mean * mean).clamp(min=0.0)
            feats = (feats - mean) / torch.sqrt(var + 1e-5)
        return feats * mask, frame_lengths
