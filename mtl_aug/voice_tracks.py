"""Frame-level tracks from a pre-trained speaker encoder, frozen, beside the log-mels.

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
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt" if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise FileNotFoundError("voice_tracks needs the pre-trained voice encoder of the 'resemblyzer' package "
                                f"({'not installed' if path is None else f'{path} is missing'}): "
                                "pip install --no-deps resemblyzer==0.1.4 (make install does)")
    return path


class VoiceEncoderTracks(nn.Module):
    """``wave [B, T]`` + ``frame_lengths [B]`` -> ``[B, F, 768]``, zero on padded frames; see the module doc."""

    DIMS = LAYERS * HIDDEN

    def __init__(self, sample_rate: int, hop_length: int, weights: str | None = None) -> None:
        super().__init__()
        if sample_rate != SAMPLE_RATE or hop_length != HOP:
            raise ValueError(f"voice_tracks needs {SAMPLE_RATE} Hz audio and a 10 ms hop (the voice encoder's), "
                             f"got {sample_rate} Hz and a hop of {hop_length} samples")
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=400, win_length=400, hop_length=HOP, n_mels=N_MELS, center=True,
            pad_mode="constant", power=2.0, norm="slaney", mel_scale="slaney")  # librosa's defaults, as trained
        self.lstm = nn.ModuleList(nn.LSTM(N_MELS if i == 0 else HIDDEN, HIDDEN, batch_first=True) for i in range(LAYERS))
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
