"""The reconstruction task: a decoder rebuilds the encoder's input (or the clean features) from Z."""

from __future__ import annotations

import lightning as L
from torch import Tensor

from mtl_aug.heads import ReconstructionDecoder

from .base import Shared, Step, Task

RECON_TARGETS = ("input", "clean")


class ReconstructionTask(Task):
    """Args:
        weight: the reconstruction loss's weight (``w_recon``); 0 = the decoder is not built.
        hidden: the decoder's width.
        target: "input" = the encoder's (augmented) input, as in the paper; "clean" = the front-end output
            before SpecAugment/mixup (denoising variant; see ``mtl_aug.augment``).
    Logs ``train/recon`` (MSE over valid frames)."""

    name = "reconstruction"

    def __init__(self, weight: float = 1.0, hidden: int = 128, target: str = "input") -> None:
        super().__init__(weight)
        if target not in RECON_TARGETS:
            raise ValueError(f"recon_target must be one of {RECON_TARGETS}, got {target!r}")
        self.hidden, self.target = hidden, target

    def build(self, shared: Shared) -> None:
        net = shared.network
        self.head = ReconstructionDecoder(net.encoder.out_dim, net.front_end.out_dim, self.hidden,
                                          net.encoder.time_reduction)

    def loss(self, step: Step, host: L.LightningModule) -> tuple[Tensor, dict[str, Tensor]]:
        out = step.out
        recon = self.head(step.z, out.feats.size(1), step.z_lengths)
        target = out.feats if self.target == "input" else out.clean_feats
        loss = self.head.loss(recon, target.detach(), out.frame_lengths)
        return loss, {"recon": loss}
