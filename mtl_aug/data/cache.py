"""Decoded-waveform cache: each file is decoded and resampled once, then read back as float32 .npy.

The key covers the file (absolute path, size, mtime) and the target sample rate, so editing a file or
changing the rate invalidates its entry; features are computed on the accelerator from these waveforms
(speed perturbation must precede the mel), so waveforms, not features, are what is worth caching.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .audio import RESAMPLER, load_audio


def cache_key(path: str | Path, sample_rate: int) -> str:
    st = os.stat(path)
    ident = f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{sample_rate}|{RESAMPLER}"
    return hashlib.sha1(ident.encode()).hexdigest()


class WaveformCache:
    """Disk cache of mono waveforms at ``sample_rate``; ``cache_dir=None`` decodes every time."""

    def __init__(self, cache_dir: str | Path | None, sample_rate: int = 16000) -> None:
        self.dir = Path(cache_dir) if cache_dir else None
        self.sample_rate = sample_rate
        self.hits = 0
        self.misses = 0
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, path: str | Path) -> np.ndarray:
        if self.dir is None:
            self.misses += 1
            return load_audio(path, self.sample_rate).numpy()
        key = cache_key(path, self.sample_rate)
        entry = self.dir / key[:2] / f"{key}.npy"
        if entry.exists():
            self.hits += 1
            return np.load(entry)
        self.misses += 1
        wave = load_audio(path, self.sample_rate).numpy().astype(np.float32, copy=False)
        entry.parent.mkdir(exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:  # np.save on a path would append ".npy" to the tmp name
            np.save(fh, wave)
        os.replace(tmp, entry)  # atomic: concurrent workers never read a half-written entry
        return wave
