"""Encoder and heads: padding invariance, label masking, center loss, masked losses."""

import pytest
import torch
import torch.nn.functional as F

from mtl_aug.encoder import ConvEncoder
from mtl_aug.features import LogMelFrontEnd
from mtl_aug.heads import AugmentationClassifier, CenterLoss, EmotionClassifier, ReconstructionDecoder
from mtl_aug.masking import lengths_to_mask


N_MELS = 32


def small_encoder(norm: str = "layer", dropout: float = 0.1) -> ConvEncoder:
    return ConvEncoder(N_MELS, channels=[8, 16], kernel_size=3, time_pool=[1, 2], freq_pool=[2, 2], dropout=dropout,
                       norm=norm, out_dim=24)


def small_head() -> EmotionClassifier:
    return EmotionClassifier(24, num_classes=4, lstm_hidden=16, attn_dim=16, embed_dim=16)


def waves(b: int, t: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(t // 2, t + 1, (b,), generator=g)
    lengths[0] = t
    return 0.1 * torch.randn(b, t, generator=g) * lengths_to_mask(lengths, t), lengths


def test_encoder_shapes_and_zero_padding():
    enc = small_encoder().eval()
    feats = torch.randn(3, 41, N_MELS)
    fl = torch.tensor([41, 30, 7])
    feats = feats * lengths_to_mask(fl, 41).unsqueeze(-1)
    z, zl = enc(feats, fl)
    assert enc.time_reduction == 2 and enc.out_dim == 24
    assert z.shape == (3, 21, 24) and torch.equal(zl, torch.tensor([21, 15, 4]))
    assert torch.all(z[1, 15:] == 0) and torch.all(z[2, 4:] == 0)
    assert ConvEncoder(N_MELS, channels=[8, 16], kernel_size=3, time_pool=[1, 2], freq_pool=[2, 2],
                       out_dim=None).out_dim == 16 * (N_MELS // 4)


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_whole_pipeline_invariant_to_extra_padding(norm):
    torch.manual_seed(0)
    fe, enc, head = LogMelFrontEnd(n_mels=N_MELS), small_encoder(norm), small_head()
    if norm == "batch":  # give the running statistics non-trivial values first
        enc.train()
        w, l = waves(4, 6000)
        enc(*fe(w, l))
    enc.eval(), head.eval()
    w, l = waves(1, 4800, seed=1)  # 31 frames: odd, so a pooling window straddles the end of the row
    outs = []
    for extra in (0, 2345):
        feats, fl = fe(F.pad(w, (0, extra)), l)
        z, zl = enc(feats, fl)
        outs.append(head(z, zl) + (zl,))
    (la, ea, aa, zla), (lb, eb, ab, zlb) = outs
    assert torch.equal(zla, zlb) and ab.size(1) > aa.size(1)
    assert (la - lb).abs().max() < 1e-5 and (ea - eb).abs().max() < 1e-5
    assert (aa[0, : zla[0]] - ab[0, : zla[0]]).abs().max() < 1e-5
    assert torch.all(ab[0, zla[0]:] == 0)  # attention never looks at padding


def test_masked_batchnorm_training_statistics_ignore_padding():
    torch.manual_seed(0)
    enc = small_encoder("batch", dropout=0.0).train()
    feats = torch.randn(3, 30, N_MELS)
    fl = torch.tensor([30, 22, 13])
    feats = feats * lengths_to_mask(fl, 30).unsqueeze(-1)
    za, _ = enc(feats, fl)
    zb, _ = enc(F.pad(feats, (0, 0, 0, 17)), fl)
    assert (za - zb[:, :15]).abs().max() < 1e-5


def test_unlabelled_rows_get_exactly_zero_gradient_from_the_emotion_loss():
    torch.manual_seed(0)
    fe, enc, head = LogMelFrontEnd(n_mels=N_MELS), small_encoder(), small_head()
    enc.train(), head.train()  # dropout on: rows must still be independent
    w, l = waves(6, 4000)
    w.requires_grad_(True)
    labels = torch.tensor([0, 1, 2, -1, -1, -1])
    targets = F.one_hot(labels.clamp(min=0), 4).float() * (labels >= 0).unsqueeze(1)
    z, zl = enc(*fe(w, l))
    logits, emb, _ = head(z, zl)
    losses = head.loss(logits, emb, targets, labels, torch.zeros(6, dtype=torch.bool), center_lambda=0.1)
    losses["total"].backward()
    assert torch.all(w.grad[3:] == 0)
    assert all(w.grad[i].abs().sum() > 0 for i in range(3))
    # CE is the mean over the labelled rows only
    assert torch.allclose(losses["ce"], F.cross_entropy(logits[:3], labels[:3]), atol=1e-6)


def test_class_weighted_ce_matches_torch():
    head = EmotionClassifier(8, num_classes=3, lstm_hidden=4, attn_dim=4, embed_dim=4, class_weights=[1.0, 2.0, 0.5])
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 2, -1])
    targets = F.one_hot(labels.clamp(min=0), 3).float() * (labels >= 0).unsqueeze(1)
    ce = head.loss(logits, torch.zeros(5, 4), targets, labels, torch.zeros(5, dtype=torch.bool), 0.0)["ce"]
    ref = F.cross_entropy(logits[:4], labels[:4], weight=torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(ce, ref, atol=1e-6)


def test_center_loss_pulls_features_to_their_class_centre():
    torch.manual_seed(0)
    cl = CenterLoss(num_classes=2, feat_dim=4, alpha=0.5).train()
    labels = torch.tensor([0, 0, 0, 1, 1, 1, -1, -1])
    x = torch.nn.Parameter(torch.randn(8, 4) + torch.tensor([3.0, 0, 0, 0]) * (labels == 1).float().unsqueeze(1))
    opt = torch.optim.SGD([x], lr=0.5)
    weight = labels >= 0

    def spread() -> float:  # distance of labelled rows to their class mean
        with torch.no_grad():
            return sum(float((x[labels == c] - x[labels == c].mean(0)).norm(dim=1).sum()) for c in (0, 1))

    before, unl_before = spread(), x[6:].detach().clone()
    first = None
    for _ in range(10):
        opt.zero_grad()
        loss = cl(x, labels, weight)
        first = float(loss.detach()) if first is None else first
        loss.backward()
        assert torch.all(x.grad[6:] == 0)  # unlabelled rows: no pull
        opt.step()
    with torch.no_grad():
        assert float(cl(x, labels, weight)) < 0.2 * first
    assert spread() < 0.5 * before
    assert torch.equal(x[6:].detach(), unl_before)
    # centres moved towards the class means (they are a buffer, not a parameter)
    assert not any(p is cl.centers for p in cl.parameters())
    for c in (0, 1):
        assert (cl.centers[c] - x[labels == c].detach().mean(0)).norm() < 0.5


def test_decoder_shape_and_loss_over_valid_frames_only():
    dec = ReconstructionDecoder(24, n_mels=N_MELS, hidden=16, time_upsample=2)
    z, zl = torch.randn(2, 11, 24), torch.tensor([11, 6])
    for n_frames in (21, 22, 25):
        assert dec(z, n_frames, zl).shape == (2, n_frames, N_MELS)
    target, fl = torch.randn(2, 21, N_MELS), torch.tensor([21, 12])
    recon = dec(z, 21, zl)
    loss = dec.loss(recon, target, fl)
    ref = torch.cat([((recon[0] - target[0]) ** 2).flatten(), ((recon[1, :12] - target[1, :12]) ** 2).flatten()]).mean()
    assert torch.allclose(loss, ref, atol=1e-6)
    garbage = recon.detach().clone()
    garbage[1, 12:] += 100.0
    assert torch.allclose(dec.loss(garbage, target, fl), dec.loss(recon.detach(), target, fl))


def test_augmentation_classifier_pools_valid_frames_only():
    head = AugmentationClassifier(24, num_types=4, hidden=16).eval()
    z, zl = torch.randn(1, 9, 24), torch.tensor([9])
    a = head(z, zl)
    b = head(F.pad(z, (0, 0, 0, 5)), zl)
    assert (a - b).abs().max() < 1e-5
    labels = torch.tensor([2])
    assert torch.allclose(head.loss(a, labels), F.cross_entropy(a, labels))


def test_balanced_class_weights():
    from mtl_aug.heads.emotion import balanced_class_weights

    w = balanced_class_weights([0, 0, 0, 1, 2, 2, -1], 4)  # -1 (unlabelled) ignored, class 3 absent
    assert w == pytest.approx([6 / 12, 6 / 4, 6 / 8, 0.0])
    with pytest.raises(ValueError):
        balanced_class_weights([-1], 3)
