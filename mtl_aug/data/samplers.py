"""Seeded samplers.

Training samplers yield ``(index, epoch)`` pairs so the dataset can seed each crop from
``(seed, epoch, index)``: identical runs repeat exactly with any number of workers. Each ``__iter__``
is one epoch (Lightning iterates a train loader once per epoch).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler, Sampler


class EpochSampler(Sampler):
    """Shuffled (or class-balanced, with replacement) order, reseeded every epoch from ``seed``."""

    def __init__(
        self,
        n: int,
        seed: int = 0,
        num_samples: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        if n == 0:
            raise ValueError("EpochSampler: the dataset is empty")
        self.n = n
        self.seed = seed
        self.num_samples = num_samples or n
        self.weights = weights
        self.epoch = 0

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        else:
            reps = -(-self.num_samples // self.n)  # cycle permutations when more samples than rows are asked for
            order = torch.cat([torch.randperm(self.n, generator=g) for _ in range(reps)])[: self.num_samples]
        return iter([(int(i), epoch) for i in order])


def class_balanced_weights(labels: list[int]) -> torch.Tensor:
    """Per-row weights 1/count(class): every class is drawn equally often in expectation."""
    lab = torch.tensor(labels)
    counts = torch.bincount(lab)
    return 1.0 / counts[lab].double()


class UnpaddedDistributedSampler(DistributedSampler):
    """Evaluation shards without the padding DistributedSampler adds, so DDP metrics see each row once.

    Lightning leaves a loader alone when its sampler already is a DistributedSampler.
    """

    def __init__(self, dataset) -> None:
        super().__init__(dataset, shuffle=False, drop_last=False)

    def _indices(self) -> range:
        return range(self.rank, len(self.dataset), self.num_replicas)

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())
