"""Tasks layer: one LightningModule per task head over the shared encoder, and the multitask module.

* :class:`EmotionTask` — the network's emotion head: CE + center loss, UAR/WA/F1 per stage;
* :class:`ReconstructionTask` — a decoder rebuilds the encoder's input: MSE over valid frames;
* :class:`AugmentationTask` — which augmentation did a row get: CE over the policy's types;
* :class:`MTLAugModule` — composes the network, the augmentation policy and the tasks with their weights.

Each task trains alone too (``task.attach(Shared(...), own=True)``, then ``trainer.fit(task)``).
"""

from .augmentation import AugmentationTask
from .base import Optimization, Shared, Step, Task
from .config import CHECKPOINT_FORMAT, CheckpointFormatError
from .emotion import EmotionTask
from .multitask import MTLAugModule
from .reconstruction import ReconstructionTask

__all__ = ["AugmentationTask", "CHECKPOINT_FORMAT", "CheckpointFormatError", "EmotionTask", "MTLAugModule",
           "Optimization", "ReconstructionTask", "Shared", "Step", "Task"]
