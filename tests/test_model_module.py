"""MTLAugModule: training step on combined batches, STL wiring, overfitting, Lightning integration,
checkpoint round trip."""

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from mtl_aug.masking import lengths_to_mask
from mtl_aug.tasks import CheckpointFormatError, MTLAugModule


pytestmark = pytest.mark.filterwarnings(
    "ignore:You are trying to `self.log",
    "ignore:.*does not have many workers",
    "ignore:.*number of training batches",
    "ignore:.*LeafSpec.*",
    "ignore:You defined a `validation_step` but have no `val_dataloader`",
)

TINY = dict(
    n_mels=32, enc_channels=[8, 16], enc_time_pool=[1, 2], enc_freq_pool=[2, 2], enc_out_dim=32,
    lstm_hidden=16, attn_dim=16, embed_dim=16, dec_hidden=32, aug_hidden=16, head_dropout=0.1,
)
SR = 16000


def utterances(n: int, labelled: bool = True, seed: int = 0, t: int = 8000, c: int = 4) -> dict:
    """A collated batch dict: class k = a tone at 300 * 3**k Hz (+ noise), random valid lengths."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(t // 2, t + 1, (n,), generator=g)
    labels = torch.arange(n) % c
    time = torch.arange(t) / SR
    freq = 300.0 * 3.0 ** labels.float()
    wave = 0.3 * torch.sin(2 * math.pi * freq.unsqueeze(1) * time) + 0.01 * torch.randn(n, t, generator=g)
    return {
        "wave": wave * lengths_to_mask(lengths, t),
        "lengths": lengths,
        "label": labels if labelled else torch.full((n,), -1),
        "key": [f"{'l' if labelled else 'u'}{seed}_{i}" for i in range(n)],
        "speaker": [f"spk{i % 2}" for i in range(n)],
    }


def loader(n_batches: int, n: int, labelled: bool = True, seed: int = 0) -> DataLoader:
    batches = [utterances(n, labelled, seed + i) for i in range(n_batches)]
    return DataLoader(batches, batch_size=None)  # each item is already a collated batch


def trainer(**kw) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, **kw)


def test_training_step_on_combined_and_labelled_only_batches():
    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY).train()
    combined = {"labelled": utterances(8, seed=1), "unlabelled": utterances(8, labelled=False, seed=2, t=6000)}
    for batch in (combined, {"labelled": utterances(8, seed=3)}, utterances(8, seed=4)):
        model.zero_grad()
        out = model.training_step(batch, 0)
        assert set(out) == {"loss", "ce", "center", "recon", "aug"}
        assert torch.isfinite(out["loss"])
        out["loss"].backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.decoder is not None and model.aug_head is not None


def test_stl_builds_and_computes_no_auxiliary_heads():
    model = MTLAugModule.from_flat(augment=False, w_recon=0.0, w_aug=0.0, **TINY).train()
    assert model.decoder is None and model.aug_head is None  # never built: no loss, no gradient
    batch = {"labelled": utterances(6, seed=1), "unlabelled": utterances(6, labelled=False, seed=2)}
    out = model.training_step(batch, 0)
    assert set(out) == {"loss", "ce", "center"}
    out["loss"].backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    # an ablation keeps exactly the other auxiliary head
    no_recon = MTLAugModule.from_flat(augment=True, w_recon=0.0, w_aug=1.0, **TINY).train()
    out = no_recon.training_step(batch, 0)
    out["loss"].backward()
    assert no_recon.decoder is None and "recon" not in out
    assert any(p.grad.abs().sum() > 0 for p in no_recon.aug_head.parameters())
    with pytest.raises(ValueError, match="w_aug"):
        MTLAugModule.from_flat(augment=False, w_aug=1.0, **TINY)


@pytest.mark.parametrize("augment", [False, True])
def test_unlabelled_rows_reach_only_the_auxiliary_losses(augment):
    """End to end through the policy (mixup included): with no auxiliary loss the unlabelled waves get
    exactly zero gradient; with the auxiliary losses on they get some."""
    grads = {}
    for w_aux in (0.0, 1.0):
        torch.manual_seed(0)
        model = MTLAugModule.from_flat(augment=augment, w_recon=w_aux, w_aug=w_aux if augment else 0.0, **TINY).train()
        lab, unl = utterances(8, seed=1), utterances(8, labelled=False, seed=2)
        unl["wave"].requires_grad_(True)
        model.training_step({"labelled": lab, "unlabelled": unl}, 0)["loss"].backward()
        grads[w_aux] = unl["wave"].grad
    assert torch.all(grads[0.0] == 0)
    assert grads[1.0].abs().sum() > 0


def test_tiny_overfit_reaches_full_training_accuracy():
    torch.manual_seed(0)
    model = MTLAugModule.from_flat(class_names=["low", "high"], scheduler="none", lr=3e-3, **TINY)
    batch = utterances(8, seed=0, c=2)
    opt = model.configure_optimizers()
    model.train()
    for step in range(30):
        opt.zero_grad()
        model.training_step(batch, step)["loss"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model.emotion_logits(batch["wave"], batch["lengths"]).argmax(-1)
    assert torch.equal(pred, batch["label"])


def test_lightning_fit_validate_test_predict_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY)
    tr = trainer(max_epochs=1)
    train = {"labelled": loader(2, 8), "unlabelled": loader(2, 8, labelled=False, seed=10)}
    tr.fit(model, train_dataloaders=train, val_dataloaders=loader(1, 8, seed=20))
    logged = set(tr.callback_metrics)
    expected = {"train/loss", "train/ce", "train/center", "train/recon", "train/aug", "train/aug_acc",
                "val/loss", "val/uar", "val/wa", "val/f1"}
    assert expected <= logged, expected - logged

    tr.test(model, dataloaders=loader(2, 6, seed=30), verbose=False)
    assert {"test/uar", "test/wa", "test/f1"} <= set(tr.callback_metrics)
    cm = torch.tensor(model.test_confusion)
    assert cm.shape == (4, 4) and int(cm.sum()) == 12
    assert len(model.test_predictions) == 12
    row = model.test_predictions[0]
    assert set(row) == {"key", "speaker", "label", "pred", "probs"} and abs(sum(row["probs"]) - 1) < 1e-5
    uar = sum(cm[i, i] / cm[i].sum() for i in range(4) if cm[i].sum() > 0) / int((cm.sum(1) > 0).sum())
    assert abs(float(uar) - float(tr.callback_metrics["test/uar"])) < 1e-6

    preds = tr.predict(model, dataloaders=loader(1, 5, seed=40))
    assert set(preds[0]) == {"key", "probs", "pred"} and preds[0]["probs"].shape == (5, 4)

    path = tmp_path / "model.ckpt"
    tr.save_checkpoint(path)
    loaded = MTLAugModule.load_from_checkpoint(path)
    assert loaded.hparams["encoder"]["init_args"]["channels"] == [8, 16] and loaded.decoder is not None
    batch = utterances(3, seed=50)
    model.eval(), loaded.eval()
    with torch.no_grad():
        a = model.emotion_logits(batch["wave"], batch["lengths"])
        b = loaded.emotion_logits(batch["wave"], batch["lengths"])
    assert torch.equal(a, b)

    ckpt = torch.load(path, weights_only=False)
    ckpt["mtl_aug_format"] = 999
    torch.save(ckpt, tmp_path / "future.ckpt")
    with pytest.raises(CheckpointFormatError, match="incompatible checkpoint: mtl_aug_format=999"):
        MTLAugModule.load_from_checkpoint(tmp_path / "future.ckpt")
    del ckpt["mtl_aug_format"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointFormatError, match="no 'mtl_aug_format'"):
        MTLAugModule.load_from_checkpoint(tmp_path / "old.ckpt")


def test_stl_fit_logs_no_auxiliary_losses():
    model = MTLAugModule.from_flat(augment=False, w_recon=0.0, w_aug=0.0, scheduler="cosine", **TINY)
    tr = trainer(max_epochs=1, limit_val_batches=0)
    tr.fit(model, train_dataloaders={"labelled": loader(1, 6)})
    logged = set(tr.callback_metrics)
    assert {"train/loss", "train/ce", "train/center"} <= logged
    assert not {"train/recon", "train/aug", "train/aug_acc"} & logged


def test_balanced_class_weights_from_the_training_split():
    from types import SimpleNamespace

    from mtl_aug.data.dataset import Item

    model = MTLAugModule.from_flat(**TINY, class_weights="balanced")
    items = [Item(f"k{i}", None, y, "s") for i, y in enumerate([0, 0, 0, 0, 1, 1, 2, 3])]
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(datasets={"train": SimpleNamespace(items=items)}))
    model.setup("fit")
    assert model.emotion_head.class_weights.tolist() == pytest.approx([0.5, 1.0, 2.0, 2.0])
    assert "network.head.class_weights" in model.state_dict()  # the fold's weights travel with the checkpoint
    with pytest.raises(ValueError, match="balanced"):
        MTLAugModule.from_flat(**TINY, class_weights="inverse")
