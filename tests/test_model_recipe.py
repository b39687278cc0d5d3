"""Recipe options of the accuracy search: Δ/ΔΔ input channels, label smoothing, EMA weight averaging."""

from __future__ import annotations

import pytest
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
    # the same values as torchaudio's compute_deltas (the models were trained with it), edges included
    import torchaudio

    ref = torchaudio.functional.compute_deltas(feats[:1].transpose(1, 2), 5).transpose(1, 2)
    assert torch.allclose(x[0, 1], ref[0], atol=1e-6)
    assert torch.allclose(x[0, 2], torchaudio.functional.compute_deltas(ref.transpose(1, 2), 5).transpose(1, 2)[0],
                          atol=1e-6)
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


@pytest.mark.parametrize("system", ["stl", "mtl_aug"])
def test_default_recipe_is_ema_label_smoothing_and_deltas_for_every_system(system: str):
    """The searched recipe lives in base.yaml, so STL and MTL-AUG stay comparable: one EMA callback, Δ/ΔΔ, LS 0.1."""
    from mtl_aug.training import make_cli

    cli = make_cli(["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml",
                    "--config", f"experiments/systems/{system}.yaml", "--trainer.logger=false"], run=False)
    names = [type(cb).__name__ for cb in cli.trainer.callbacks]
    assert names.count("EMAWeightAveraging") == 1
    assert cli.model.encoder.deltas and cli.model.emotion_head.label_smoothing == 0.1


def test_recipe_options_can_be_switched_off_again():
    from mtl_aug.training import make_cli

    cli = make_cli(["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml",
                    "--config", "experiments/systems/mtl_aug.yaml", "--trainer.logger=false",
                    "--model.enc_deltas=false", "--model.label_smoothing=0.0"], run=False)
    assert not cli.model.encoder.deltas and cli.model.emotion_head.label_smoothing == 0.0


def test_multi_crop_even_spacing_short_rows_and_gradient():
    from mtl_aug.masking import multi_crop

    wave = torch.arange(20.0).view(2, 10).requires_grad_()
    crops, lengths = multi_crop(wave, torch.tensor([10, 3]), crop=4, k=3)
    assert crops.shape == (6, 4) and lengths.tolist() == [4, 4, 4, 3, 3, 3]
    assert crops[:3, 0].tolist() == [0.0, 3.0, 6.0]  # starts 0, mid, end
    assert crops[3].tolist() == [10.0, 11.0, 12.0, 0.0]  # a short row: itself, zero-padded
    crops.sum().backward()
    assert wave.grad[0].sum() == 12 and wave.grad[1, 3:].abs().sum() == 0


def test_tta_is_the_mean_of_the_crops_probabilities():
    from mtl_aug.masking import multi_crop
    from mtl_aug.tasks import MTLAugModule
    from tests.test_model_module import TINY, utterances

    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY, tta_crops=3, tta_crop_seconds=0.25).eval()
    b = utterances(4)
    with torch.no_grad():
        got = model.emotion_logits(b["wave"], b["lengths"]).exp()
        crops, lengths = multi_crop(b["wave"], b["lengths"], 4000, 3)
        want = torch.softmax(model.network.logits(crops, lengths), -1).view(4, 3, -1).mean(1)
    assert torch.allclose(got, want, atol=1e-6)
    model.train()  # training never crops at test time: the whole rows go through
    with torch.no_grad():
        assert model.emotion_logits(b["wave"], b["lengths"]).shape == (4, 4)


def test_prosody_tracks_find_the_pitch_of_a_harmonic_tone_and_zero_padding():
    import math

    from mtl_aug.features import LogMelFrontEnd

    sr, f0 = 16000, 200.0
    t = torch.arange(sr) / sr
    tone = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 8))
    wave = torch.stack([tone, tone * 0.1])
    wave[1, 8000:] = 0
    fe = LogMelFrontEnd(sr, n_mels=32, prosody=True)
    feats, fl = fe(wave, torch.tensor([sr, 8000]))
    assert feats.shape[-1] == 35 and fe.out_dim == 35
    pitch, voicing, energy = feats[0, 5:-5, 32], feats[0, 5:-5, 33], feats[0, 5:-5, 34]
    assert torch.allclose(pitch.median(), torch.tensor(math.log2(f0 / 150.0)), atol=0.05)
    assert voicing.min() > 0 and energy.max() <= 0
    assert feats[1, int(fl[1]):].abs().max() == 0  # padding stays zero
    # gain-invariant: a quieter copy has the same tracks
    assert torch.allclose(feats[1, 5:int(fl[1]) - 5, 32:], fe(tone[None] * 0.1, torch.tensor([sr]))[0][0, 5:int(fl[1]) - 5, 32:],
                          atol=1e-3)


def test_module_with_prosody_trains_and_reconstructs_every_column():
    from mtl_aug.tasks import MTLAugModule
    from tests.test_model_module import TINY, utterances

    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY, prosody=True).train()
    assert model.encoder.extra_dims == 3 and model.decoder.n_mels == 35
    out = model.training_step(utterances(8), 0)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["recon"] > 0
    model.eval()
    b = utterances(3, t=8000)
    with torch.no_grad():  # padding after a row changes nothing, the extra tracks included
        one = model.emotion_logits(b["wave"][:1, : int(b["lengths"][0])], b["lengths"][:1])
        padded = model.emotion_logits(b["wave"], b["lengths"])[:1]
    assert torch.allclose(one, padded, atol=1e-4)


