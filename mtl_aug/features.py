"""Log-mel front end, run on the accelerator inside the step (not in the data loader), and the
speaker/corpus-level normalisation of its output.

Frames are centred with *zero* (constant) padding, so frame ``t`` of a row only depends on the row's
samples, whatever the amount of batch padding after it: features are invariant to padding.
A row with ``L`` valid samples has ``1 + L // hop`` valid frames; the rest are set to 0.

Normalisation (``LogMelFrontEnd(normalize=...)``): per utterance (the default, the model's own), per
utterance and band, none, or per *group* of rows — ``speaker`` (``"<corpus>:<speaker>"``) or ``corpus`` —
with statistics over each group's whole audio (:func:`group_stats`, :class:`GroupNormalization`). The data
layer gives every row its corpus and speaker (``batch["corpus"]``, ``batch["speaker"]``); the network turns
them into group names and normalises with the stored statistics.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchaudio
from torch import Tensor, nn

from mtl_aug.data.dataset import group_name
from mtl_aug.masking import lengths_to_mask
from mtl_aug.data.voice_encoder import VoiceEncoderTracks

GROUP_MODES = ("speaker", "corpus")  # statistics over each group's audio: GroupNormalization
NORMALIZE_MODES = ("utterance", "utterance_band", "utterance_mean", "none") + GROUP_MODES


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


class ProsodyTracks(nn.Module):
    """``wave [B, T]`` -> ``[B, F, 3]`` frame-level prosody on the log-mel frame grid (same window and hop):
    pitch, voicing strength and energy, from the real cepstrum of each frame.

    * pitch: ``log2(F0 / 150 Hz)``, F0 = the sample rate over the quefrency of the cepstral peak within
      ``[sr / f0_max, sr / f0_min]`` (a value on every frame; the network weighs it by the voicing track);
    * voicing: cepstral peak prominence (the peak over the mean of that quefrency range);
    * energy: frame log energy relative to the row's loudest valid frame (gain-invariant), floored at -8.
    Not differentiable through the peak's position (an argmax); the energy track is. Batched, on the device.
    """

    DIMS = 3

    def __init__(self, sample_rate: int, n_fft: int, win_length: int, hop_length: int,
                 f0_min: float = 70.0, f0_max: float = 500.0) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.win_length, self.hop_length = sample_rate, n_fft, win_length, hop_length
        self.q_lo = max(2, int(sample_rate / f0_max))
        self.q_hi = min(n_fft // 2 - 1, int(round(sample_rate / f0_min)))
        if self.q_hi <= self.q_lo:
            raise ValueError(f"n_fft={n_fft} is too short for a pitch floor of {f0_min} Hz at {sample_rate} Hz")
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def forward(self, wave: Tensor, frame_lengths: Tensor) -> Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()  # [B, n_fft/2+1, F]
        ceps = torch.fft.irfft(torch.log(power + 1e-8), n=self.n_fft, dim=1)[:, self.q_lo:self.q_hi + 1]
        peak, q = ceps.max(1)
        pitch = torch.log2(self.sample_rate / (q + self.q_lo).to(wave.dtype) / 150.0)
        voicing = peak - ceps.mean(1)
        log_e = torch.log(power.sum(1) + 1e-8)
        mask = lengths_to_mask(frame_lengths.clamp(max=log_e.size(1)), log_e.size(1))
        top = log_e.masked_fill(~mask, -1e4).amax(1, keepdim=True)
        energy = ((log_e - top) / 2.302585).clamp(min=-8.0)  # log10 units below the loudest frame
        tracks = torch.stack([pitch, voicing, energy], -1)
        return tracks * mask[..., None].to(tracks.dtype)


class LogMelFrontEnd(nn.Module):
    """``wave [B, T]`` + ``lengths [B]`` -> ``feats [B, F, n_mels]`` + ``frame_lengths [B]``.

    ``normalize="utterance"``: per-utterance mean/variance normalisation over the VALID frames and all
    bands (one scalar pair per row: removes recording gain, keeps the long-term spectral envelope, an
    emotion cue — per-band normalisation flattens it); ``"utterance_band"``: per-utterance, per-mel-band
    (CMVN as in ASR); ``"utterance_mean"``: the per-utterance mean alone is subtracted (a recording gain is an
    additive constant of the log-mel, so this is as gain-invariant as "utterance", but keeps the utterance's
    dynamic range, which dividing by its standard deviation removes). Each way the mean is 0, so a SpecAugment
    mask value of 0 means "average".
    ``"speaker"`` / ``"corpus"``: no normalisation here (as ``"none"``); the network normalises the output by
    the statistics of the row's group (:class:`GroupNormalization`).
    Log compression has a floor ``top_db`` below each row's peak, so digital silence (zero-padded
    corpora such as EMODB-2s) does not dominate the statistics.
    Differentiable w.r.t. ``wave`` (adversarial attacks go through it).
    ``prosody=True`` appends :class:`ProsodyTracks`' 3 columns after the (normalised) bands:
    ``[B, F, n_mels + 3]``; ``voice_tracks=True`` appends the 768 columns of a frozen pre-trained voice encoder
    (:class:`~mtl_aug.data.voice_encoder.VoiceEncoderTracks`; 16 kHz, 10 ms hop) after those; ``out_dim`` is the
    column count.
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
        prosody: bool = False,
        voice_tracks: bool = False,
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
        self.prosody = ProsodyTracks(sample_rate, n_fft, win_length, self.hop_length) if prosody else None
        self.voice = VoiceEncoderTracks(sample_rate, self.hop_length) if voice_tracks else None
        self.out_dim = (n_mels + (ProsodyTracks.DIMS if prosody else 0)
                        + (VoiceEncoderTracks.DIMS if voice_tracks else 0))

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Number of valid frames for ``lengths`` valid samples (centred frames)."""
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats = torch.log(self.mel(wave) + 1e-6).transpose(1, 2)  # [B, F, n_mels]
        frame_lengths = self.frame_lengths(lengths).clamp(max=feats.size(1))
        mask = lengths_to_mask(frame_lengths, feats.size(1)).unsqueeze(-1).to(feats.dtype)
        peak = (feats * mask + (mask - 1.0) * 1e4).amax(dim=(1, 2), keepdim=True)
        feats = torch.maximum(feats, peak - self.floor)
        if self.normalize in ("utterance", "utterance_band", "utterance_mean"):
            n = mask.sum(1, keepdim=True).clamp(min=1.0)
            pool = self.normalize != "utterance_band"  # pool the bands: one scalar (pair) per row
            mean = _masked_moment(feats, mask, n, pool)
            if self.normalize == "utterance_mean":  # the second moment is not needed
                feats = feats - mean
            else:
                var = (_masked_moment(feats * feats, mask, n, pool) - mean * mean).clamp(min=0.0)
                feats = (feats - mean) / torch.sqrt(var + 1e-5)
        feats = feats * mask
        if self.prosody is not None:
            tracks = self.prosody(wave, frame_lengths)[:, : feats.size(1)]
            feats = torch.cat([feats, tracks], -1)
        if self.voice is not None:
            feats = torch.cat([feats, self.voice(wave, lengths, frame_lengths)[:, : feats.size(1)]], -1)
        return feats, frame_lengths


def _masked_moment(x: Tensor, mask: Tensor, n: Tensor, pool: bool) -> Tensor:
    """Mean of ``x [B, F, M]`` over the valid frames: ``[B, 1, M]``, or ``[B, 1, 1]`` with the bands pooled."""
    m = (x * mask).sum(1, keepdim=True) / n
    return m.mean(2, keepdim=True) if pool else m


@torch.no_grad()
def group_stats(front_end: nn.Module, waves: Sequence[Tensor], groups: Sequence[str], batch_size: int = 16,
                eps: float = 1e-5) -> dict[str, tuple[Tensor, Tensor]]:
    """Mean and std per feature column over every valid frame of each group's utterances.

    ``front_end`` must not normalise by itself (``normalize`` "none", "speaker" or "corpus")."""
    sums: dict[str, list] = {}
    for start in range(0, len(waves), batch_size):
        chunk = waves[start:start + batch_size]
        lengths = torch.tensor([w.numel() for w in chunk])
        wave = torch.zeros(len(chunk), int(lengths.max()))
        for i, w in enumerate(chunk):
            wave[i, : w.numel()] = w
        feats, fl = front_end(wave, lengths)
        for i, g in enumerate(groups[start:start + batch_size]):
            f = feats[i, : int(fl[i])].double()
            s, s2, n = sums.get(g, (0.0, 0.0, 0))
            sums[g] = [s + f.sum(0), s2 + (f ** 2).sum(0), n + f.size(0)]
    stats = {}
    for g, (s, s2, n) in sums.items():
        mean = s / n
        var = (s2 / n - mean ** 2).clamp(min=0)
        stats[g] = (mean.float(), torch.sqrt(var + eps).float())
    return stats


class GroupNormalization(nn.Module):
    """Per-row normalisation of front-end features by the statistics of the row's group (speaker or corpus):
    ``(feats - mean[g]) / std[g]`` per column, padding kept at 0. The statistics (``stats``: group name ->
    (mean, std)) are not a buffer (one entry per group seen): checkpoints carry them under ``speaker_norm``."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in GROUP_MODES:
            raise ValueError(f"mode must be one of {GROUP_MODES}, got {mode!r}")
        self.mode = mode
        self.stats: dict[str, tuple[Tensor, Tensor]] = {}

    def names(self, corpora: Sequence[str], speakers: Sequence[str]) -> list[str]:
        return [group_name(self.mode, str(c), str(s)) for c, s in zip(corpora, speakers)]

    def fit(self, front_end: nn.Module, waves: Sequence[Tensor], groups: Sequence[str]) -> None:
        """Statistics of every group in ``groups`` over its waves (added to, or replacing, the stored ones)."""
        self.stats.update(group_stats(front_end, waves, groups))

    def forward(self, feats: Tensor, frame_lengths: Tensor, groups: Sequence[str] | None) -> Tensor:
        if groups is None or len(groups) != feats.size(0):
            raise RuntimeError(f"{self.mode}-level normalisation: {None if groups is None else len(groups)} row "
                               f"group(s) for a batch of {feats.size(0)} rows")
        missing = sorted({g for g in groups if g not in self.stats})
        if missing:
            raise KeyError(f"{self.mode}-level normalisation has no statistics for {missing[:3]}")
        mean = torch.stack([self.stats[g][0] for g in groups]).to(feats).unsqueeze(1)
        std = torch.stack([self.stats[g][1] for g in groups]).to(feats).unsqueeze(1)
        mask = (torch.arange(feats.size(1), device=feats.device).unsqueeze(0) < frame_lengths.unsqueeze(1))
        return (feats - mean) / std * mask.unsqueeze(-1).to(feats.dtype)

    def state(self) -> dict:
        """The checkpoint entry (``checkpoint["speaker_norm"]``)."""
        return {"mode": self.mode, "stats": {g: [m.tolist(), s.tolist()] for g, (m, s) in self.stats.items()}}

    def load(self, state: dict) -> None:
        self.stats = {g: (torch.tensor(m), torch.tensor(s)) for g, (m, s) in state["stats"].items()}
