"""LightningDataModule: one corpus + one speaker-independent fold, optional unlabelled audio.

Training batches are ``{"labelled": batch, "unlabelled": batch}`` from a CombinedLoader
(``max_size_cycle``); the unlabelled sampler draws as many batches as the labelled one has, so an
epoch is one pass over the labelled training speakers whatever the size of the unlabelled pool.
Validation and test use whole utterances (masked padding), sorted by length to waste little padding.
"""

from __future__ import annotations

import logging

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from .cache import WaveformCache
from .collate import collate_utterances
from .corpora.custom import ensure_registered, no_folds_reason, own_label_column
from .dataset import Item, UtteranceDataset, group_name
from .folds import get_fold, read_folds
from .items import ALL_SPEAKERS, labelled_items, manifest_paths, split_speakers, unlabelled_items
from .labels import map_test_labels
from .manifest import FOUR_CLASSES, read_manifest
from .roots import resolve_root
from .samplers import EpochSampler, UnpaddedDistributedSampler, class_balanced_weights

log = logging.getLogger(__name__)

class SERDataModule(L.LightningDataModule):
    """Speech emotion data from a prepared manifest (``data_manifests/<corpus>/``).

    Args:
        corpus: registry name of a prepared labelled corpus (``emodb``, ``ravdess``, ``iemocap``...), or the
            name of your own corpus (``prepare --csv/--folders``; its ``config.yaml`` sets the classes).
        fold: fold name from ``folds.json`` (the test speaker for LOSO, e.g. ``03``), or ``all``
            to train on every speaker except the first fold's validation speakers.
        root: corpus root; default: the corpus's environment variable (e.g. ``EMODB_ROOT``).
        class_names: label set, in class-index order; rows outside it are not used (counted in the log).
        label_column: manifest column holding those labels (``label`` = the 4-class set,
            ``emotion`` = every emotion the corpus has).
        label_map: renames values of ``label_column`` before they are matched against ``class_names``,
            e.g. ``{"calm": "neutral"}`` with ``label_column: emotion`` = RAVDESS with calm counted as
            neutral (``experiments/corpora/ravdess_calm.yaml``). Applies to the test corpus too.
        test_corpus: cross-corpus testing: test on every labelled row of this corpus instead of the
            fold's test speakers.
        test_label_column: the test corpus's column of labels; default: its own (``emotion`` for a user
            corpus, ``label`` = the 4-class set for a registered one).
        test_label_map: renames the test corpus's labels onto ``class_names`` (default: ``label_map``); a
            label that maps onto no class refuses the test set (map it to "" to drop it), see
            :mod:`mtl_aug.data.labels`.
        use_unlabelled: mix unlabelled audio (``unlabelled_corpus``) into training batches; it reaches
            the model only through the auxiliary losses.
        segment_seconds: random training crop; shorter utterances are kept whole.
        eval_segment_seconds: centre crop for val/test; ``None`` = whole utterances (masked).
        balanced_sampling: draw training rows class-balanced (with replacement).
        cache_dir: decoded-waveform cache; ``None`` decodes on every run.
        functionals: ``egemaps`` / ``compare`` / ``voice``: every item also carries its file's openSMILE functionals
            or voice-encoder statistics (cached per file under ``functionals_cache_dir``), for models that fuse them.
        train_on_val: train on the fold's validation speakers too (the test speakers stay held out). For
            recipes that choose nothing on validation (the default tests the final averaged weights), so the
            validation speakers are only watched; with it, the validation metrics are on TRAINING speakers
            (logged as usual, but no longer a held-out estimate). The classical SVM trains this way.
        seed: crops and sampling order.
    """

    def __init__(
        self,
        corpus: str = "synthetic",
        fold: str | None = None,
        root: str | None = None,
        manifest_dir: str = "data_manifests",
        class_names: list[str] = FOUR_CLASSES,
        label_column: str = "label",
        label_map: dict[str, str] | None = None,
        test_corpus: str | None = None,
        test_root: str | None = None,
        test_label_column: str | None = None,
        test_label_map: dict[str, str] | None = None,
        use_unlabelled: bool = False,
        unlabelled_corpus: str = "librispeech",
        unlabelled_root: str | None = None,
        unlabelled_batch_size: int | None = None,
        sample_rate: int = 16000,
        segment_seconds: float = 3.0,
        eval_segment_seconds: float | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        balanced_sampling: bool = False,
        cache_dir: str | None = ".cache/waveforms",
        functionals: str | None = None,
        functionals_cache_dir: str | None = ".cache/functionals",
        train_on_val: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.datasets: dict[str, UtteranceDataset] = {}
        self.fold_info: dict = {}
        self.folds_doc: dict = {}

    # -- setup -------------------------------------------------------------------------------------
    def _cache(self) -> WaveformCache:
        return WaveformCache(self.hparams.cache_dir, self.hparams.sample_rate)

    def _functionals(self, cache: WaveformCache):
        if not self.hparams.functionals:
            return None
        from .functionals import FunctionalsCache, make_extractor

        return FunctionalsCache(make_extractor(self.hparams.functionals), cache, self.hparams.functionals_cache_dir)

    def _labelled(self, corpus: str, root: str | None) -> tuple[list[Item], pd.DataFrame]:
        ensure_registered(corpus, self.hparams.manifest_dir)  # a user corpus (prepare --csv/--folders)
        manifest, _ = manifest_paths(corpus, self.hparams.manifest_dir)
        df = read_manifest(manifest)
        items = labelled_items(df, resolve_root(corpus, root), list(self.hparams.class_names), self.hparams.label_column,
                               self.hparams.label_map, corpus)
        if not items:
            raise ValueError(
                f"corpus '{corpus}': no row of {manifest} has {self.hparams.label_column} in {list(self.hparams.class_names)}"
            )
        if len(items) < len(df):
            log.info("%s: %d of %d rows are outside the label set %s", corpus, len(df) - len(items), len(df),
                     list(self.hparams.class_names))
        return items, df

    def _test_items(self) -> list[Item]:
        """Every utterance of ``test_corpus`` whose label maps onto ``class_names`` (else refused, see
        :func:`mtl_aug.data.labels.map_test_labels`)."""
        hp = self.hparams
        ensure_registered(hp.test_corpus, hp.manifest_dir)
        manifest, _ = manifest_paths(hp.test_corpus, hp.manifest_dir)
        df = read_manifest(manifest)
        column = hp.test_label_column or own_label_column(hp.test_corpus, hp.manifest_dir) or "label"
        if column not in df.columns:
            raise ValueError(f"test corpus '{hp.test_corpus}': {manifest} has no column '{column}' "
                             f"(columns: {list(df.columns)})")
        explicit = hp.test_label_map is not None
        labels = map_test_labels(df[column], list(hp.class_names), hp.test_label_map if explicit else hp.label_map,
                                 corpus=hp.test_corpus, column=column, explicit=explicit)
        items = labelled_items(df.assign(_test_label=labels), resolve_root(hp.test_corpus, hp.test_root),
                               list(hp.class_names), "_test_label", corpus=hp.test_corpus)
        if not items:
            raise ValueError(f"test corpus '{hp.test_corpus}': no row of {manifest} has a label in "
                             f"{list(hp.class_names)} (column '{column}')")
        return items

    def resolve_fold(self) -> dict:
        _, path = manifest_paths(self.hparams.corpus, self.hparams.manifest_dir)
        if not path.exists():
            reason = no_folds_reason(self.hparams.corpus, self.hparams.manifest_dir)
            raise FileNotFoundError(reason or f"no folds for corpus '{self.hparams.corpus}' at {path}: run "
                                    f"`python -m mtl_aug prepare {self.hparams.corpus}` first")
        folds = self.folds_doc = read_folds(path)
        name = self.hparams.fold
        if name is None:
            name = folds["folds"][0]["name"]
            log.info("no fold given: using the first fold, '%s'", name)
        if name == ALL_SPEAKERS:
            first = folds["folds"][0]
            everyone = sorted({s for f in folds["folds"] for part in ("train", "val", "test") for s in f[part]})
            return {"name": ALL_SPEAKERS, "val": list(first["val"]), "test": [],
                    "train": [s for s in everyone if s not in first["val"]]}
        return get_fold(folds, str(name))

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        sr = hp.sample_rate
        cache = self._cache()
        func = self._functionals(cache)
        items, df = self._labelled(hp.corpus, hp.root)
        fold = self.resolve_fold()
        group_by = self.folds_doc.get("group_by", "speaker")  # user corpora: session, or a given split
        group_of = None if group_by == "speaker" else (self.folds_doc.get("groups")
                                                       or dict(zip(df["key"], df[group_by].astype(str))))
        parts = split_speakers(fold, items, group_of)
        if hp.test_corpus:
            parts["test"] = self._test_items()
        for name in ("train", "val"):
            if not parts[name]:
                raise ValueError(f"fold '{fold['name']}' of {hp.corpus}: the {name} split is empty")
        if hp.train_on_val:  # the validation rows stay a (now seen) monitoring set
            parts["train"] = parts["train"] + parts["val"]
        self.fold_info = {"name": fold["name"], **{k: sorted({it.speaker for it in v}) for k, v in parts.items()},
                          **{f"n_{k}": len(v) for k, v in parts.items()}, "train_on_val": bool(hp.train_on_val)}
        if hp.train_on_val:
            log.warning("fold %s: train_on_val: the validation speakers %s are trained on; validation metrics are "
                        "not held out", fold["name"], ",".join(self.fold_info["val"]))
        seg = int(hp.segment_seconds * sr) if hp.segment_seconds else None
        eval_seg = int(hp.eval_segment_seconds * sr) if hp.eval_segment_seconds else None
        self.datasets["train"] = UtteranceDataset(parts["train"], cache, seg, random_crop=True, seed=hp.seed,
                                                  desc="train audio", functionals=func)
        for name in ("val", "test"):
            if parts[name]:
                by_length = sorted(parts[name], key=lambda it: it.duration)  # little padding per batch
                self.datasets[name] = UtteranceDataset(by_length, cache, eval_seg, desc=f"{name} audio",
                                                       functionals=func)
        if hp.use_unlabelled:
            manifest, _ = manifest_paths(hp.unlabelled_corpus, hp.manifest_dir)
            df = read_manifest(manifest)
            u_items = unlabelled_items(df, resolve_root(hp.unlabelled_corpus, hp.unlabelled_root), hp.unlabelled_corpus)
            self.datasets["unlabelled"] = UtteranceDataset(u_items, cache, seg, random_crop=True, seed=hp.seed + 1,
                                                           desc="unlabelled audio", functionals=func)
        log.info("fold %s: train %d (%d spk) / val %d (%s) / test %d (%s)%s; cache hits %d misses %d",
                 fold["name"], len(parts["train"]), len(self.fold_info["train"]), len(parts["val"]),
                 ",".join(self.fold_info["val"]), len(parts["test"]), ",".join(self.fold_info["test"])[:60],
                 f"; unlabelled {len(self.datasets['unlabelled'])}" if hp.use_unlabelled else "",
                 cache.hits, cache.misses)

    def normalization_audio(self, mode: str) -> tuple[list[torch.Tensor], list[str]]:
        """Every utterance of every split (training, validation, test, unlabelled) with its normalisation group
        (:func:`~mtl_aug.data.dataset.group_name`: speaker or corpus): the statistics of speaker/corpus-level
        normalisation use each group's whole audio — the test speakers' too, never their labels."""
        waves, groups = [], []
        for ds in self.datasets.values():
            for i, it in enumerate(ds.items):
                waves.append(torch.as_tensor(ds.wave(i)))
                groups.append(group_name(mode, it.corpus, it.speaker))
        return waves, groups

    # -- loaders -----------------------------------------------------------------------------------
    def _loader(self, dataset: UtteranceDataset, batch_size: int, sampler=None) -> DataLoader:
        nw = self.hparams.num_workers
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=nw,
                          collate_fn=collate_utterances, persistent_workers=nw > 0, pin_memory=False)

    def train_dataloader(self):
        hp = self.hparams
        train = self.datasets["train"]
        weights = class_balanced_weights([it.label for it in train.items]) if hp.balanced_sampling else None
        labelled = self._loader(train, hp.batch_size, EpochSampler(len(train), hp.seed, weights=weights))
        if "unlabelled" not in self.datasets:
            return CombinedLoader({"labelled": labelled}, mode="max_size_cycle")
        unl = self.datasets["unlabelled"]
        ubs = hp.unlabelled_batch_size or hp.batch_size
        n_batches = len(labelled)
        unlabelled = self._loader(unl, ubs, EpochSampler(len(unl), hp.seed + 1, num_samples=n_batches * ubs))
        return CombinedLoader({"labelled": labelled, "unlabelled": unlabelled}, mode="max_size_cycle")

    def eval_loader(self, dataset: UtteranceDataset) -> DataLoader:
        """Loader for any evaluation dataset (also used by the noise and adversarial evaluations)."""
        sampler = UnpaddedDistributedSampler(dataset) if _distributed() else None
        return self._loader(dataset, self.hparams.eval_batch_size or self.hparams.batch_size, sampler)

    def val_dataloader(self):
        return self.eval_loader(self.datasets["val"])

    def test_dataloader(self):
        if "test" not in self.datasets:
            raise ValueError(f"fold '{self.fold_info.get('name')}' has no test speakers (use a LOSO fold or test_corpus)")
        return self.eval_loader(self.datasets["test"])

    def predict_dataloader(self):
        return self.test_dataloader()


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1
