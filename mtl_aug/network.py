"""The emotion network: front end -> encoder -> emotion head, as one plain ``nn.Module``.

This is the one forward path of the project: training (the emotion task's logits on clean batches),
validation/test, ``predict`` on files, ``export`` (TorchScript/ONNX trace it) and the adversarial attacks
(they differentiate through it) all call :meth:`EmotionNetwork.forward`. It holds no loss, no optimiser
and no Lightning state; :class:`~mtl_aug.tasks.multitask.MTLAugModule` trains it (its ``network``).

Optional parts, all decided at construction:

* group normalisation (the front end's ``normalize`` is ``speaker`` / ``corpus``): features are normalised
  by the statistics of each row's group, named from the rows' corpus and speaker (``groups``);
* functionals fusion (``functionals``: ``egemaps`` / ``compare`` / ``voice``): the head also reads the utterance's
  standardised openSMILE functionals or voice-encoder statistics, taken from the batch or computed from the wave:
  openSMILE outside the graph (not differentiable), the voice statistics inside it
  (:class:`~mtl_aug.data.voice_encoder.VoiceStatistics`: exportable, differentiable);
* test-time multi-crop (``tta_crops`` > 1): outside training, each utterance is ``tta_crops`` evenly spaced
  crops of ``tta_crop_seconds``; the logits are the log of the crops' mean probabilities.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mtl_aug.features import GROUP_MODES, GroupNormalization
from mtl_aug.masking import multi_crop
from mtl_aug.data.voice_encoder import VoiceStatistics

FUNCTIONAL_DIMS = {"egemaps": 88, "compare": 6373, "voice": 1792}  # openSMILE eGeMAPSv02 / ComParE_2016; voice encoder
IN_GRAPH_FUNCTIONALS = ("voice",)  # computed by the network's own modules from the wave
FUNC_CLIP = 8.0


class EmotionNetwork(nn.Module):
    """``forward(wave [B, T], lengths [B], functionals=None, groups=None) -> logits [B, C]``.

    ``head`` may be None (a model pre-trained with the auxiliary tasks alone has no emotion head yet);
    :meth:`features` and :meth:`encode` work without it."""

    def __init__(self, front_end: nn.Module, encoder: nn.Module, head: nn.Module | None = None,
                 functionals: str | None = None, tta_crops: int = 1, tta_crop_seconds: float | None = None) -> None:
        super().__init__()
        if functionals is not None and functionals not in FUNCTIONAL_DIMS:
            raise ValueError(f"functionals must be one of {sorted(FUNCTIONAL_DIMS)} or None, got {functionals!r}")
        if tta_crops < 1 or (tta_crops > 1 and not (tta_crop_seconds or 0) > 0):
            raise ValueError(f"tta_crops must be >= 1 and, above 1, needs tta_crop_seconds > 0 (got {tta_crops}, "
                             f"{tta_crop_seconds})")
        self.front_end, self.encoder, self.head = front_end, encoder, head
        self.functionals, self.tta_crops, self.tta_crop_seconds = functionals, tta_crops, tta_crop_seconds
        mode = getattr(front_end, "normalize", None)
        self.group_norm = GroupNormalization(mode) if mode in GROUP_MODES else None
        self.voice_stats = VoiceStatistics() if functionals == "voice" else None
        if functionals:  # training-set standardisation of the functionals, set when fitting starts
            self.register_buffer("func_mean", torch.zeros(FUNCTIONAL_DIMS[functionals]))
            self.register_buffer("func_std", torch.ones(FUNCTIONAL_DIMS[functionals]))

    @property
    def sample_rate(self) -> int:
        return int(self.front_end.sample_rate)

    # -- the parts of the path -------------------------------------------------------------------------
    def features(self, wave: Tensor, lengths: Tensor, groups: Sequence[str] | None = None) -> tuple[Tensor, Tensor]:
        """Front-end features (group-normalised when the network normalises by group) and frame lengths."""
        feats, frame_lengths = self.front_end(wave, lengths)
        if self.group_norm is not None:
            feats = self.group_norm(feats, frame_lengths, groups)
        return feats, frame_lengths

    def encode(self, feats: Tensor, frame_lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(feats, frame_lengths)

    def groups(self, batch: Mapping) -> list[str] | None:
        """The normalisation group of each row of a batch (None for a network without group normalisation)."""
        if self.group_norm is None:
            return None
        return self.group_norm.names(batch["corpus"], batch["speaker"])

    # -- the forward path --------------------------------------------------------------------------------
    def forward(self, wave: Tensor, lengths: Tensor, functionals: Tensor | None = None,
                groups: Sequence[str] | None = None) -> Tensor:
        """front end -> encoder -> emotion head; no augmentation, differentiable w.r.t. ``wave``.
        Call ``.eval()`` first for deterministic outputs (dropout). With test-time multi-crop (outside
        training) the logits are the log of the crops' mean probabilities. A network that fuses functionals
        takes them from ``functionals`` (the files' own) or extracts them from ``wave``."""
        side = self.side(wave, lengths, functionals)
        k = self.tta_crops
        if k > 1 and self.tta_crop_seconds and not self.training:
            crops, crop_lengths = multi_crop(wave, lengths, int(round(self.tta_crop_seconds * self.sample_rate)), k)
            side = side.repeat_interleave(k, 0) if side is not None else None
            groups = [g for g in groups for _ in range(k)] if groups is not None else None
            probs = torch.softmax(self.logits(crops, crop_lengths, side, groups).float(), -1)
            return torch.log(probs.view(wave.size(0), k, -1).mean(1).clamp(min=1e-12)).to(wave.dtype)
        return self.logits(wave, lengths, side, groups)

    def logits(self, wave: Tensor, lengths: Tensor, side: Tensor | None = None,
               groups: Sequence[str] | None = None) -> Tensor:
        """One pass over the whole rows (no multi-crop)."""
        if self.head is None:
            raise RuntimeError("this network has no emotion head (pre-trained with the auxiliary tasks alone)")
        z, z_lengths = self.encode(*self.features(wave, lengths, groups))
        return self.head(z, z_lengths, side)[0]

    # -- functionals fusion --------------------------------------------------------------------------------
    def side(self, wave: Tensor, lengths: Tensor, functionals: Tensor | None) -> Tensor | None:
        """Standardised functionals of the rows (None for a network that fuses none)."""
        if not self.functionals:
            return None
        if functionals is None:
            functionals = (self.voice_stats(wave, lengths) if self.voice_stats is not None
                           else self.extract_functionals(wave, lengths))
        z = (functionals.to(self.func_mean.dtype) - self.func_mean) / self.func_std
        return z.clamp(-FUNC_CLIP, FUNC_CLIP)  # an outlier file must not dominate the fused layer

    def extract_functionals(self, wave: Tensor, lengths: Tensor) -> Tensor:
        """openSMILE functionals of each row's valid samples (CPU, no gradient)."""
        from mtl_aug.data.functionals import extractor

        smile = extractor(self.functionals)
        rows = wave.detach().float().cpu().numpy()
        out = [smile(rows[i, : int(n)], self.sample_rate, what=f"row {i}") for i, n in enumerate(lengths.tolist())]
        return torch.from_numpy(np.stack(out)).to(wave.device)

    def fit_functional_stats(self, x) -> None:
        """Training-set mean and std of the functionals (rows = utterances)."""
        x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
        self.func_mean.copy_(x.mean(0))
        self.func_std.copy_(x.std(0, unbiased=False).clamp(min=1e-6))
