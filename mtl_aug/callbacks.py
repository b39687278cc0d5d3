"""Callbacks for people reading logs: one line per epoch when the progress bar is off (CI, cv runs)."""

from __future__ import annotations

import time

import lightning as L


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
