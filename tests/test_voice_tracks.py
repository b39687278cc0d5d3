"""The frozen pre-trained voice encoder's tracks (mtl_aug.data.voice_encoder): the encoder's own outputs, on the log-mel
grid, independent of padding and recording gain, never trained, and a clear error without its weights."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from mtl_aug.features import LogMelFrontEnd
from mtl_aug.data.voice_encoder import VoiceEncoderTracks, resemblyzer_weights

SR = 16000


def speech_like(seconds: float = 1.5, seed: int = 0) -> torch.Tensor:
    """A gliding harmonic tone with an amplitude envelope and a little noise (peak 0.5)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(SR * seconds)) / SR
    f0 = 140 + 60 * torch.sin(2 * math.pi * 1.3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    x = sum(torch.sin(k * phase) / k for k in range(1, 10)) * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t))
    x = x + 0.02 * torch.randn(t.numel(), generator=g)
    return 0.5 * x / x.abs().max()


def test_tracks_are_the_voice_encoders_own_lstm_outputs_on_its_own_mel():
    """Reference: the pipeline the encoder was trained with (librosa's power mel of the -30 dBFS-raised wave) through
    the weights file's 3-layer LSTM, built independently of the module."""
    wave = speech_like()
    fe = LogMelFrontEnd(SR, voice_tracks=True)
    feats, fl = fe(wave[None], torch.tensor([wave.numel()]))
    assert fe.out_dim == 64 + 768 and feats.shape == (1, int(fl[0]), 832)
    w = (wave / wave.abs().max()).numpy()
    rms = np.sqrt(np.mean(w ** 2))
    w = w * max(1.0, 10 ** (-30 / 20) / rms)
    mel = librosa.feature.melspectrogram(y=w, sr=SR, n_fft=400, hop_length=160, n_mels=40).T.astype(np.float32)
    state = torch.load(resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
    lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    with torch.no_grad():
        ref, _ = lstm(torch.from_numpy(mel)[None])
    assert ref.shape[1] == feats.shape[1]
    assert torch.allclose(feats[0, :, -256:], ref[0], atol=1e-4)
    assert feats[0, :, 64:64 + 256].abs().max() > 0.05  # the first layer's outputs are there too


def test_tracks_ignore_padding_and_gain_and_stay_zero_on_padding():
    wave = speech_like(1.0)
    tracks = VoiceEncoderTracks(SR, 160)
    n = wave.numel()
    one = tracks(wave[None], torch.tensor([n]), torch.tensor([1 + n // 160]))
    batch = torch.zeros(2, n + 4000)
    batch[0, :n], batch[1, :n] = wave, wave * 0.05
    both = tracks(batch, torch.tensor([n, n]), torch.tensor([1 + n // 160] * 2))
    v = 1 + n // 160
    assert torch.allclose(both[0, :v], one[0], atol=1e-5) and torch.allclose(both[1, :v], one[0], atol=1e-4)
    assert both[:, v:].abs().max() == 0


def test_a_module_with_voice_tracks_trains_without_changing_them():
    from mtl_aug.tasks import MTLAugModule
    from mtl_aug.tasks import legacy
    from tests.test_model_module import TINY, utterances

    torch.manual_seed(0)
    cfg = legacy.nested_from_flat(dict(TINY))
    cfg["front_end"]["init_args"]["voice_tracks"] = True
    model = MTLAugModule.from_config(cfg).train()
    assert model.encoder.extra_dims == 32 - 32 + 768 and model.decoder.n_mels == 32 + 768
    frozen = {k: v.clone() for k, v in model.front_end.voice.named_parameters()}
    assert len(frozen) == 12
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    out = model.training_step(utterances(8), 0)
    out["loss"].backward()
    assert all(p.grad is None for p in model.front_end.voice.parameters())
    assert model.encoder.proj.weight.grad[:, -768:].abs().sum() > 0  # the tracks reach the loss
    opt.step()
    assert all(torch.equal(v, dict(model.front_end.voice.named_parameters())[k]) for k, v in frozen.items())
    # the frozen weights stay out of checkpoints and come back from the package when one is loaded
    state = model.state_dict()
    assert not [k for k in state if ".voice." in k] and any(k.startswith("network.front_end.mel") for k in state)
    fresh = MTLAugModule.from_config(cfg)
    fresh.load_state_dict(state)  # strict
    assert torch.equal(fresh.encoder.proj.weight, model.encoder.proj.weight)
    with_weights = {**state, **{f"network.front_end.voice.{k}": v for k, v in frozen.items()}}
    fresh.load_state_dict(with_weights)  # a checkpoint that carries them loads too
    # and the tracks are differentiable w.r.t. the wave when it asks for it (adversarial attacks)
    model.eval()
    b = utterances(2)
    wave = b["wave"].clone().requires_grad_(True)
    model.emotion_logits(wave, b["lengths"]).sum().backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0


def test_voice_tracks_refuse_another_rate_or_hop_and_say_how_to_get_the_weights(monkeypatch):
    with pytest.raises(ValueError, match="16000 Hz audio and a 10 ms hop"):
        LogMelFrontEnd(22050, n_fft=1024, voice_tracks=True)
    with pytest.raises(ValueError, match="10 ms hop"):
        LogMelFrontEnd(SR, hop_ms=20.0, voice_tracks=True)
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps resemblyzer"):
        VoiceEncoderTracks(SR, 160)


def test_voice_statistics_are_the_embedding_and_each_layers_mean_and_std(tmp_path):
    import soundfile as sf

    from mtl_aug.data.cache import WaveformCache
    from mtl_aug.data.functionals import FunctionalsCache, extractor, make_extractor
    from mtl_aug.data.voice_encoder import VoiceStatsExtractor

    ex = extractor("voice")
    assert isinstance(ex, VoiceStatsExtractor) and isinstance(make_extractor("voice"), VoiceStatsExtractor)
    wave = speech_like(1.2).numpy()
    v = ex(wave, SR)
    assert v.shape == (1792,) == (len(ex.names),) and v.dtype == np.float32
    assert abs(np.linalg.norm(v[:256]) - 1) < 1e-5 and (v[:256] >= 0).all()  # L2-normalised ReLU embedding
    tracks = VoiceEncoderTracks(SR, 160)(torch.from_numpy(wave)[None], torch.tensor([wave.size]),
                                        torch.tensor([1 + wave.size // 160]))[0].numpy()
    layer2 = tracks[:, 256:512]
    i = ex.names.index("layer2_mean_0")
    assert np.allclose(v[i:i + 256], layer2.mean(0), atol=1e-5)
    assert np.allclose(v[i + 256:i + 512], layer2.std(0), atol=1e-5)
    assert np.allclose(ex(wave * 0.1, SR), v, atol=1e-4)  # recording gain does not matter
    with pytest.raises(ValueError, match="x.wav: the voice encoder needs 16000 Hz"):
        ex(wave, 22050, what="x.wav")
    with pytest.raises(ValueError, match="x.wav: expected a non-empty mono waveform"):
        ex(np.zeros(0, np.float32), SR, what="x.wav")
    # cached per file under its own tag
    path = tmp_path / "a.wav"
    sf.write(path, wave, SR)
    cache = FunctionalsCache(ex, WaveformCache(tmp_path / "w", SR), tmp_path / "f")
    assert np.allclose(cache.get(path), v, atol=1e-4) and list((tmp_path / "f").glob("voice-resemblyzer*"))


def test_a_module_fusing_voice_statistics_reads_them_in_its_emotion_head():
    from mtl_aug.tasks import MTLAugModule, legacy
    from tests.test_model_module import TINY, utterances

    torch.manual_seed(0)
    cfg = legacy.nested_from_flat(dict(TINY))
    cfg["functionals"] = "voice"
    model = MTLAugModule.from_config(cfg).eval()
    assert model.emotion_head.side_dim == 1792
    b = utterances(2)
    with torch.no_grad():  # extracted from the wave when none are given: the same as the extractor's
        logits = model.emotion_logits(b["wave"], b["lengths"])
        from mtl_aug.data.functionals import extractor

        given = torch.from_numpy(np.stack([extractor("voice")(b["wave"][i, : int(n)].numpy(), SR)
                                           for i, n in enumerate(b["lengths"])]))
        assert torch.allclose(logits, model.emotion_logits(b["wave"], b["lengths"], given), atol=1e-5)
    # computed in the graph, batched: the same as each row alone, and differentiable w.r.t. the wave
    stats = model.network.voice_stats(b["wave"], b["lengths"])
    assert torch.allclose(stats, given, atol=1e-4)
    wave = b["wave"].clone().requires_grad_(True)
    model.emotion_logits(wave, b["lengths"]).sum().backward()
    assert torch.isfinite(wave.grad).all() and wave.grad.abs().sum() > 0
