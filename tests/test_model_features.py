"""Log-mel front end: shapes, masking, padding invariance, normalisation, differentiability."""

import pytest
import torch

from mtl_aug.features import LogMelFrontEnd
from mtl_aug.masking import lengths_to_mask


def waves(b: int, t: int, min_len: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, t + 1, (b,), generator=g)
    lengths[0] = t
    w = 0.1 * torch.randn(b, t, generator=g)
    return w * lengths_to_mask(lengths, t), lengths


def test_shapes_and_frame_lengths():
    fe = LogMelFrontEnd(n_mels=32)
    w, l = waves(3, 8000, 3000)
    feats, fl = fe(w, l)
    assert feats.shape == (3, 8000 // 160 + 1, 32)
    assert torch.equal(fl, l // 160 + 1)
    assert torch.equal(fe.frame_lengths(l), fl)


def test_padded_frames_zero_and_valid_frames_normalised():
    """Default: one mean/std per utterance over valid frames x bands (spectral envelope kept)."""
    fe = LogMelFrontEnd(n_mels=32)
    w, l = waves(4, 8000, 2000)
    feats, fl = fe(w, l)
    for i in range(4):
        assert torch.all(feats[i, fl[i]:] == 0)
        valid = feats[i, : fl[i]]
        assert valid.mean().abs() < 1e-4
        assert (valid.std(unbiased=False) - 1).abs() < 1e-2
        assert valid.mean(0).abs().max() > 0.1  # bands keep their own level


def test_per_band_normalisation_option():
    fe = LogMelFrontEnd(n_mels=32, normalize="utterance_band")
    w, l = waves(4, 8000, 2000)
    feats, fl = fe(w, l)
    for i in range(4):
        valid = feats[i, : fl[i]]
        assert valid.mean(0).abs().max() < 1e-4
        assert (valid.std(0, unbiased=False) - 1).abs().max() < 1e-2


def test_mean_only_normalisation_is_gain_invariant_and_keeps_the_dynamic_range():
    fe, default = LogMelFrontEnd(n_mels=32, normalize="utterance_mean"), LogMelFrontEnd(n_mels=32)
    w, l = waves(2, 8000, 8000)
    w[1] = w[0] * torch.linspace(0.05, 1.0, 8000)  # the same signal with a louder end: a wider dynamic range
    feats, fl = fe(w, l)
    for i in range(2):
        assert feats[i, : fl[i]].mean().abs() < 1e-4
    louder, _ = fe(4.0 * w, l)  # +12 dB gain: the same features
    assert (louder - feats).abs().max() < 1e-2  # (the log's 1e-6 offset on the quietest bins)
    spread = [float(feats[i, : fl[i]].std()) for i in range(2)]
    assert spread[1] > spread[0] + 0.1  # the dynamic range shows ...
    normed, _ = default(w, l)
    assert abs(float(normed[0, : fl[0]].std()) - float(normed[1, : fl[1]].std())) < 1e-2  # ... where "utterance" hides it


def test_log_floor_limits_digital_silence():
    """Zero-padded files (EMODB-2s) must not put log(0) outliers into the statistics."""
    fe = LogMelFrontEnd(n_mels=32, normalize="none", top_db=60.0)
    w = torch.randn(1, 8000) * 0.1
    w[:, 4000:] = 0.0
    feats, _ = fe(w, torch.tensor([8000]))
    span = feats.max() - feats.min()
    assert span <= 60.0 / 10 * 2.302585 + 1e-4


def test_invariant_to_extra_padding():
    fe = LogMelFrontEnd(n_mels=32)
    w, l = waves(1, 6000, 6000)
    a, fa = fe(w, l)
    b, fb = fe(torch.nn.functional.pad(w, (0, 3331)), l)
    assert torch.equal(fa, fb)
    assert (a[0, : fa[0]] - b[0, : fa[0]]).abs().max() < 1e-5
    assert torch.all(b[0, fa[0]:] == 0)


def test_no_normalisation_mode_and_gradient_to_wave():
    fe = LogMelFrontEnd(n_mels=16, normalize="none")
    w, l = waves(2, 4000, 3000)
    w.requires_grad_(True)
    feats, _ = fe(w, l)
    feats.sum().backward()
    assert w.grad is not None and w.grad[0].abs().sum() > 0
    # batch padding beyond half a window after the end cannot reach a valid frame
    assert torch.all(w.grad[1, l[1] + 512 // 2 + 1 :] == 0)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still the cheap export check
def test_torchscript():
    # a fresh TorchScript type cache: in a long test session, modules traced earlier (export tests) have been seen
    # to leave a compiled LogMelFrontEnd type with another signature that a later script call picked up
    torch.jit._recursive.concrete_type_store = torch.jit._recursive.ConcreteTypeStore()
    torch.jit._state._clear_class_state()
    fe = torch.jit.script(LogMelFrontEnd(n_mels=16))
    w, l = waves(2, 4000, 3000)
    ref, _ = LogMelFrontEnd(n_mels=16)(w, l)
    out, _ = fe(w, l)
    assert torch.allclose(out, ref, atol=1e-5)
