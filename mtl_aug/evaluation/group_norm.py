"""Test-condition statistics of a speaker/corpus-normalised model (``noise``, ``adversarial``).

A model trained with ``--normalize speaker|corpus`` normalises its features by the statistics of each row's
group (:class:`mtl_aug.features.GroupNormalization`, inside its network), stored in its checkpoint.
:class:`EvalGroupNorm` chooses which statistics the test groups use under a condition: the stored ones
(clean audio: exactly what ``cv`` tested with), or recomputed from the perturbed test audio — a speaker
enrolled in the same noise it is then heard in.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class EvalGroupNorm:
    """``state``: the checkpoint's ``speaker_norm`` entry; ``dm``: the test data (rows carry corpus and speaker)."""

    def __init__(self, model: nn.Module, dm, state: dict) -> None:
        self.mode = state["mode"]
        self.group_norm = model.network.group_norm
        if self.group_norm is None or self.group_norm.mode != self.mode:
            raise ValueError(f"the checkpoint's {self.mode}-level statistics do not match its network")
        self.stored = {g: (torch.tensor(m), torch.tensor(s)) for g, (m, s) in state["stats"].items()}
        self.network, self.dm = model.network, dm

    def use(self, perturb: Callable | None = None) -> None:
        """Stored statistics (``perturb=None``), or each test group's statistics over ``perturb(batch)``."""
        self.group_norm.stats = dict(self.stored)
        if perturb is None:
            return
        waves, groups = [], []
        for batch in self.dm.eval_loader(self.dm.datasets["test"]):
            wave = perturb(batch)
            waves += [wave[i, :n].detach() for i, n in enumerate(batch["lengths"].tolist())]
            groups += self.network.groups(batch)
        self.group_norm.fit(self.network.front_end, waves, groups)
