"""Utterance-level feature vectors, cached per file: openSMILE functionals (eGeMAPSv02, ComParE_2016) and the
frozen pre-trained voice encoder's statistics (``voice``, :class:`~mtl_aug.data.voice_encoder.VoiceStatsExtractor`).

Features are computed from the same decoded waveform the neural systems see (``WaveformCache``: mono,
resampled to the run's sample rate), so a file that cannot be read fails here with the same
:class:`~mtl_aug.data.audio.AudioError` naming it. The cache key is the waveform cache's key (file path,
size, mtime, sample rate) plus the feature set and the openSMILE version: editing a file, changing the rate
or upgrading openSMILE invalidates the entry, nothing else does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from .cache import WaveformCache, cache_key

OPENSMILE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}  # short name -> openSMILE FeatureSet
FEATURE_SETS = (*OPENSMILE_SETS, "voice")  # every name make_extractor knows


def _opensmile():
    try:
        import opensmile
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError("the classical baseline needs the 'opensmile' package (pip install opensmile)") from err
    return opensmile


class FunctionalsExtractor:
    """``extractor(wave, sample_rate) -> float32 [n_features]``: one openSMILE functionals vector per utterance."""

    def __init__(self, feature_set: str) -> None:
        if feature_set not in OPENSMILE_SETS:
            raise ValueError(f"unknown openSMILE feature set {feature_set!r}; known: {', '.join(OPENSMILE_SETS)}")
        smile = _opensmile()
        self.feature_set = feature_set
        self.version = smile.__version__
        self._smile = smile.Smile(feature_set=getattr(smile.FeatureSet, OPENSMILE_SETS[feature_set]),
                                  feature_level=smile.FeatureLevel.Functionals)
        self.names = list(self._smile.feature_names)

    @property
    def cache_tag(self) -> str:
        return f"{self.feature_set}-opensmile{self.version}"

    def __call__(self, wave: np.ndarray, sample_rate: int, what: str = "utterance") -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError(f"{what}: expected a non-empty mono waveform, got shape {wave.shape}")
        feats = self._smile.process_signal(wave, sample_rate).to_numpy(dtype=np.float32).reshape(-1)
        if feats.size != len(self.names):
            raise ValueError(f"{what}: openSMILE returned {feats.size} features, expected {len(self.names)}")
        if not np.isfinite(feats).all():  # openSMILE writes NaN/inf for degenerate input (e.g. pure silence)
            feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0)
        return feats


def make_extractor(feature_set: str):
    """A new extractor of ``feature_set`` (one of :data:`FEATURE_SETS`)."""
    if feature_set == "voice":
        from mtl_aug.data.voice_encoder import VoiceStatsExtractor

        return VoiceStatsExtractor()
    return FunctionalsExtractor(feature_set)


_EXTRACTORS: dict = {}


def extractor(feature_set: str):
    """One extractor per feature set and process (building an openSMILE pipeline or loading the voice encoder takes
    a moment)."""
    if feature_set not in _EXTRACTORS:
        _EXTRACTORS[feature_set] = make_extractor(feature_set)
    return _EXTRACTORS[feature_set]


class FunctionalsCache:
    """Disk cache of one feature set's vectors per file: ``<cache_dir>/<feature set>/<key[:2]>/<key>.npy``."""

    def __init__(self, extractor, waves: WaveformCache, cache_dir: str | Path | None) -> None:
        self.extractor = extractor
        self.waves = waves
        self.dir = Path(cache_dir) / extractor.cache_tag if cache_dir else None
        self.hits = 0
        self.misses = 0

    def get(self, path: str | Path, wave: np.ndarray | None = None) -> np.ndarray:
        """Features of the file at ``path`` (``wave``: its decoded waveform, when the caller has it already)."""
        entry = None
        if self.dir is not None:
            key = cache_key(path, self.waves.sample_rate)
            entry = self.dir / key[:2] / f"{key}.npy"
            if entry.exists():
                self.hits += 1
                return np.load(entry)
        self.misses += 1
        if wave is None:
            wave = self.waves.get(path)
        feats = self.extractor(wave, self.waves.sample_rate, what=str(path))
        if entry is not None:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, feats)
            os.replace(tmp, entry)  # atomic: two runs extracting at once never read half a file
        return feats

    def matrix(self, paths: Sequence[str | Path], waves: Iterable[np.ndarray | None] | None = None,
               desc: str = "functionals") -> np.ndarray:
        """``[len(paths), n_features]``, with a progress bar while features are extracted."""
        waves = list(waves) if waves is not None else [None] * len(paths)
        rows = [self.get(p, w) for p, w in tqdm(list(zip(paths, waves)), desc=desc, leave=False, mininterval=1.0)]
        return np.stack(rows) if rows else np.zeros((0, len(self.extractor.names)), dtype=np.float32)
