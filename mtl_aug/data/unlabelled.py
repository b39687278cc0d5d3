"""LightningDataModule of unlabelled audio only: the data of encoder pre-training (``python -m mtl_aug pretrain``).

Every row of the given prepared corpora (their manifests, labels ignored), optionally without some speakers,
as training batches whose labels are all -1: the model sees them through the auxiliary losses only
(reconstruction, augmentation classification), never through the emotion head. No validation or test set.

A pool for a corpus's within-corpus experiments must not hold that corpus's test speakers: pre-train on
other corpora (e.g. LibriSpeech + RAVDESS for EMODB), or list the target corpus's speakers to leave out.
"""

from __future__ import annotations

import logging

import lightning as L
from torch.utils.data import DataLoader

from .cache import WaveformCache
from .collate import collate_utterances
from .items import manifest_paths, unlabelled_items
from .dataset import UtteranceDataset
from .manifest import FOUR_CLASSES, read_manifest
from .roots import resolve_root
from .samplers import EpochSampler

log = logging.getLogger(__name__)


class UnlabelledDataModule(L.LightningDataModule):
    """Args:
        corpora: prepared corpora whose every row is used (``librispeech``, ``ravdess``, ``emodb``...).
        roots: corpus -> root, for corpora whose root is not in its environment variable.
        exclude_speakers: corpus -> speakers left out of the pool.
        class_names / sample_rate: the label set and rate of the model to be fine-tuned (the CLI links them
            to the model's); the labels themselves are not read.
        segment_seconds: random training crop; shorter utterances are kept whole.
    """

    def __init__(
        self,
        corpora: list[str] = ["librispeech"],
        roots: dict[str, str] | None = None,
        exclude_speakers: dict[str, list[str]] | None = None,
        manifest_dir: str = "data_manifests",
        class_names: list[str] = FOUR_CLASSES,
        sample_rate: int = 16000,
        segment_seconds: float = 3.0,
        batch_size: int = 32,
        num_workers: int = 0,
        cache_dir: str | None = ".cache/waveforms",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not corpora:
            raise ValueError("corpora is empty: name at least one prepared corpus")
        self.save_hyperparameters()
        self.datasets: dict[str, UtteranceDataset] = {}
        self.pool_info: dict = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        roots, exclude = dict(hp.roots or {}), {k: set(v) for k, v in (hp.exclude_speakers or {}).items()}
        unknown = sorted(set(exclude) - set(hp.corpora))
        if unknown:
            raise ValueError(f"exclude_speakers names corpora that are not in the pool: {unknown}")
        items = []
        for corpus in hp.corpora:
            manifest, _ = manifest_paths(corpus, hp.manifest_dir)
            rows = unlabelled_items(read_manifest(manifest), resolve_root(corpus, roots.get(corpus)), corpus)
            kept = [it for it in rows if it.speaker not in exclude.get(corpus, set())]
            self.pool_info[corpus] = {"rows": len(rows), "used": len(kept),
                                      "excluded_speakers": sorted(exclude.get(corpus, set()))}
            items += kept
        if not items:
            raise ValueError(f"the unlabelled pool {list(hp.corpora)} is empty after exclusions")
        seg = int(hp.segment_seconds * hp.sample_rate) if hp.segment_seconds else None
        cache = WaveformCache(hp.cache_dir, hp.sample_rate)
        self.datasets["train"] = UtteranceDataset(items, cache, seg, random_crop=True, seed=hp.seed,
                                                  desc="unlabelled audio")
        log.info("pre-training pool: %s", ", ".join(f"{c} {v['used']}/{v['rows']}" for c, v in self.pool_info.items()))

    def train_dataloader(self) -> DataLoader:
        hp, train = self.hparams, self.datasets["train"]
        return DataLoader(train, batch_size=hp.batch_size, sampler=EpochSampler(len(train), hp.seed),
                          num_workers=hp.num_workers, collate_fn=collate_utterances,
                          persistent_workers=hp.num_workers > 0)
