"""One LightningModule per task head: each trains alone over a shared encoder; the multitask module composes
them from config (class paths), so a new head or augmentation is one file plus YAML."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from torch import Tensor

from mtl_aug.augment import AugmentationPolicy
from mtl_aug.augmentations import Augmentation
from mtl_aug.encoder import ConvEncoder
from mtl_aug.features import LogMelFrontEnd
from mtl_aug.network import EmotionNetwork
from mtl_aug.tasks import (AugmentationTask, EmotionTask, MTLAugModule, Optimization, ReconstructionTask, Shared,
                           Step, Task)
from tests.test_model_module import TINY, loader, utterances

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers", "ignore:.*number of training batches", "ignore:.*LeafSpec.*",
    "ignore:You defined a `validation_step` but have no `val_dataloader`")

CLASSES = ["a", "b", "c", "d"]


def shared(augment: bool = True) -> Shared:
    """The shared parts, built as the multitask module builds them (front end, policy, encoder)."""
    front = LogMelFrontEnd(n_mels=32)
    policy = AugmentationPolicy(enabled=augment, seed=0)
    enc = ConvEncoder(32, channels=[8, 16], time_pool=[1, 2], freq_pool=[2, 2], out_dim=32)
    return Shared(EmotionNetwork(front, enc), policy, CLASSES)


def fit_alone(task: Task, batches, epochs: int = 2, val=None) -> tuple[L.Trainer, dict[str, Tensor]]:
    """``trainer.fit(task)`` with the task owning the shared parts; returns the trainer and the weights before."""
    before = {k: v.detach().clone() for k, v in task.state_dict().items()}
    tr = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1 if val else 0)
    tr.fit(task, train_dataloaders=batches, val_dataloaders=val)
    return tr, before


def changed(task: Task, before: dict[str, Tensor], prefix: str) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in task.state_dict().items() if k.startswith(prefix))


def test_emotion_task_trains_alone_as_stl():
    torch.manual_seed(0)
    task = EmotionTask(lstm_hidden=16, attn_dim=16, embed_dim=16).attach(
        shared(augment=False), own=True, optimization=Optimization(scheduler="none", lr=3e-3))
    assert isinstance(task, L.LightningModule) and task.network.head is task.head
    tr, before = fit_alone(task, loader(2, 8), val=loader(1, 8, seed=20))
    assert changed(task, before, "network.encoder.") and changed(task, before, "network.head.")
    assert {"train/loss", "train/ce", "train/center", "train/uar", "val/loss", "val/uar"} <= set(tr.callback_metrics)
    tr.test(task, dataloaders=loader(1, 6, seed=30), verbose=False)
    assert len(task.test_predictions) == 6 and sum(map(sum, task.test_confusion)) == 6


def test_reconstruction_task_trains_the_encoder_alone_on_unlabelled_audio():
    torch.manual_seed(0)
    task = ReconstructionTask(hidden=32).attach(shared(), own=True, optimization=Optimization(scheduler="none"))
    assert task.network.head is None  # no emotion head: self-supervised
    tr, before = fit_alone(task, loader(2, 8, labelled=False))
    assert changed(task, before, "network.encoder.") and changed(task, before, "head.")
    assert {"train/loss", "train/recon"} <= set(tr.callback_metrics) and "train/ce" not in tr.callback_metrics


def test_augmentation_task_trains_the_encoder_alone_on_unlabelled_audio():
    torch.manual_seed(0)
    task = AugmentationTask(hidden=16).attach(shared(), own=True, optimization=Optimization(scheduler="none"))
    tr, before = fit_alone(task, loader(2, 8, labelled=False))
    assert changed(task, before, "network.encoder.") and changed(task, before, "head.")
    assert {"train/aug", "train/aug_acc"} <= set(tr.callback_metrics)
    with pytest.raises(ValueError, match="w_aug"):  # a disabled policy gives the classifier one class
        AugmentationTask().attach(shared(augment=False), own=True)


def test_auxiliary_tasks_alone_compose_into_pretraining():
    """``emotion: null``: the multitask module of ``python -m mtl_aug pretrain``."""
    torch.manual_seed(0)
    model = MTLAugModule.from_config(MTLAugModule.from_flat(**TINY).hparams | {"emotion": None})
    assert model.emotion is None and model.emotion_head is None and set(model.tasks) == {"reconstruction",
                                                                                         "aug_classification"}
    out = model.training_step(utterances(8, labelled=False), 0)
    assert set(out) == {"loss", "recon", "aug"} and torch.isfinite(out["loss"])


class VarianceTask(Task):
    """A new head in one file: predict each row's log feature variance from Z (an auxiliary regression)."""

    name = "variance"

    def __init__(self, weight: float = 1.0, hidden: int = 8) -> None:
        super().__init__(weight)
        self.hidden = hidden

    def build(self, shared: Shared) -> None:
        self.head = torch.nn.Sequential(torch.nn.Linear(shared.network.encoder.out_dim, self.hidden),
                                        torch.nn.ReLU(), torch.nn.Linear(self.hidden, 1))

    def loss(self, step: Step, host: L.LightningModule) -> tuple[Tensor, dict[str, Tensor]]:
        pred = self.head(step.z.mean(1)).squeeze(-1)
        target = step.out.feats.var(dim=(1, 2)).clamp(min=1e-6).log().detach()
        loss = torch.nn.functional.mse_loss(pred, target)
        return loss, {"variance": loss}


