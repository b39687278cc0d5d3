"""Encoder pre-training on unlabelled audio (python -m mtl_aug pretrain) and fine-tuning from it (init_from)."""

from __future__ import annotations

import pytest
import torch

from mtl_aug.data.unlabelled import UnlabelledDataModule
from mtl_aug.pretrain import main as pretrain_main
from mtl_aug.tasks.pretrained import PretrainError, load_parts

TINY = ["--model.n_mels=32", "--model.enc_channels=[8,16]", "--model.enc_time_pool=[1,2]",
        "--model.enc_freq_pool=[2,2]", "--model.enc_out_dim=32", "--model.lstm_hidden=16", "--model.attn_dim=16",
        "--model.embed_dim=16", "--model.dec_hidden=32", "--model.aug_hidden=16"]


def test_pool_is_unlabelled_and_leaves_out_the_excluded_speakers(synthetic_corpus):
    c = synthetic_corpus
    dm = UnlabelledDataModule(corpora=["synthetic", "synthetic_unlabelled"], manifest_dir=str(c["manifest_dir"]),
                              roots={"synthetic": str(c["root"]), "synthetic_unlabelled": str(c["root"])},
                              exclude_speakers={"synthetic": ["F01"]}, segment_seconds=0.5, batch_size=8,
                              cache_dir=str(c["cache_dir"]))
    dm.setup("fit")
    items = dm.datasets["train"].items
    assert {it.label for it in items} == {-1}
    assert not any(it.speaker == "F01" and it.key.startswith("F01_") for it in items)
    assert dm.pool_info["synthetic"]["used"] < dm.pool_info["synthetic"]["rows"]
    batch = next(iter(dm.train_dataloader()))
    assert (batch["label"] == -1).all()
    with pytest.raises(ValueError, match="not in the pool"):
        UnlabelledDataModule(corpora=["synthetic"], exclude_speakers={"emodb": ["03"]},
                             manifest_dir=str(c["manifest_dir"])).setup("fit")


@pytest.mark.slow
def test_pretrain_then_fine_tune_starts_from_the_pretrained_encoder(synthetic_corpus, tmp_path, monkeypatch):
    from mtl_aug.tasks import MTLAugModule

    c = synthetic_corpus
    monkeypatch.setenv("SYNTHETIC_ROOT", str(c["root"]))
    out = tmp_path / "enc.pt"
    args = ["--config", "experiments/pretrain.yaml", "--data.corpora=[synthetic_unlabelled]",
            f"--data.manifest_dir={c['manifest_dir']}", f"--data.cache_dir={c['cache_dir']}",
            "--data.segment_seconds=0.5", "--data.batch_size=8", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false", "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path}", *TINY, "--out", str(out)]
    assert pretrain_main(args) == 0
    saved = torch.load(out, weights_only=True)["state_dict"]
    assert any(k.startswith("encoder.") for k in saved) and not any(k.startswith("emotion_head.") for k in saved)

    tiny = dict(n_mels=32, enc_channels=[8, 16], enc_time_pool=[1, 2], enc_freq_pool=[2, 2], enc_out_dim=32,
                lstm_hidden=16, attn_dim=16, embed_dim=16, dec_hidden=32, aug_hidden=16,
                enc_deltas=True)  # pretrain.yaml pre-trains the default model's Δ/ΔΔ input
    model = MTLAugModule.from_flat(**tiny, init_from=str(out))
    before = model.emotion_head.state_dict()
    load_parts(model, out, ["front_end", "encoder"])
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, saved[f"encoder.{k}"])
    assert all(torch.equal(v, before[k]) for k, v in model.emotion_head.state_dict().items())
    with pytest.raises(PretrainError, match=r"enc\.pt.*does not match"):  # another architecture: named error
        load_parts(MTLAugModule.from_flat(**(tiny | {"enc_channels": [8, 8]})), out, ["encoder"])
    with pytest.raises(PretrainError, match=r"enc_deltas=True.*\(8, 3, 3, 3\) vs \(8, 1, 3, 3\)"):  # log-mel only
        load_parts(MTLAugModule.from_flat(**(tiny | {"enc_deltas": False})), out, ["encoder"])
    with pytest.raises(PretrainError, match="no such part"):
        load_parts(MTLAugModule.from_flat(**tiny, w_recon=0), out, ["decoder"])
    with pytest.raises(PretrainError, match="not found"):
        load_parts(model, tmp_path / "missing.pt", ["encoder"])


