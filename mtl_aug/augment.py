"""On-device augmentation policy (SpeechBrain style): one module, applied inside the step.

The batch is split into chunks by a random permutation; chunk ``k`` gets augmentation ``types[k]``
and ``k`` is the augmentation label of its rows (the target of the auxiliary augmentation classifier).
Rows keep their original order in the output, so keys/labels stay aligned.

Two stages, so the front end runs once on the whole batch:
  1. ``on_wave``  (waveform; speed perturbation changes lengths) -> re-pad to a common T
  2. front end   -> ``clean_feats``
  3. ``on_feats`` (log-mel; SpecAugment masks, mixup)

``clean_feats`` is the front-end output *before* stage 3: for speed rows it is the features of the
speed-perturbed wave (speed is not undone), for mixup rows it is the row's own un-mixed features
(zero after the row's own frame length). It is the "clean" target of the denoising reconstruction.

All randomness comes from ``self.generator`` (CPU, seeded from ``seed``, advanced on every call),
so a run is reproducible from its seed whatever the device.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor, nn

from mtl_aug.augmentations import augmentation_class
from mtl_aug.masking import pad_to


class AugmentedBatch(NamedTuple):
    feats: Tensor  # [B, F, M] log-mels after augmentation (the encoder input)
    frame_lengths: Tensor  # [B] valid frames of ``feats``
    aug_label: Tensor  # [B] long, index of the row's chunk in ``types``
    targets: Tensor  # [B, C] soft emotion targets (mixed for mixup rows, zeros for unlabelled rows)
    clean_feats: Tensor  # [B, F, M] front-end output before feature-level augmentation (see module doc)
    mixed: Tensor  # [B] bool, rows actually mixed with another row
    lengths: Tensor  # [B] valid samples of the (speed-perturbed) waveform
    extra: Tensor | None = None  # [B, D] row-level side features after augmentation (see ``on_extra``)


def chunk_sizes(n: int, proportions: list[float]) -> list[int]:
    """Split ``n`` rows by ``proportions`` (largest-remainder rounding, ties to the earlier type)."""
    total = float(sum(proportions))
    raw = [p / total * n for p in proportions]
    sizes = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: (-(raw[k] - sizes[k]), k))
    for k in order[: n - sum(sizes)]:
        sizes[k] += 1
    return sizes


class AugmentationPolicy(nn.Module):
    """Split the batch into chunks, one per entry of ``types``, and augment each chunk.

    In eval mode, with ``types == ["none"]`` or ``enabled=False``, returns the clean front-end output (aug
    label 0). ``types`` entries are registered names (``none``, ``speed``, ``specaug``, ``mixup``) or the
    import path of an :class:`Augmentation` subclass (``mypkg.reverb.Reverb``): a new augmentation is one
    file plus its path in the YAML. Every augmentation receives the policy's settings as keywords and
    picks what it needs; ``options`` adds settings for augmentations that need others.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        types: list[str] = ["none", "speed", "specaug", "mixup"],
        proportions: list[float] | None = None,
        speed_factors: list[float] = [0.9, 1.1],
        freq_mask_param: int = 12,
        time_mask_param: int = 20,
        n_freq_masks: int = 2,
        n_time_masks: int = 2,
        mixup_alpha: float = 0.4,
        seed: int = 0,
        enabled: bool = True,
        options: dict[str, Any] | None = None,
    ) -> None:
        """``sample_rate`` comes first: the model injects its own (in a config the policy is
        ``Callable[[int], AugmentationPolicy]``). ``enabled=False`` (STL): one chunk, no augmentation,
        whatever ``types`` says. ``seed``: the policy's own generator (see the module docstring)."""
        super().__init__()
        if not enabled:
            types, proportions = ["none"], None
        if not types:
            raise ValueError("types must name at least one augmentation (\"none\": no augmentation)")
        classes = {t: augmentation_class(t) for t in types}
        proportions = [1.0] * len(types) if proportions is None else [float(p) for p in proportions]
        if len(proportions) != len(types) or min(proportions) < 0 or sum(proportions) <= 0:
            raise ValueError(f"proportions {proportions} must be {len(types)} non-negative numbers, not all 0")
        self.types, self.proportions, self.enabled = list(types), proportions, enabled
        cfg = dict(
            speed_factors=speed_factors,
            sample_rate=sample_rate,
            freq_mask_param=freq_mask_param,
            time_mask_param=time_mask_param,
            n_freq_masks=n_freq_masks,
            n_time_masks=n_time_masks,
            mixup_alpha=mixup_alpha,
            **(options or {}),
        )
        self.augs = nn.ModuleList(classes[t](**cfg) for t in self.types)
        self.generator = torch.Generator()
        self.reset_generator(seed)

    def reset_generator(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    @property
    def num_types(self) -> int:
        return len(self.types)

    def forward(self, wave: Tensor, lengths: Tensor, targets: Tensor, front_end: Callable[[Tensor, Tensor], Any],
                extra: Tensor | None = None) -> AugmentedBatch:
        """``extra [B, D]``: optional row-level side features; each augmentation's ``on_extra`` maps them (only
        mixup changes them), so they stay consistent with the rows' features and targets."""
        n, dev = wave.size(0), wave.device
        no_aug = torch.zeros(n, dtype=torch.long, device=dev)
        if not self.training or self.types == ["none"]:
            feats, frame_lengths = front_end(wave, lengths)
            return AugmentedBatch(feats, frame_lengths, no_aug, targets, feats, no_aug.bool(), lengths, extra)

        g = self.generator
        perm = torch.randperm(n, generator=g).to(dev)
        sizes = chunk_sizes(n, self.proportions)
        chunks = [(k, rows) for k, rows in enumerate(perm.split(sizes)) if rows.numel() > 0]
        chunk_of_position = torch.arange(len(sizes), device=dev).repeat_interleave(torch.tensor(sizes, device=dev))
        aug_label = no_aug.index_copy(0, perm, chunk_of_position)

        # stage 1: waveform
        parts = [(rows, *self.augs[k].on_wave(wave[rows], lengths[rows], g)) for k, rows in chunks]
        t = max(w.size(1) for _, w, _ in parts)
        # the chunks partition the rows: each is written once, in place (no whole-batch copy per chunk)
        new_wave, new_lengths = wave.new_zeros(n, t), lengths.clone()
        for rows, w, l in parts:
            new_wave.index_copy_(0, rows, pad_to(w, t))
            new_lengths.index_copy_(0, rows, l)

        # stage 2: front end once on the whole batch
        clean, frame_lengths = front_end(new_wave, new_lengths)

        # stage 3: features
        feats, out_lengths = torch.empty_like(clean), frame_lengths.clone()
        out_targets, mixed = torch.empty_like(targets), no_aug.bool()
        out_extra = torch.empty_like(extra) if extra is not None else None
        for k, rows in chunks:
            f, fl, tg, mx = self.augs[k].on_feats(clean[rows], frame_lengths[rows], targets[rows], g)
            feats.index_copy_(0, rows, f)
            out_lengths.index_copy_(0, rows, fl)
            out_targets.index_copy_(0, rows, tg)
            mixed.index_copy_(0, rows, mx)
            if extra is not None:
                out_extra.index_copy_(0, rows, self.augs[k].on_extra(extra[rows]))
        return AugmentedBatch(feats, out_lengths, aug_label, out_targets, clean, mixed, new_lengths, out_extra)