class Silence(Augmentation):
    """A new augmentation in one file: its chunk's waveforms scaled by ``silence_gain``."""

    def __init__(self, silence_gain: float = 0.0, **_: object) -> None:
        super().__init__()
        self.gain = silence_gain

    def on_wave(self, wave: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return wave * self.gain, lengths


def test_a_new_head_and_a_new_augmentation_are_one_file_plus_yaml(tmp_path, monkeypatch):
    from mtl_aug.training import make_cli

    recipe = tmp_path / "variance.yaml"
    recipe.write_text(
        "model:\n"
        "  extra_tasks:\n"
        "    - class_path: tests.test_tasks.VarianceTask\n"
        "      init_args: {weight: 0.5, hidden: 4}\n"
        "  augment:\n"
        "    init_args:\n"
        "      types: [none, speed, specaug, mixup, tests.test_tasks.Silence]\n"
        "      options: {silence_gain: 0.1}\n")
    cli = make_cli(["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml",
                    "--config", "experiments/systems/mtl_aug.yaml", "--config", str(recipe), "--trainer.logger=false",
                    *(f"--model.{k}={v}" for k, v in TINY.items())], run=False)
    model = cli.model
    assert list(model.tasks) == ["emotion", "reconstruction", "aug_classification", "variance"]
    assert model.augment.types[-1] == "tests.test_tasks.Silence" and model.augment.augs[-1].gain == 0.1
    assert model.tasks["aug_classification"].head.mlp[-1].out_features == 5  # the classifier sees the new type
    model.log = lambda *a, **k: None
    model.log_dict = lambda *a, **k: None
    out = model.training_step(utterances(10), 0)
    assert {"variance", "recon", "aug", "ce"} <= set(out)
    out["loss"].backward()
    assert model.tasks["variance"].head[0].weight.grad.abs().sum() > 0
    assert model.hparams["extra_tasks"][0]["class_path"].endswith("VarianceTask")  # saved with the checkpoint


def test_components_given_as_python_factories_are_saved_as_class_paths():
    torch.manual_seed(0)
    encoder = partial(ConvEncoder, channels=[8, 8], time_pool=[1, 2], freq_pool=[2, 2], out_dim=16)
    model = MTLAugModule(front_end=partial(LogMelFrontEnd, n_mels=32), encoder=encoder, reconstruction=None,
                         aug_classification=partial(AugmentationTask, weight=0.0))
    assert model.decoder is None and model.aug_head is None
    assert model.hparams["encoder"] == {"class_path": "mtl_aug.encoder.ConvEncoder", "init_args": {
        "channels": [8, 8], "time_pool": [1, 2], "freq_pool": [2, 2], "out_dim": 16}}
    rebuilt = MTLAugModule.from_config(dict(model.hparams))
    assert [k for k in rebuilt.state_dict()] == [k for k in model.state_dict()]


def test_augmentation_accuracy_is_over_the_epochs_rows_not_a_mean_of_batch_means():
    """``train/aug_acc`` is logged as a torchmetrics object (DDP-synced): batches of 8 and 3 rows weigh 8:3."""
    from mtl_aug.tasks.base import shared_step

    class Host:  # records what the task logs
        def __init__(self) -> None:
            self.logged: dict = {}

        def log(self, name, value, **kwargs) -> None:
            self.logged[name] = (value, kwargs)

    torch.manual_seed(0)
    task, host = AugmentationTask(hidden=16).attach(shared(), own=True), Host()
    seen = []
    head_forward = task.head.forward
    task.head.forward = lambda z, n: seen.append(head_forward(z, n)) or seen[-1]
    correct = total = 0
    for n, seed in ((8, 1), (3, 2)):
        step = shared_step(task.shared, utterances(n, labelled=False, seed=seed))
        task.loss(step, host)
        correct += int((seen[-1].argmax(-1) == step.out.aug_label).sum())
        total += n
    metric, kwargs = host.logged["train/aug_acc"]
    assert metric is task.train_accuracy and kwargs["on_epoch"]
    assert float(metric.compute()) == pytest.approx(correct / total)
