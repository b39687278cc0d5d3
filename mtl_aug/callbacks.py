"""Callbacks: one line per epoch for people reading logs (CI, cv runs); stochastic weight averaging."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import WeightAveraging


class EpochSummary(L.Callback):
    """Prints ``epoch 3/40  train/loss_epoch 1.234  val/uar 0.612 (best 0.650)  8.1 s`` per epoch,
    after ``prefix`` (cv sets it to the run, e.g. ``fold 03 seed 1 |``: parallel runs share one log).

    Printed at the end of the training epoch, which Lightning calls after that epoch's validation, so
    the line holds the epoch's own training and validation metrics.
    """

    def __init__(self, keys: list[str] = ["train/loss_epoch", "train/ce_epoch", "val/loss", "val/uar", "val/wa"],
                 only_without_progress_bar: bool = True, prefix: str = "") -> None:
        self.keys = keys
        self.prefix = prefix
        self.only_without_progress_bar = only_without_progress_bar
        self._start = 0.0
        self._best = float("-inf")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self.only_without_progress_bar and trainer.progress_bar_callback is not None:
            return
        m = trainer.callback_metrics
        if "val/uar" in m:
            self._best = max(self._best, float(m["val/uar"]))
        parts = [self.prefix] if self.prefix else []
        parts.append(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")
        parts += [f"{k} {float(m[k]):.3f}" for k in self.keys if k in m]
        if self._best > float("-inf"):
            parts.append(f"(best val/uar {self._best:.3f})")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        print("  ".join(parts), flush=True)


class SWAWeightAveraging(WeightAveraging):
    """Stochastic weight averaging: the equal average of the weights at the end of every epoch from
    ``start_epoch`` on (an int, or a float in (0, 1): that share of ``max_epochs``). Validation, the saved
    checkpoints and the final model use the average once it holds at least one epoch; before that they use
    the current weights (Lightning's ``WeightAveraging`` would show its untrained initial copy)."""

    def __init__(self, start_epoch: int | float = 0.75, use_buffers: bool = True) -> None:
        super().__init__(use_buffers=use_buffers)
        if not (isinstance(start_epoch, int) and start_epoch >= 0) and not (0 < float(start_epoch) < 1):
            raise ValueError(f"start_epoch must be an epoch index >= 0 or a fraction in (0, 1), got {start_epoch}")
        self.start_epoch = start_epoch
        self._start = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        s = self.start_epoch
        self._start = s if isinstance(s, int) else int(s * max(1, trainer.max_epochs or 1))

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return epoch_idx is not None and epoch_idx >= self._start

    def _active(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active():
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active():
            super().on_validation_epoch_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._active():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active():
            super().on_train_end(trainer, pl_module)
