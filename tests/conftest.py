"""Shared test fixtures: tiny real audio files and the location of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def write_audio(path: Path, seconds: float = 0.2, sr: int = 16000, channels: int = 1, freq: float = 220.0,
                subtype: str | None = None) -> Path:
    """Write a short sine (+ a little noise) with soundfile; the format follows the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(0).normal(size=t.size)
    data = np.repeat(mono[:, None], channels, axis=1).astype(np.float32)
    sf.write(path, data, sr, subtype=subtype)
    return path


@pytest.fixture
def make_audio() -> Callable[..., Path]:
    """``make_audio(path, seconds=0.2, sr=16000, channels=1, ...)`` writes a real audio file."""
    return write_audio


def shared_data_dir() -> Path:
    """../shared/data beside the repo, or $MTL_AUG_SHARED_DATA."""
    env = os.environ.get("MTL_AUG_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder; skips the test with the reason when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set MTL_AUG_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> dict:
    """The synthetic demo corpus, generated and prepared once per test session.

    Returns ``{"root", "manifest_dir", "env"}``; ``env`` sets SYNTHETIC_ROOT for subprocesses.
    """
    from mtl_aug.data.prepare import prepare
    from mtl_aug.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("synthetic")
    root = generate_synthetic(base / "audio", n_speakers=4, utts_per_emotion=8, n_unlabelled=24)
    manifest_dir = base / "manifests"
    for corpus in ("synthetic", "synthetic_unlabelled"):
        prepare(corpus, root=str(root), out_dir=str(manifest_dir), progress=False)
    env = {**os.environ, "SYNTHETIC_ROOT": str(root)}
    return {"root": Path(root), "manifest_dir": manifest_dir, "env": env, "cache_dir": base / "cache"}


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: tests run beside other processes on 2 cores, where 2 spinning threads each
    make tiny steps many times slower; results do not depend on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
