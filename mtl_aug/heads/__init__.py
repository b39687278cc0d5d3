"""Task heads: pure ``nn.Module``s, each owning its loss."""

from mtl_aug.heads.augmentation import AugmentationClassifier
from mtl_aug.heads.center_loss import CenterLoss
from mtl_aug.heads.decoder import ReconstructionDecoder
from mtl_aug.heads.emotion import AttentionPooling, EmotionClassifier

__all__ = ["AttentionPooling", "AugmentationClassifier", "CenterLoss", "EmotionClassifier", "ReconstructionDecoder"]
