"""Recipe options of the accuracy search: Δ/ΔΔ input channels, label smoothing, EMA weight averaging."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mtl_aug.encoder import ConvEncoder, with_deltas
from mtl_aug.heads import EmotionClassifier


def test_deltas_are_three_channels_zero_on_padding_and_padding_invariant():
    torch.manual_seed(0)
    feats = torch.randn(2, 30, 8)
    lengths = torch.tensor([30, 20])
    feats[1, 20:] = 0
    x = with_deltas(feats, lengths)
    assert x.shape == (2, 3, 30, 8) and torch.equal(x[:, 0], feats)
    assert x[1, 1:, 20:].abs().max() == 0
    # the delta of a linear ramp is its slope in the interior
    ramp = torch.arange(30.0)[None, :, None].expand(1, 30, 8)
    assert torch.allclose(with_deltas(ramp, torch.tensor([30]))[0, 1, 5:25], torch.ones(20, 8))
    enc = ConvEncoder(n_mels=8, channels=[4, 4], time_pool=[1, 1], freq_pool=[2, 2], out_dim=16, deltas=True).eval()
    z, _ = enc(feats[1:, :20], torch.tensor([20]))
    z_padded, _ = enc(feats[1:], torch.tensor([20]))
    assert enc.blocks[0].conv.in_channels == 3
    assert torch.allclose(z[0], z_padded[0, :20], atol=1e-5)  # padding after the row changes nothing


def test_label_smoothing_matches_torch_cross_entropy():
    torch.manual_seed(0)
    head = EmotionClassifier(8, num_classes=4, lstm_hidden=4, attn_dim=4, embed_dim=4, label_smoothing=0.1)
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 1, 2])
    out = head.loss(logits, torch.randn(6, 4), F.one_hot(labels, 4).float(), labels, torch.zeros(6, dtype=torch.bool), 0.0)
    assert torch.allclose(out["ce"], F.cross_entropy(logits, labels, label_smoothing=0.1))
    unlabelled = F.one_hot(labels, 4).float()
    unlabelled[0] = 0  # an unlabelled row stays out of the loss
    out = head.loss(logits, torch.randn(6, 4), unlabelled, labels, torch.zeros(6, dtype=torch.bool), 0.0)
    assert torch.allclose(out["ce"], F.cross_entropy(logits[1:], labels[1:], label_smoothing=0.1))


def test_ema_recipe_config_parses_with_lightning_cli():
    from mtl_aug.training import make_cli

    cli = make_cli(["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml",
                    "--config", "experiments/systems/mtl_aug.yaml", "--config", "experiments/recipes/ema.yaml",
                    "--trainer.logger=false", "--model.enc_deltas=true", "--model.label_smoothing=0.1"], run=False)
    names = [type(cb).__name__ for cb in cli.trainer.callbacks]
    assert "EMAWeightAveraging" in names
    assert cli.model.encoder.deltas and cli.model.emotion_head.label_smoothing == 0.1