def test_init_from_a_model_checkpoint_transfers_the_parts_and_the_emotion_head(tmp_path):
    """Supervised transfer: another corpus's trained model (.ckpt) starts the encoder and, with the same classes,
    the emotion head; the per-class CE weights stay the fine-tuning corpus's own."""
    from mtl_aug.checkpoints import save_untrained_checkpoint
    from mtl_aug.tasks import MTLAugModule

    tiny = dict(n_mels=32, enc_channels=[8, 16], enc_time_pool=[1, 2], enc_freq_pool=[2, 2], enc_out_dim=32,
                lstm_hidden=16, attn_dim=16, embed_dim=16, dec_hidden=32, aug_hidden=16)
    classes = ["angry", "happy", "neutral", "sad"]
    src = save_untrained_checkpoint(tmp_path / "source.ckpt", seed=1, class_names=classes, **tiny)
    theirs = torch.load(src, weights_only=False)["state_dict"]
    torch.manual_seed(2)
    model = MTLAugModule.from_flat(class_names=classes, **tiny)
    model.emotion_head.class_weights.fill_(3.0)
    assert not torch.equal(model.encoder.blocks[0].conv.weight, theirs["network.encoder.blocks.0.conv.weight"])
    assert load_parts(model, src, ["front_end", "encoder", "emotion_head"]) == ["front_end", "encoder", "emotion_head"]
    for name, part in (("network.encoder.", model.encoder), ("network.head.", model.emotion_head)):
        for k, v in part.state_dict().items():
            if k != "class_weights":
                assert torch.equal(v, theirs[name + k]), k
    assert torch.equal(model.emotion_head.class_weights, torch.full((4,), 3.0))  # not the source corpus's weights
    other = MTLAugModule.from_flat(class_names=["angry", "happy", "sad", "neutral"], **tiny)
    with pytest.raises(PretrainError, match=r"source\.ckpt: its emotion head predicts .*leave 'emotion_head' out"):
        load_parts(other, src, ["emotion_head"])
    assert load_parts(other, src, ["encoder"]) == ["encoder"]  # other classes: the encoder still transfers
    with pytest.raises(PretrainError, match=r"source\.ckpt: 'encoder' does not match"):
        load_parts(MTLAugModule.from_flat(**(tiny | {"enc_channels": [8, 8]})), src, ["encoder"])
    blob = torch.load(src, weights_only=False)
    blob["speaker_norm"] = {"mode": "speaker"}
    torch.save(blob, tmp_path / "speakernorm.ckpt")
    with pytest.raises(PretrainError, match=r"speakernorm\.ckpt: trained with speaker-level .* utterance-level"):
        load_parts(model, tmp_path / "speakernorm.ckpt", ["encoder"])
    with pytest.raises(PretrainError, match=r"source\.ckpt: trained with utterance-level .* utterance_mean-level"):
        load_parts(MTLAugModule.from_flat(class_names=classes, normalize="utterance_mean", **tiny), src, ["encoder"])
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(PretrainError, match=r"empty\.ckpt.*empty file"):
        load_parts(model, tmp_path / "empty.ckpt", ["encoder"])
    from mtl_aug.tasks.pretrained import save_parts

    enc = save_parts(model, tmp_path / "enc.pt", {})  # an unlabelled pre-training file has no emotion head
    with pytest.raises(PretrainError, match=r"enc\.pt: cannot initialise 'emotion_head'"):
        load_parts(model, enc, ["emotion_head"])
