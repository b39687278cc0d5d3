"""The emotion task: the network's emotion head (BLSTM -> attention -> embedding -> classes), its
cross-entropy + center loss on the labelled rows of a training step, and its metrics per stage.

Its head is the last stage of the network (:class:`~mtl_aug.network.EmotionNetwork`), so validation,
test and predict run the network's one forward path; unlabelled rows never reach this loss.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import functional as F

from mtl_aug.heads import EmotionClassifier
from mtl_aug.heads.emotion import balanced_class_weights
from mtl_aug.metrics import confusion_matrix_metric, emotion_metrics
from mtl_aug.network import FUNCTIONAL_DIMS

from .base import Shared, Step, Task


class EmotionTask(Task):
    """Args:
        weight: weight of this task's loss in the multitask sum (1 in every system of the paper).
        center_lambda: weight of the center loss on the embedding (labelled, un-mixed rows).
        class_weights: per-class CE weights (class-index order), or "balanced": inverse class frequency of
            the fold's training set, computed when fitting starts (kept in checkpoints).
        lstm_hidden / lstm_layers / attn_dim / embed_dim / dropout: the head's sizes and dropout.
        center_alpha: centre update rate of the center loss (centres are a buffer, not optimised).
        label_smoothing: share of each labelled row's CE target spread uniformly over the classes.
        side_hidden: width of the layer that reads the functionals (a network that fuses them).
    """

    name = "emotion"

    def __init__(self, weight: float = 1.0, center_lambda: float = 0.01, class_weights: list[float] | str | None = None,
                 lstm_hidden: int = 128, lstm_layers: int = 1, attn_dim: int = 128, embed_dim: int = 128,
                 dropout: float = 0.3, center_alpha: float = 0.5, label_smoothing: float = 0.0,
                 side_hidden: int = 64) -> None:
        super().__init__(weight)
        if isinstance(class_weights, str) and class_weights != "balanced":
            raise ValueError(f"class_weights must be a list of floats or 'balanced', got {class_weights!r}")
        self.center_lambda, self.class_weights = center_lambda, class_weights
        self.head_args = dict(lstm_hidden=lstm_hidden, lstm_layers=lstm_layers, attn_dim=attn_dim, dropout=dropout,
                              embed_dim=embed_dim, center_alpha=center_alpha, label_smoothing=label_smoothing,
                              side_hidden=side_hidden)
        self.test_confusion: list[list[int]] = []
        self.test_predictions: list[dict[str, Any]] = []
        self._test_rows: list[dict[str, Any]] = []

    def build(self, shared: Shared) -> None:
        net, c = shared.network, len(shared.class_names)
        if c < 2:
            raise ValueError("need at least 2 class_names")
        h = self.head_args
        weights = self.class_weights if not isinstance(self.class_weights, str) else None
        net.head = EmotionClassifier(net.encoder.out_dim, c, h["lstm_hidden"], h["lstm_layers"], h["attn_dim"],
                                     h["dropout"], h["embed_dim"], weights, h["center_alpha"], h["label_smoothing"],
                                     FUNCTIONAL_DIMS[net.functionals] if net.functionals else 0, h["side_hidden"])
        self.train_metrics = emotion_metrics(c, prefix="train/")
        self.val_metrics = emotion_metrics(c, prefix="val/")
        self.test_metrics = emotion_metrics(c, prefix="test/")
        self.test_confmat = confusion_matrix_metric(c)

    @property
    def head(self) -> EmotionClassifier:
        return self.shared.network.head

    def prepare_fit(self, datamodule) -> None:
        if self.class_weights == "balanced":
            labels = [it.label for it in datamodule.datasets["train"].items]
            weights = balanced_class_weights(labels, self.head.classifier.out_features)
            self.head.class_weights.copy_(torch.tensor(weights))

    # -- training ------------------------------------------------------------------------------------------
    def loss(self, step: Step, host: L.LightningModule) -> tuple[Tensor, dict[str, Tensor]]:
        out, labels = step.out, step.labels
        lab = out.targets.sum(-1) > 0
        if bool(lab.any()):
            logits, embedding, _ = self.head(step.z[lab], step.z_lengths[lab], out.extra[lab] if step.has_side else None)
            em = self.head.loss(logits, embedding, out.targets[lab], labels[lab], out.mixed[lab], self.center_lambda)
            unmixed = ~out.mixed[lab]
            if bool(unmixed.any()):  # training accuracy on rows whose label is well defined
                self.train_metrics.update(logits[unmixed].argmax(-1), labels[lab][unmixed])
                host.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        else:  # a batch without labelled rows: auxiliary terms only
            em = {k: step.z.new_zeros(()) for k in ("ce", "center", "total")}
        return em["total"], {"ce": em["ce"], "center": em["center"]}

    # -- evaluation (no augmentation): the network's forward path ------------------------------------------
    def logits(self, batch: dict) -> Tensor:
        net = self.shared.network
        return net(batch["wave"], batch["lengths"], batch.get("functionals"), net.groups(batch))

    def evaluate(self, batch: dict, stage: str, host: L.LightningModule) -> tuple[Tensor, Tensor, Tensor]:
        logits = self.logits(batch)
        labels = batch["label"]
        lab = labels >= 0
        n_lab = int(lab.sum())
        if n_lab > 0:  # rows with label -1 are predicted but not scored
            loss = F.cross_entropy(logits[lab], labels[lab], weight=self.head.class_weights)
            metrics = self.val_metrics if stage == "val" else self.test_metrics
            metrics.update(logits[lab].argmax(-1), labels[lab])
            # {stage}/loss = emotion CE only (class-weighted like training, no center term)
            host.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=n_lab)
            host.log_dict(metrics, on_step=False, on_epoch=True)
        return logits, labels, lab

    def start_test_epoch(self) -> None:
        self._test_rows = []

    def test_batch(self, batch: dict, host: L.LightningModule) -> None:
        logits, labels, lab = self.evaluate(batch, "test", host)
        if bool(lab.any()):
            self.test_confmat.update(logits[lab].argmax(-1), labels[lab])
        probs = torch.softmax(logits.float(), -1).cpu()
        for i, (key, spk) in enumerate(zip(batch["key"], batch["speaker"])):
            self._test_rows.append({"key": key, "speaker": spk, "label": int(labels[i]), "pred": int(probs[i].argmax()),
                                    "probs": probs[i].tolist()})

    def finish_test_epoch(self) -> None:
        self.test_confusion = self.test_confmat.compute().cpu().long().tolist()  # synced across ranks
        self.test_confmat.reset()
        rows = self._test_rows
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        unique = {r["key"]: r for r in rows}  # a distributed sampler may repeat rows to even out ranks
        self.test_predictions = sorted(unique.values(), key=lambda r: r["key"])
        self._test_rows = []

    def predict(self, batch: dict) -> dict[str, Any]:
        probs = torch.softmax(self.logits(batch).float(), -1)
        return {"key": batch["key"], "probs": probs, "pred": probs.argmax(-1)}

    # -- Lightning hooks when trained alone (STL) ------------------------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "val", self)

    def on_test_epoch_start(self) -> None:
        self.start_test_epoch()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.test_batch(batch, self)

    def on_test_epoch_end(self) -> None:
        self.finish_test_epoch()

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        return self.predict(batch)
