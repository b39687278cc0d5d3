"""A frozen pre-trained speaker encoder: its frame-level tracks (beside the log-mels) and utterance statistics (for the
emotion head and the ``voice_svm`` baseline).

The encoder is Resemblyzer's GE2E voice encoder (Wan et al. 2018: 3 LSTM layers of 256 units over 40-band
power mels, trained to tell speakers apart on several thousand speakers; Apache-2.0, PyPI package
``resemblyzer``, whose wheel carries the weights, so nothing is fetched at run time). Its hidden states
describe voice quality and its dynamics, which a network trained from scratch on a few hundred emotional
utterances cannot learn: on the EMODB dev speakers a linear SVM on their utterance statistics alone scored
well above the ComParE functionals (docs/training.md).

:class:`VoiceEncoderTracks` maps ``wave [B, T]`` at 16 kHz to ``[B, F, 768]`` (the three layers' outputs, on
the log-mel frame grid: 25 ms windows, 10 ms hop, centred with zero padding), frozen: its weights never
train and it runs without autograd unless the wave itself needs gradients (adversarial attacks). Each row is
first scaled to a peak of 1 over its valid samples (so the tracks do not depend on recording gain), then, as
Resemblyzer prepares its input, raised to -30 dBFS RMS if it is quieter (never lowered): what is left of the
level is the utterance's peak-to-RMS ratio, an arousal cue. Scaling every row to -30 dBFS instead removes it
and cost 8.5 UAR points in that SVM probe (87.5 -> 79.0 on the dev speakers). The LSTM is causal, so a row's
valid frames do not depend on the batch's padding after it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import Tensor, nn

from mtl_aug.masking import lengths_to_mask

SAMPLE_RATE = 16000  # the encoder's, and the log-mel grid's hop below must be 10 ms
HOP = 160
LAYERS, HIDDEN, N_MELS = 3, 256, 40
TARGET_DBFS = -30.0


def resemblyzer_weights() -> Path:
    """The voice encoder's weights file inside the installed ``resemblyzer`` package (located without importing
    the package, whose import needs ``webrtcvad``, which the tracks do not use)."""
    spec = importlib.util.find_spec("resemblyzer")
    where = spec.submodule_search_locations if spec else None
    path = Path(next(iter(where))) / "pretrained.pt" if where else None
    if path is None or not path.is_file():
        raise FileNotFoundError("the pre-trained voice encoder (voice_tracks, voice statistics) needs the "
                                f"'resemblyzer' package ({'not installed' if path is None else f'{path} is missing'}): "
                                "pip install --no-deps resemblyzer==0.1.4 (make install does)")
    return path


class PackageWeights(nn.Module):
    """A frozen part whose weights always come from the installed package's file: they are left out of the
    model's state dict (checkpoints stay small; 17 MB each otherwise) and filled back in when a state dict is
    loaded, so checkpoints written with and without them both load."""

    def __init__(self) -> None:
        super().__init__()
        self.register_state_dict_post_hook(PackageWeights._drop)
        self.register_load_state_dict_pre_hook(PackageWeights._fill)

    @staticmethod
    def _drop(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
        for k in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[k]

    @staticmethod
    def _fill(module: nn.Module, state_dict: dict, prefix: str, *_) -> None:
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            state_dict.setdefault(prefix + name, t.detach())


class VoiceEncoderTracks(PackageWeights):
    """``wave [B, T]`` + ``frame_lengths [B]`` -> ``[B, F, 768]``, zero on padded frames; see the module doc."""

    DIMS = LAYERS * HIDDEN

    def __init__(self, sample_rate: int, hop_length: int, weights: str | None = None) -> None:
        super().__init__()
        if sample_rate != SAMPLE_RATE or hop_length != HOP:
            raise ValueError(f"the voice encoder needs {SAMPLE_RATE} Hz audio and a 10 ms hop, "
                             f"got {sample_rate} Hz and a hop of {hop_length} samples")
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=400, win_length=400, hop_length=HOP, n_mels=N_MELS, center=True,
            pad_mode="constant", power=2.0, norm="slaney", mel_scale="slaney")  # librosa's defaults, as trained
        self.lstm = nn.ModuleList(nn.LSTM(N_MELS if i == 0 else HIDDEN, HIDDEN, batch_first=True)
                                  for i in range(LAYERS))
        state = torch.load(weights or resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
        for i, layer in enumerate(self.lstm):
            layer.load_state_dict({k.replace(f"_l{i}", "_l0"): state[f"lstm.{k}"]
                                   for k in (f"weight_ih_l{i}", f"weight_hh_l{i}", f"bias_ih_l{i}", f"bias_hh_l{i}")})
        self.requires_grad_(False)

    def forward(self, wave: Tensor, lengths: Tensor, frame_lengths: Tensor) -> Tensor:
        with torch.set_grad_enabled(wave.requires_grad):
            valid = lengths_to_mask(lengths, wave.size(1)).to(wave.dtype)
            wave = wave * valid / (wave.abs() * valid).amax(1, keepdim=True).clamp(min=1e-6)
            rms = (wave.square().sum(1) / lengths.clamp(min=1)).sqrt().clamp(min=1e-6)
            gain = (10.0 ** (TARGET_DBFS / 20.0) / rms).clamp(min=1.0)
            x = self.mel(wave * gain[:, None]).transpose(1, 2)  # [B, F, 40]
            outs = []
            for layer in self.lstm:
                x, _ = layer(x)
                outs.append(x)
            tracks = torch.cat(outs, -1)
            mask = lengths_to_mask(frame_lengths.clamp(max=tracks.size(1)), tracks.size(1))
            return tracks * mask[..., None].to(tracks.dtype)


class VoiceStatistics(PackageWeights):
    """``wave [B, T]`` + ``lengths [B]`` -> ``[B, 1792]``: an utterance-level vector from the voice encoder, frozen: its
    own utterance embedding (the last valid frame's state through its linear layer, ReLU, L2-normalised; 256) and
    the mean and standard deviation over valid frames of each LSTM layer's outputs (3 layers x (mean, std) x 256).
    Batched tensor operations only, so the network computes it in its graph (``predict``, ``export``, attacks
    differentiate through it); :class:`VoiceStatsExtractor` wraps it for the per-file cache."""

    DIMS = HIDDEN + LAYERS * 2 * HIDDEN

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        path = weights or resemblyzer_weights()
        self.tracks = VoiceEncoderTracks(SAMPLE_RATE, HOP, str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        self.linear = nn.Linear(HIDDEN, HIDDEN)
        self.linear.load_state_dict({"weight": state["linear.weight"], "bias": state["linear.bias"]})
        self.requires_grad_(False)

    def forward(self, wave: Tensor, lengths: Tensor) -> Tensor:
        with torch.set_grad_enabled(wave.requires_grad):
            frame_lengths = torch.div(lengths, HOP, rounding_mode="floor") + 1
            frames = self.tracks(wave, lengths, frame_lengths)  # [B, F, 768], zero on padding
            b, f, d = frames.shape
            frame_lengths = frame_lengths.clamp(max=f)
            mask = lengths_to_mask(frame_lengths, f)[..., None].to(frames.dtype)
            n = frame_lengths[:, None].to(frames.dtype)
            mean = frames.sum(1) / n
            std = torch.sqrt((((frames - mean[:, None]) * mask).square().sum(1) / n) + 1e-12)  # eps: finite gradient
            last = frames.gather(1, (frame_lengths - 1)[:, None, None].expand(b, 1, d))[:, 0, -HIDDEN:]
            emb = torch.relu(self.linear(last))
            emb = emb / emb.norm(dim=1, keepdim=True).clamp(min=1e-12)
            stats = torch.stack([mean.view(b, LAYERS, HIDDEN), std.view(b, LAYERS, HIDDEN)], 2)  # [B, layers, 2, 256]
            return torch.cat([emb, stats.reshape(b, -1)], 1)


class VoiceStatsExtractor:
    """``extractor(wave, sample_rate) -> float32 [1792]``: :class:`VoiceStatistics` of one utterance, with the
    interface of the openSMILE extractors (:mod:`mtl_aug.data.functionals`, feature set ``voice``). CPU."""

    feature_set = "voice"
    version = "resemblyzer0.1.4"

    def __init__(self, weights: str | None = None) -> None:
        self.stats = VoiceStatistics(weights).eval()
        self.names = [f"embedding_{i}" for i in range(HIDDEN)] + [
            f"layer{k + 1}_{stat}_{i}" for k in range(LAYERS) for stat in ("mean", "std") for i in range(HIDDEN)]

    @property
    def cache_tag(self) -> str:
        return f"voice-{self.version}"

    @torch.no_grad()
    def __call__(self, wave: np.ndarray, sample_rate: int, what: str = "utterance") -> np.ndarray:
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        if wave.ndim != 1 or wave.numel() == 0:
            raise ValueError(f"{what}: expected a non-empty mono waveform, got shape {tuple(wave.shape)}")
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"{what}: the voice encoder needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        return self.stats(wave[None], torch.tensor([wave.numel()]))[0].numpy().astype(np.float32)
