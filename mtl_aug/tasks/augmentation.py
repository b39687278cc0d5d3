"""The augmentation-classification task: which augmentation (chunk of the policy) did each row get?"""

from __future__ import annotations

import lightning as L
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from mtl_aug.heads import AugmentationClassifier

from .base import Shared, Step, Task


class AugmentationTask(Task):
    """Args:
        weight: the augmentation-type loss's weight (``w_aug``); 0 = the classifier is not built.
        hidden / dropout: the classifier's MLP.
    Needs an enabled policy with at least 2 types (its classes). Logs ``train/aug`` (CE) and ``train/aug_acc``
    (accuracy over the epoch's rows, a torchmetrics object: summed over DDP ranks, not a mean of batch means)."""

    name = "aug_classification"

    def __init__(self, weight: float = 1.0, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__(weight)
        self.hidden, self.dropout = hidden, dropout

    def build(self, shared: Shared) -> None:
        policy = shared.augment
        if not policy.enabled or policy.num_types < 2:
            raise ValueError("the augmentation-classification task (w_aug > 0) needs the augmentation policy enabled "
                             "(augment=True) with at least 2 types: its classifier would have one class; set its "
                             "weight (w_aug) to 0 for STL")
        self.head = AugmentationClassifier(shared.network.encoder.out_dim, policy.num_types, self.hidden, self.dropout)
        self.train_accuracy = MulticlassAccuracy(num_classes=policy.num_types, average="micro")

    def loss(self, step: Step, host: L.LightningModule) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.head(step.z, step.z_lengths)
        loss = self.head.loss(logits, step.out.aug_label)
        self.train_accuracy(logits.detach().argmax(-1), step.out.aug_label)  # the step's value, and the epoch's state
        host.log("train/aug_acc", self.train_accuracy, on_step=True, on_epoch=True, batch_size=logits.size(0))
        return loss, {"aug": loss}
