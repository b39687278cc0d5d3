"""The augmentations of the policy (:mod:`mtl_aug.augment`): a registry by name, the base class and the four of
the paper (none, speed perturbation, SpecAugment, mixup).

An :class:`Augmentation` acts at one or both stages of the policy: ``on_wave`` (waveform, before the front end;
may change lengths) and ``on_feats`` (log-mels, after it; may mix rows and their targets), plus ``on_extra``
for row-level side features. A new one is a subclass in any module, named in the policy's ``types`` by its
import path (or registered under a short name with :func:`register`).
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import torch
import torchaudio
from torch import Tensor, nn

from mtl_aug.masking import lengths_to_mask, pad_to, zero_padding

AUGMENTATIONS: dict[str, type["Augmentation"]] = {}


def register(name: str) -> Callable[[type["Augmentation"]], type["Augmentation"]]:
    def deco(cls: type["Augmentation"]) -> type["Augmentation"]:
        AUGMENTATIONS[name] = cls
        return cls

    return deco


class Augmentation(nn.Module):
    """Identity at both stages; subclasses override one. ``__init__`` receives the policy's whole
    config as keywords and picks what it needs."""

    def __init__(self, **_: object) -> None:
        super().__init__()

    def on_wave(self, wave: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return wave, lengths

    def on_feats(
        self, feats: Tensor, frame_lengths: Tensor, targets: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (feats, frame_lengths, targets, mixed)"""
        return feats, frame_lengths, targets, torch.zeros_like(frame_lengths, dtype=torch.bool)

    def on_extra(self, extra: Tensor) -> Tensor:
        """Row-level side features (e.g. utterance functionals) of the rows of the last ``on_feats`` call."""
        return extra


@register("none")
class NoAugmentation(Augmentation):
    pass


@register("speed")
class SpeedPerturb(Augmentation):
    """Speed perturbation (pitch and tempo), each row gets one of ``speed_factors`` at random.
    A factor ``f`` maps ``L`` valid samples to ``ceil(L / f)``."""

    def __init__(self, speed_factors: list[float] = [0.9, 1.1], sample_rate: int = 16000, **_: object) -> None:
        super().__init__()
        if not speed_factors:
            raise ValueError("speed_factors must not be empty")
        self.factors = list(speed_factors)
        self.speeds = nn.ModuleList(torchaudio.transforms.Speed(sample_rate, f) for f in self.factors)

    def on_wave(self, wave: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        n = wave.size(0)
        which = torch.randint(len(self.speeds), (n,), generator=generator).to(wave.device)
        parts = []
        for i, speed in enumerate(self.speeds):  # a loop over the few factors, rows grouped per factor
            rows = (which == i).nonzero().squeeze(1)
            if rows.numel() > 0:
                w, l = speed(wave[rows], lengths[rows])
                parts.append((rows, w, l))
        t = max(w.size(1) for _, w, _ in parts)
        out, out_len = wave.new_zeros(n, t), lengths.clone()
        for rows, w, l in parts:  # the groups partition the rows: write each once, in place
            out.index_copy_(0, rows, pad_to(w, t))
            out_len.index_copy_(0, rows, l.clamp(max=t))
        # the resampling filter rings past the new end: keep padding exactly zero
        return zero_padding(out, out_len), out_len


def _random_bands(n: int, n_masks: int, param: int, extent: Tensor, size: int, g: torch.Generator) -> Tensor:
    """``n_masks`` bands per row, width ~ U{0..param} (capped at ``extent``), inside ``[0, extent)``.
    Returns a bool mask ``[n, size]``."""
    dev = extent.device
    extent = extent.to(torch.float32).unsqueeze(1)  # [n, 1]
    width = torch.minimum(torch.floor(torch.rand(n, n_masks, generator=g).to(dev) * (param + 1)), extent)
    start = torch.floor(torch.rand(n, n_masks, generator=g).to(dev) * (extent - width + 1))
    pos = torch.arange(size, device=dev, dtype=torch.float32).view(1, 1, -1)
    inside = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))
    return inside.any(dim=1)


