"""Utterance dataset over manifest rows: cached waveforms in memory, seeded random crops for training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .cache import WaveformCache


@dataclass(frozen=True)
class Item:
    key: str
    path: Path
    label: int  # class index, -1 for unlabelled rows
    speaker: str
    duration: float = 0.0  # seconds, from the manifest (sorting eval batches by length)
    corpus: str = ""  # registry name of the item's corpus (with the speaker: its normalisation group)


def group_name(mode: str, corpus: str, speaker: str) -> str:
    """The normalisation group of an utterance: ``"<corpus>:<speaker>"`` (``mode="speaker"``) or ``"<corpus>"``."""
    return f"{corpus}:{speaker}" if mode == "speaker" else corpus


def crop_bounds(length: int, segment: int | None, rng: np.random.Generator | None) -> tuple[int, int]:
    """Start/stop of a ``segment``-sample window: random when ``rng`` is given, centred otherwise.

    Shorter utterances are kept whole (the collate pads them and the model masks the padding).
    """
    if segment is None or length <= segment:
        return 0, length
    start = int(rng.integers(0, length - segment + 1)) if rng is not None else (length - segment) // 2
    return start, start + segment


class UtteranceDataset(Dataset):
    """Returns ``{"wave", "label", "key", "speaker", "corpus"}``; waves are 1-D float32 tensors at the cache's rate.
    With ``functionals`` (a :class:`~mtl_aug.data.functionals.FunctionalsCache`) items also hold
    ``"functionals"``: the openSMILE functionals of the whole file (not of the crop), computed once per file.

    ``segment_samples`` crops every item (random offset when ``random_crop``, seeded by
    ``(seed, epoch, index)`` so runs repeat exactly and workers need no shared RNG state; the epoch
    arrives with the index from :class:`~mtl_aug.data.samplers.EpochSampler`).
    """

    def __init__(
        self,
        items: list[Item],
        cache: WaveformCache,
        segment_samples: int | None = None,
        random_crop: bool = False,
        seed: int = 0,
        preload: bool = True,
        desc: str = "loading audio",
        functionals=None,
    ) -> None:
        self.items = items
        self.cache = cache
        self.segment = segment_samples
        self.random_crop = random_crop
        self.seed = seed
        self.waves: list[np.ndarray] | None = None
        if preload:
            # Decode once up front (progress bar on a cold cache) rather than in every worker.
            self.waves = [cache.get(it.path) for it in tqdm(items, desc=desc, leave=False, mininterval=1.0)]
        self.functionals: np.ndarray | None = None
        if functionals is not None:
            self.functionals = functionals.matrix([it.path for it in items], self.waves,
                                                  desc=f"{functionals.extractor.feature_set} {desc}")

    def __len__(self) -> int:
        return len(self.items)

    def wave(self, index: int) -> np.ndarray:
        return self.waves[index] if self.waves is not None else self.cache.get(self.items[index].path)

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        # Training samplers yield (index, epoch) so crops are seeded per epoch without shared state.
        index, epoch = index if isinstance(index, tuple) else (index, 0)
        it = self.items[index]
        wave = self.wave(index)
        rng = np.random.default_rng((self.seed, epoch, index)) if self.random_crop else None
        start, stop = crop_bounds(len(wave), self.segment, rng)
        row = {
            "wave": torch.from_numpy(np.ascontiguousarray(wave[start:stop])),
            "label": it.label,
            "key": it.key,
            "speaker": it.speaker,
            "corpus": it.corpus,
        }
        if self.functionals is not None:
            row["functionals"] = torch.from_numpy(self.functionals[index])
        return row

    def total_seconds(self, sample_rate: int) -> float:
        return float(sum(len(self.wave(i)) for i in range(len(self)))) / sample_rate