def test_swa_averages_the_end_of_epoch_weights_from_its_start_epoch():
    import lightning as L

    from mtl_aug.callbacks import SWAWeightAveraging
    from mtl_aug.tasks import MTLAugModule
    from tests.test_model_module import TINY, loader

    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY, w_recon=0, w_aug=0, augment=False, scheduler="none")
    seen = []

    class Record(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append({k: v.detach().clone() for k, v in pl_module.state_dict().items() if "lstm" in k})

    swa = SWAWeightAveraging(start_epoch=2)
    trainer = L.Trainer(accelerator="cpu", max_epochs=4, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[Record(), swa])
    trainer.fit(model, loader(2, 8))
    assert int(swa._average_model.n_averaged) == 2
    for k, v in model.state_dict().items():
        if "lstm" in k and v.is_floating_point():
            assert torch.allclose(v, (seen[2][k] + seen[3][k]) / 2, atol=1e-6)


def test_mixup_mixes_side_features_with_the_rows_partner_and_lambda():
    from mtl_aug.augment import AugmentationPolicy
    from mtl_aug.features import LogMelFrontEnd

    torch.manual_seed(0)
    policy = AugmentationPolicy(types=["mixup"], seed=3).train()
    wave, lengths = torch.randn(6, 8000), torch.full((6,), 8000)
    targets = F.one_hot(torch.arange(6) % 4, 4).float()
    extra = targets * 10 + 1  # a side vector that is a function of the row's targets
    out = policy(wave, lengths, targets, LogMelFrontEnd(n_mels=16), extra)
    # mixed with the same partner and lambda as the targets: the function still holds after mixing
    assert out.mixed.all() and not torch.equal(out.extra, extra)
    assert torch.allclose(out.extra, out.targets * 10 + 1, atol=1e-6)
    same = AugmentationPolicy(types=["none"]).train()(wave, lengths, targets, LogMelFrontEnd(n_mels=16), extra)
    assert torch.equal(same.extra, extra)


def test_fusion_model_standardises_extracts_and_fuses_functionals(monkeypatch):
    import numpy as np

    from mtl_aug.tasks import MTLAugModule
    from tests.test_model_module import TINY, utterances

    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY, functionals="egemaps").eval()
    assert model.emotion_head.side_dim == 88 and model.network.func_mean.shape == (88,)
    b = utterances(3, t=8000)
    with torch.no_grad():
        extracted = model.network.extract_functionals(b["wave"], b["lengths"])
        assert extracted.shape == (3, 88) and torch.isfinite(extracted).all()
        # the logits from the wave equal those from the same functionals given explicitly
        assert torch.allclose(model.emotion_logits(b["wave"], b["lengths"]),
                              model.emotion_logits(b["wave"], b["lengths"], extracted), atol=1e-5)
        # and they depend on the functionals
        other = model.emotion_logits(b["wave"], b["lengths"], extracted + 5 * model.network.func_std)
        assert not torch.allclose(other, model.emotion_logits(b["wave"], b["lengths"], extracted))
    model.train()
    batch = utterances(8) | {"functionals": torch.randn(8, 88)}
    out = model.training_step(batch, 0)
    out["loss"].backward()
    assert model.emotion_head.side[1].weight.grad.abs().sum() > 0
    from mtl_aug.inference.export import export_blockers

    assert "functionals" in export_blockers(model) and export_blockers(MTLAugModule.from_flat(**TINY)) == ""


def test_cv_tests_the_averaged_weights_the_checkpoint_holds(synthetic_corpus, tmp_path, monkeypatch):
    """With EMA the checkpoint's state_dict is the average: the test after fit must use it (not the raw weights the
    trainer would restore to resume), so cv, predict, export and noise all evaluate one model."""
    from mtl_aug.training import make_cli, run_training

    monkeypatch.setenv("SYNTHETIC_ROOT", synthetic_corpus["env"]["SYNTHETIC_ROOT"])
    c = synthetic_corpus
    cli = make_cli(["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml",
                    "--config", "experiments/systems/stl.yaml", f"--data.manifest_dir={c['manifest_dir']}",
                    f"--data.root={c['root']}", f"--data.cache_dir={c['cache_dir']}", "--data.fold=F01",
                    f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
                    "--trainer.enable_progress_bar=false", "--trainer.max_epochs=2", "--data.batch_size=8",
                    "--model.lr=0.05"], run=False)
    result = run_training(cli)
    ckpt = torch.load(result["best_checkpoint"], map_location="cpu", weights_only=False)
    tested = cli.model.state_dict()
    assert all(torch.equal(tested[k], v) for k, v in ckpt["state_dict"].items())
    raw = ckpt["current_model_state"]
    assert any(not torch.equal(raw[k], v) for k, v in ckpt["state_dict"].items())  # the two differ: a real check