@register("specaug")
class SpecAugment(Augmentation):
    """Per-example iid time and frequency masks (value 0 = the utterance mean after utterance
    normalisation). Each mask's width ~ U{0..param}; time masks are drawn inside each row's VALID
    frames (never wasted on padding, and padding stays zero)."""

    def __init__(
        self,
        freq_mask_param: int = 12,
        time_mask_param: int = 20,
        n_freq_masks: int = 2,
        n_time_masks: int = 2,
        **_: object,
    ) -> None:
        super().__init__()
        self.freq_mask_param, self.time_mask_param = freq_mask_param, time_mask_param
        self.n_freq_masks, self.n_time_masks = n_freq_masks, n_time_masks

    def on_feats(
        self, feats: Tensor, frame_lengths: Tensor, targets: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, f, m = feats.shape
        tmask = _random_bands(n, self.n_time_masks, self.time_mask_param, frame_lengths, f, generator)
        fmask = _random_bands(n, self.n_freq_masks, self.freq_mask_param, torch.full_like(frame_lengths, m), m, generator)
        valid = lengths_to_mask(frame_lengths, f)
        mask = (tmask.unsqueeze(2) | fmask.unsqueeze(1)) & valid.unsqueeze(2)
        return feats.masked_fill(mask, 0.0), frame_lengths, targets, torch.zeros_like(valid[:, 0])


@register("mixup")
class Mixup(Augmentation):
    """Mix each row with another row of the chunk, lambda ~ Beta(alpha, alpha) per row.

    Labelled rows are mixed only with labelled rows and unlabelled rows only with unlabelled ones,
    so a mixed soft target always sums to 1 (labelled) or 0 (unlabelled). Partners form a random
    cycle within each group; a group with a single row leaves it un-mixed (``mixed`` False).
    Features are mixed over the union of the two rows' valid frames (padding is zero).
    """

    def __init__(self, mixup_alpha: float = 0.4, **_: object) -> None:
        super().__init__()
        if mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0, got {mixup_alpha}")
        self.alpha = mixup_alpha

    def on_feats(
        self, feats: Tensor, frame_lengths: Tensor, targets: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, dev = feats.size(0), feats.device
        own = torch.arange(n, device=dev)
        partner = own.clone()
        labelled = targets.sum(-1) > 0
        for group in (labelled, ~labelled):
            rows = group.nonzero().squeeze(1)
            if rows.numel() >= 2:
                order = rows[torch.randperm(rows.numel(), generator=generator).to(dev)]
                partner = partner.index_copy(0, order, order.roll(-1))
        # torch has no generator-aware Beta sampler: seed numpy from our generator
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        lam = torch.from_numpy(np.random.default_rng(seed).beta(self.alpha, self.alpha, size=n))
        lam = lam.to(device=dev, dtype=feats.dtype)
        mixed_feats = lam.view(-1, 1, 1) * feats + (1 - lam).view(-1, 1, 1) * feats[partner]
        mixed_targets = lam.view(-1, 1) * targets + (1 - lam).view(-1, 1) * targets[partner]
        self._last = (partner, lam)
        return mixed_feats, torch.maximum(frame_lengths, frame_lengths[partner]), mixed_targets, partner != own


    def on_extra(self, extra: Tensor) -> Tensor:
        """Side features mixed like the features: same partner, same lambda."""
        partner, lam = self._last
        lam = lam.to(extra.dtype).view(-1, *([1] * (extra.dim() - 1)))
        return lam * extra + (1 - lam) * extra[partner]


def augmentation_class(name: str) -> type[Augmentation]:
    """A registered augmentation, or an :class:`Augmentation` subclass given by its import path."""
    if name in AUGMENTATIONS:
        return AUGMENTATIONS[name]
    module, _, attr = name.rpartition(".")
    cls = None
    if module:
        try:
            cls = getattr(importlib.import_module(module), attr, None)
        except ImportError:
            cls = None
    if not (isinstance(cls, type) and issubclass(cls, Augmentation)):
        raise ValueError(f"unknown augmentation types ['{name}']; known: {sorted(AUGMENTATIONS)} or the import path "
                         "of an Augmentation subclass")
    return cls
