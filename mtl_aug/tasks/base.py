"""What every task shares: the optimisation settings, the shared forward of a training batch, the
:class:`Task` base class (a LightningModule per task head) and the logging of a training step.

A task reads the shared encoder's output of a training batch (a :class:`Step`) and returns its loss and
what it logs. It is trained either inside :class:`~mtl_aug.tasks.multitask.MTLAugModule` (which owns the
network and the augmentation policy and sums the tasks' weighted losses) or alone: ``task.attach(shared,
own=True)`` makes the task own the shared parts, and ``trainer.fit(task)`` trains the encoder with that
task's loss only (the emotion task alone = STL; the auxiliary tasks alone = self-supervised pre-training).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import lightning as L
import torch
from torch import Tensor
from torch.nn import functional as F

from mtl_aug.allocator import tune_cpu_allocator
from mtl_aug.augment import AugmentationPolicy, AugmentedBatch
from mtl_aug.masking import pad_to
from mtl_aug.network import EmotionNetwork

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("plateau", "cosine", "none")


@dataclass
class Optimization:
    """Optimiser and learning-rate schedule.

    scheduler: "plateau" (on val/uar, mode max; needs a validation loop), "cosine" (T_max = cosine_t_max or
    trainer.max_epochs), "none". SGD uses momentum 0.9."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    scheduler: str = "plateau"
    lr_patience: int = 3
    lr_factor: float = 0.5
    cosine_t_max: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")

    def configure(self, params, trainer) -> Any:
        """``configure_optimizers``' return value for ``params``."""
        kwargs: dict[str, Any] = {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            kwargs["momentum"] = 0.9
        opt = OPTIMIZERS[self.optimizer](params, **kwargs)
        if self.scheduler == "none":
            return opt
        if self.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=self.lr_factor,
                                                               patience=self.lr_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/uar", "interval": "epoch"}}
        max_epochs = trainer.max_epochs if trainer is not None else None
        t_max = self.cosine_t_max or (max_epochs if max_epochs and max_epochs > 0 else None)
        if t_max is None:
            raise ValueError("scheduler='cosine' needs cosine_t_max or trainer.max_epochs")
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max)}


@dataclass
class Shared:
    """The parts every task head sits on: the network (front end, shared encoder, emotion head slot) and the
    augmentation policy; plus the label set."""

    network: EmotionNetwork
    augment: AugmentationPolicy
    class_names: list[str] = field(default_factory=list)


class Step(NamedTuple):
    """The shared forward of one training batch, which every task's loss reads."""

    out: AugmentedBatch  # augmented features, aug labels, (mixed) soft targets, side features
    z: Tensor  # [B, T', D] encoder output
    z_lengths: Tensor  # [B]
    labels: Tensor  # [B] class index, -1 for unlabelled rows
    has_side: bool  # the rows carry side features (functionals fusion)


def merge_batch(batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor | None, dict[str, list]]:
    """Labelled (+ unlabelled) rows -> one batch padded to a common T; unlabelled labels forced to -1; the
    rows' functionals when every part carries them; the rows' corpus and speaker (normalisation groups)."""
    if "wave" in batch:
        parts = [(batch, False)]
    else:
        parts = [(batch["labelled"], False)]
        if batch.get("unlabelled") is not None:
            parts.append((batch["unlabelled"], True))
    t = max(p["wave"].size(1) for p, _ in parts)
    wave = torch.cat([pad_to(p["wave"], t) for p, _ in parts])
    lengths = torch.cat([p["lengths"] for p, _ in parts])
    labels = torch.cat([torch.full_like(p["lengths"], -1) if unl else p["label"] for p, unl in parts])
    func = torch.cat([p["functionals"] for p, _ in parts]) if all("functionals" in p for p, _ in parts) else None
    rows = {k: [v for p, _ in parts for v in p.get(k, [])] for k in ("corpus", "speaker")}
    return wave, lengths, labels, func, rows


def soft_targets(labels: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(labels.clamp(min=0), num_classes).float() * (labels >= 0).unsqueeze(1).float()


def shared_step(shared: Shared, batch: dict) -> Step:
    """Merge, augment (policy + front end), encode: what the tasks of one training step share."""
    net = shared.network
    wave, lengths, labels, func, rows = merge_batch(batch)
    groups = net.groups(rows)
    side = net.side(wave, lengths, func)
    out = shared.augment(wave, lengths, soft_targets(labels, len(shared.class_names)),
                         lambda w, n: net.features(w, n, groups), side)
    z, z_lengths = net.encode(out.feats, out.frame_lengths)
    return Step(out, z, z_lengths, labels, side is not None)


def log_training_step(host: L.LightningModule, loss: Tensor, logs: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """Log a training step's total and per-task terms (``train/<name>``); the ``training_step`` return value."""
    host.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=n)
    for k, v in logs.items():
        host.log(f"train/{k}", v, on_step=True, on_epoch=True, sync_dist=True, batch_size=n)
    return {"loss": loss, **{k: v.detach() for k, v in logs.items()}}


class Task(L.LightningModule):
    """One task head over the shared encoder.

    Subclasses set ``name`` (the task's key in the multitask module and its checkpoints), build their head
    in :meth:`build` from the shared parts' sizes, and return ``(loss, logs)`` from :meth:`loss`; ``logs``
    are logged as ``train/<key>``. A task whose ``weight`` is 0 is not built by the multitask module."""

    name: ClassVar[str] = "task"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self._shared: Shared | None = None  # a plain attribute: the multitask module registers the shared parts
        self._optimization = Optimization()

    # -- composition -------------------------------------------------------------------------------------
    def attach(self, shared: Shared, own: bool = False, optimization: Optimization | None = None) -> "Task":
        """Build the head on ``shared``. ``own=True``: the task is trained alone and owns the shared parts
        (registered as its own submodules: optimised and saved with it), with ``optimization``."""
        if own:
            self.network, self.augment = shared.network, shared.augment
            self._optimization = optimization or self._optimization
        self._shared = shared
        self.build(shared)
        return self

    @property
    def shared(self) -> Shared:
        if self._shared is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a network: call attach(shared) first")
        return self._shared

    def build(self, shared: Shared) -> None:
        raise NotImplementedError

    def loss(self, step: Step, host: L.LightningModule) -> tuple[Tensor, dict[str, Tensor]]:
        """The task's (unweighted) loss on a training step, and what it logs; ``host`` logs metrics."""
        raise NotImplementedError

    def prepare_fit(self, datamodule) -> None:
        """Statistics of the training data the task needs before fitting (none by default)."""

    # -- training alone ------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.device.type == "cpu":
            tune_cpu_allocator()

    def setup(self, stage: str) -> None:
        if stage == "fit" and self._trainer is not None and getattr(self.trainer, "datamodule", None) is not None:
            self.prepare_fit(self.trainer.datamodule)

    def training_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        step = shared_step(self.shared, batch)
        loss, logs = self.loss(step, self)
        return log_training_step(self, loss, logs, step.labels.size(0))

    def configure_optimizers(self) -> Any:
        return self._optimization.configure(self.parameters(), self._trainer)
