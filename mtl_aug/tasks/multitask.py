"""The multitask LightningModule: composes the network, the augmentation policy and the task heads.

    loss = Σ_task weight_task · L_task      (MTL-AUG: CE + λ·center + w_recon·L_recon + w_aug·L_aug)

Every component is given by class path (in a config: ``model.front_end``, ``model.encoder``,
``model.augment``, ``model.emotion``, ``model.reconstruction``, ``model.aug_classification``,
``model.extra_tasks``; see ``docs/architecture.md``) and built here, in a fixed order (front end, policy,
encoder, then each task's head), with the sizes it needs injected: the same settings and seed give the
same initial weights. A task whose weight is 0 (or that is null) is not built: its loss is never computed
and DDP never sees unused parameters. Unlabelled rows (label -1) reach the encoder through the auxiliary
tasks only.

Systems (experiments/systems/): STL = emotion task only, policy disabled; STL+aug = emotion task with the
policy; MTL-AUG = all three tasks; encoder pre-training (``python -m mtl_aug pretrain``) = the two
auxiliary tasks alone, no emotion task.

Under DDP every rank seeds its augmentation policy with the same seed (same chunk pattern, different data);
the center-loss centres are all-reduced; test predictions are gathered from all ranks.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning as L
from torch import Tensor, nn

from mtl_aug import __version__
from mtl_aug.allocator import tune_cpu_allocator
from mtl_aug.augment import AugmentationPolicy
from mtl_aug.encoder import ConvEncoder
from mtl_aug.features import LogMelFrontEnd
from mtl_aug.network import EmotionNetwork

from . import legacy
from .augmentation import AugmentationTask
from .base import Optimization, Shared, Task, log_training_step, shared_step
from .config import (CHECKPOINT_FORMAT, FORMAT_KEY, GROUP_NORM_KEY, READABLE_FORMATS, CheckpointFormatError, build_module,
                     load_module, normalize_hparams)
from .emotion import EmotionTask
from .reconstruction import ReconstructionTask


class MTLAugModule(L.LightningModule):
    CHECKPOINT_FORMAT = CHECKPOINT_FORMAT

    def __init__(
        self,
        front_end: Callable[[int], LogMelFrontEnd] = LogMelFrontEnd,
        encoder: Callable[[int, int], ConvEncoder] = ConvEncoder,
        augment: Callable[[int], AugmentationPolicy] = AugmentationPolicy,
        emotion: Callable[[], EmotionTask] | None = EmotionTask,
        reconstruction: Callable[[], ReconstructionTask] | None = ReconstructionTask,
        aug_classification: Callable[[], AugmentationTask] | None = AugmentationTask,
        extra_tasks: list[Callable[[], Task]] = [],
        optimization: Optimization = Optimization(),
        class_names: list[str] = ["angry", "happy", "neutral", "sad"],
        sample_rate: int = 16000,
        functionals: str | None = None,
        tta_crops: int = 1,
        tta_crop_seconds: float | None = None,
        init_from: str | None = None,
        init_parts: list[str] = ["front_end", "encoder"],
    ) -> None:
        """
        Args:
            front_end / encoder / augment: the components, built with the sample rate (front end, policy) and
                the front end's band and track counts (encoder) injected.
            emotion / reconstruction / aug_classification / extra_tasks: the task heads (:class:`Task`
                subclasses); null or weight 0 = not built.
            class_names / sample_rate / functionals: follow the data (the CLI links them to ``data.*``);
                ``functionals`` (``egemaps`` / ``compare``) fuses the utterance's openSMILE functionals into the
                emotion head, standardised with the training set's statistics (kept in the model).
            tta_crops / tta_crop_seconds: test-time multi-crop of the network (1 = the whole utterance).
            init_from: a pre-trained encoder file (``python -m mtl_aug pretrain``) or a model checkpoint
                (``.ckpt``, e.g. another corpus's release): when fitting starts, the ``init_parts`` (front_end,
                encoder, decoder, aug_head; emotion_head from a checkpoint with the same classes) take its weights.
        """
        super().__init__()
        self.save_hyperparameters()
        normalize_hparams(self)
        front = front_end(sample_rate)
        policy = augment(sample_rate)
        enc = encoder(front.n_mels, front.out_dim - front.n_mels)
        self.network = EmotionNetwork(front, enc, None, functionals, tta_crops, tta_crop_seconds)
        self.augment = policy
        self.optimization = optimization
        shared = Shared(self.network, policy, list(class_names))
        made = [f() for f in (emotion, reconstruction, aug_classification, *extra_tasks) if f is not None]
        tasks = nn.ModuleDict()
        for task in made:
            if task.name in tasks:
                raise ValueError(f"two tasks are called '{task.name}'")
            if task.weight > 0 or isinstance(task, EmotionTask):  # the emotion head is the network's: always built
                tasks[task.name] = task.attach(shared)
        self.tasks = tasks

    @property
    def emotion(self) -> EmotionTask | None:
        return next((t for t in self.tasks.values() if isinstance(t, EmotionTask)), None)

    # -- the parts, under the names pre-trained encoder files and ``init_parts`` use -------------------------
    @property
    def front_end(self) -> nn.Module:
        return self.network.front_end

    @property
    def encoder(self) -> nn.Module:
        return self.network.encoder

    @property
    def emotion_head(self) -> nn.Module | None:
        return self.network.head

    @property
    def decoder(self) -> nn.Module | None:
        task = self.tasks["reconstruction"] if "reconstruction" in self.tasks else None
        return task.head if task is not None else None

    @property
    def aug_head(self) -> nn.Module | None:
        task = self.tasks["aug_classification"] if "aug_classification" in self.tasks else None
        return task.head if task is not None else None

    # -- inference: the network ---------------------------------------------------------------------------
    def emotion_logits(self, wave: Tensor, lengths: Tensor, functionals: Tensor | None = None) -> Tensor:
        """The network's logits (see :meth:`EmotionNetwork.forward`)."""
        return self.network(wave, lengths, functionals)

    def forward(self, wave: Tensor, lengths: Tensor) -> Tensor:
        return self.network(wave, lengths)

    @property
    def test_confusion(self) -> list[list[int]]:
        return self._emotion_task().test_confusion

    @property
    def test_predictions(self) -> list[dict[str, Any]]:
        return self._emotion_task().test_predictions

    def _emotion_task(self) -> EmotionTask:
        if self.emotion is None:
            raise RuntimeError("this model has no emotion task (pre-training with the auxiliary tasks alone)")
        return self.emotion

    # -- training ------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        net = self.network
        if net.group_norm is not None and not net.group_norm.stats and dm is not None:
            waves, groups = dm.normalization_audio(net.group_norm.mode)
            net.group_norm.fit(net.front_end, waves, groups)
        if stage != "fit":
            return
        if net.functionals:
            x = getattr(dm.datasets["train"], "functionals", None)
            if x is None:
                raise ValueError(f"the model fuses {net.functionals} functionals but the training data carry none "
                                 f"(set --data.functionals={net.functionals})")
            net.fit_functional_stats(x)
        if self.hparams.init_from:
            from .pretrained import load_parts

            load_parts(self, self.hparams.init_from, list(self.hparams.init_parts))
        for task in self.tasks.values():
            task.prepare_fit(dm)

    def on_fit_start(self) -> None:
        if self.device.type == "cpu":
            tune_cpu_allocator()

    def training_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        step = shared_step(Shared(self.network, self.augment, list(self.hparams.class_names)), batch)
        loss, logs = None, {}
        for task in self.tasks.values():
            term, task_logs = task.loss(step, self)
            term = term if task is self.emotion and task.weight == 1.0 else task.weight * term
            loss = term if loss is None else loss + term
            logs.update(task_logs)
        return log_training_step(self, loss, logs, step.labels.size(0))

    # -- evaluation: the emotion task on the network's forward path -----------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._emotion_task().evaluate(batch, "val", self)

    def on_test_epoch_start(self) -> None:
        self._emotion_task().start_test_epoch()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._emotion_task().test_batch(batch, self)

    def on_test_epoch_end(self) -> None:
        self._emotion_task().finish_test_epoch()

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return self._emotion_task().predict(batch)

    def configure_optimizers(self) -> Any:
        return self.optimization.configure(self.parameters(), self._trainer)

    # -- checkpoints -----------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[FORMAT_KEY] = CHECKPOINT_FORMAT
        checkpoint["mtl_aug_version"] = __version__
        checkpoint["mtl_aug_policy_rng"] = self.augment.generator.get_state()  # exact resume of the augmentation stream
        if self.network.group_norm is not None:
            checkpoint[GROUP_NORM_KEY] = self.network.group_norm.state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        fmt = checkpoint.get(FORMAT_KEY)
        if fmt is None:
            raise CheckpointFormatError(
                f"checkpoint has no '{FORMAT_KEY}' key: it was not written by MTLAugModule "
                f"(or by a pre-release version); retrain it with mtl_aug {__version__}")
        if fmt not in READABLE_FORMATS:
            raise CheckpointFormatError(
                f"incompatible checkpoint: {FORMAT_KEY}={fmt!r} (written by mtl_aug "
                f"{checkpoint.get('mtl_aug_version', '?')}), this mtl_aug {__version__} reads format {CHECKPOINT_FORMAT}")
        if fmt == 1:
            checkpoint["state_dict"] = legacy.migrate_state_dict(checkpoint["state_dict"])
        state = checkpoint.get("mtl_aug_policy_rng")
        if state is not None:
            self.augment.generator.set_state(state.cpu() if isinstance(state, Tensor) else state)
        if self.network.group_norm is not None and GROUP_NORM_KEY in checkpoint:
            self.network.group_norm.load(checkpoint[GROUP_NORM_KEY])

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, **kwargs) -> "MTLAugModule":  # type: ignore[override]
        """Through the project's one loader (any readable format; see :func:`mtl_aug.tasks.config.load_module`)."""
        return load_module(cls, checkpoint_path, map_location=map_location, **kwargs)

    @classmethod
    def from_config(cls, config: dict) -> "MTLAugModule":
        """The module of a nested ``model`` config (class paths + init args), as LightningCLI builds it."""
        return build_module(cls, config)

    @classmethod
    def from_flat(cls, **flat: Any) -> "MTLAugModule":
        """The module of the flat settings of format-1 checkpoints and configs (``n_mels=..., w_aug=...``)."""
        return cls.from_config(legacy.nested_from_flat(flat))
