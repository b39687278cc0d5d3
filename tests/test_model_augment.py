"""Augmentation policy: the augmentation label of a row is what was applied to it."""

import math

import pytest
import torch
import torch.nn.functional as F

from mtl_aug.augment import AugmentationPolicy, chunk_sizes
from mtl_aug.augmentations import AUGMENTATIONS, Mixup, SpecAugment, SpeedPerturb
from mtl_aug.features import LogMelFrontEnd
from mtl_aug.masking import lengths_to_mask


FE = LogMelFrontEnd(n_mels=32)


def batch(b: int = 16, t: int = 8000, n_labelled: int = 8, c: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(t // 2, t + 1, (b,), generator=g)
    lengths[0] = t
    w = 0.1 * torch.randn(b, t, generator=g) * lengths_to_mask(lengths, t)
    labels = torch.randint(0, c, (b,), generator=g)
    labels[n_labelled:] = -1
    targets = F.one_hot(labels.clamp(min=0), c).float() * (labels >= 0).unsqueeze(1)
    return w, lengths, targets


def is_band_mask(aug: torch.Tensor, ref: torch.Tensor, n_frames: int) -> bool:
    """Every changed element of ``aug`` vs ``ref`` is 0 and lies in an all-zero frame or all-zero mel band."""
    a, r = aug[:n_frames], ref[:n_frames]
    changed = (a - r).abs() > 1e-5
    zero_frames = (a == 0).all(1, keepdim=True)
    zero_bands = (a == 0).all(0, keepdim=True)
    return bool((a[changed] == 0).all() and (~changed | zero_frames | zero_bands).all())


def test_registry_and_chunk_sizes():
    assert {"none", "speed", "specaug", "mixup"} <= set(AUGMENTATIONS)
    assert chunk_sizes(16, [1, 1, 1, 1]) == [4, 4, 4, 4]
    assert chunk_sizes(10, [1, 1, 1, 1]) == [3, 3, 2, 2]
    assert chunk_sizes(10, [2, 1, 1, 0]) == [5, 3, 2, 0]
    with pytest.raises(ValueError):
        AugmentationPolicy(types=["none", "reverb"])


def test_each_label_matches_the_applied_augmentation():
    w, l, tg = batch()
    policy = AugmentationPolicy(seed=3).train()
    out = policy(w, l, tg, FE)
    ref, ref_fl = FE(w, l)
    f0 = ref.size(1)
    assert torch.bincount(out.aug_label, minlength=4).tolist() == [4, 4, 4, 4]
    for i in range(w.size(0)):
        k = int(out.aug_label[i])
        if k == 0:  # none: exactly the clean features (more padding is allowed, it is zero)
            assert out.lengths[i] == l[i] and out.frame_lengths[i] == ref_fl[i]
            assert (out.feats[i, :f0] - ref[i]).abs().max() < 1e-5 and torch.all(out.feats[i, f0:] == 0)
            assert torch.equal(out.targets[i], tg[i]) and not out.mixed[i]
        elif k == 1:  # speed: length scaled by one of the factors, features = those of the new wave
            dist = min(abs(int(out.lengths[i]) - round(int(l[i]) / f)) for f in (0.9, 1.1))
            assert dist <= 1 and out.lengths[i] != l[i]
            assert out.frame_lengths[i] == FE.frame_lengths(out.lengths[i : i + 1])[0]
            assert torch.equal(out.feats[i], out.clean_feats[i]) and torch.equal(out.targets[i], tg[i])
        elif k == 2:  # specaug: same frames as clean, only whole zeroed frames/bands differ
            assert out.frame_lengths[i] == ref_fl[i]
            assert is_band_mask(out.feats[i], ref[i], int(ref_fl[i]))
            assert (out.feats[i, : ref_fl[i]] - ref[i, : ref_fl[i]]).abs().max() > 0
            assert torch.equal(out.targets[i], tg[i]) and not out.mixed[i]
        else:  # mixup
            assert k == 3
            if out.mixed[i]:
                assert (out.feats[i, :f0] - ref[i]).abs().max() > 1e-3
                if tg[i].sum() > 0:
                    assert abs(float(out.targets[i].sum()) - 1) < 1e-5
                else:
                    assert torch.all(out.targets[i] == 0)
            # clean target of a mixup row = its own un-mixed features
            assert (out.clean_feats[i, :f0] - ref[i]).abs().max() < 1e-5
    assert out.mixed[out.aug_label == 3].any()
    assert not out.mixed[out.aug_label != 3].any()


def test_eval_mode_and_none_policy_return_clean_features():
    w, l, tg = batch()
    ref, ref_fl = FE(w, l)
    for policy in (AugmentationPolicy().eval(), AugmentationPolicy(types=["none"]).train()):
        out = policy(w, l, tg, FE)
        assert torch.equal(out.feats, ref) and torch.equal(out.frame_lengths, ref_fl)
        assert torch.all(out.aug_label == 0) and not out.mixed.any() and torch.equal(out.targets, tg)


def test_seeded_generator_is_reproducible_and_advances():
    w, l, tg = batch()
    a, b = AugmentationPolicy(seed=7).train(), AugmentationPolicy(seed=7).train()
    first_a, first_b = a(w, l, tg, FE), b(w, l, tg, FE)
    assert torch.equal(first_a.aug_label, first_b.aug_label) and torch.equal(first_a.feats, first_b.feats)
    second = a(w, l, tg, FE)
    assert not torch.equal(first_a.aug_label, second.aug_label) or not torch.equal(first_a.feats, second.feats)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_length_and_pitch(factor):
    sr, t = 16000, 16000
    lengths = torch.tensor([16000, 12345, 8000])
    time = torch.arange(t) / sr
    w = torch.sin(2 * math.pi * 1000 * time).repeat(3, 1) * lengths_to_mask(lengths, t)
    out, new_len = SpeedPerturb([factor]).on_wave(w, lengths, torch.Generator().manual_seed(0))
    for i in range(3):
        assert abs(int(new_len[i]) - round(int(lengths[i]) / factor)) <= 1
        assert torch.all(out[i, new_len[i]:] == 0)  # padding stays exactly zero
        seg = out[i, 200 : new_len[i] - 200]
        spec = torch.fft.rfft(seg * torch.hann_window(seg.numel())).abs()
        peak_hz = float(spec.argmax()) * sr / seg.numel()
        assert abs(peak_hz - 1000 * factor) < 10  # real speed perturbation: pitch moves with the factor


def test_specaugment_masks_stay_inside_valid_frames():
    n, f, m = 24, 60, 32
    fl = torch.randint(5, f + 1, (n,), generator=torch.Generator().manual_seed(1))
    valid = lengths_to_mask(fl, f).unsqueeze(-1)
    feats = torch.ones(n, f, m) * valid  # 1 on valid frames so masks are visible, 0 padding
    aug = SpecAugment(freq_mask_param=8, time_mask_param=10, n_freq_masks=2, n_time_masks=3)
    out, out_fl, _, mixed = aug.on_feats(feats, fl, torch.zeros(n, 4), torch.Generator().manual_seed(0))
    assert torch.equal(out_fl, fl) and not mixed.any()
    assert torch.all(out[~valid.expand_as(out)] == 0)  # padding untouched
    assert (out == 0).logical_and(valid).any()  # something was masked inside the valid region
    for i in range(n):
        assert is_band_mask(out[i], feats[i], int(fl[i]))
        # the 3 time masks are drawn inside the valid frames, so even a 5-frame row gets one
        assert (out[i, : fl[i]] == 0).all(1).any()
        # widths bounded by the params: <= 3 x 10 zeroed frames, <= 2 x 8 zeroed bands
        assert int((out[i, : fl[i]] == 0).all(1).sum()) <= 30
        assert int((out[i, : fl[i]] == 0).all(0).sum()) <= 16 or fl[i] <= 30


def test_mixup_mixes_features_and_targets_with_the_same_lambda():
    c, n_lab, n_unl, f, m = 6, 6, 4, 20, 8
    g = torch.Generator().manual_seed(0)
    fl = torch.randint(5, f + 1, (n_lab + n_unl,), generator=g)
    feats = torch.randn(n_lab + n_unl, f, m, generator=g) * lengths_to_mask(fl, f).unsqueeze(-1)
    targets = torch.cat([torch.eye(c), torch.zeros(n_unl, c)])  # each labelled row its own class
    out, out_fl, out_t, mixed = Mixup(mixup_alpha=0.4).on_feats(feats, fl, targets, torch.Generator().manual_seed(5))
    assert mixed.all()
    assert torch.all(out_t[n_lab:] == 0)  # unlabelled rows only mixed with unlabelled rows
    for i in range(n_lab):
        lam = float(out_t[i, i])
        others = out_t[i].clone()
        others[i] = 0
        j = int(others.argmax())  # the partner's class = the partner's index here
        assert abs(float(out_t[i].sum()) - 1) < 1e-5 and j < n_lab and j != i
        assert torch.allclose(out[i], lam * feats[i] + (1 - lam) * feats[j], atol=1e-5)
        assert out_fl[i] == max(int(fl[i]), int(fl[j]))  # union of valid frames
