"""Additive noise at an exact SNR, from a bank of real noise recordings (DEMAND or Speech Commands).

Protocol (docs/protocols.md, setting 3): the noise file, offset and scale are deterministic per
(utterance key, SNR); the SNR is exact by RMS over the utterance; training-time noise comes from the
first half of each noise file and evaluation noise from the second half, so no evaluation noise is
ever seen in training.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import pandas as pd
import torch

from .audio import load_audio

Split = Literal["train", "eval"]


def fit_length(noise: torch.Tensor, length: int, offset: int = 0) -> torch.Tensor:
    """``length`` samples of ``noise`` starting at ``offset``, looping around its end as needed."""
    if noise.numel() == 0:
        raise ValueError("empty noise signal")
    idx = (torch.arange(length, device=noise.device) + offset) % noise.shape[-1]
    return noise[..., idx]


def mix_at_snr(speech: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``speech + g * noise`` with g set so that RMS(speech)/RMS(g*noise) is exactly ``snr_db``.

    ``speech`` is ``[..., T]`` (the SNR holds per row); ``noise`` is looped or cropped to T.
    Silent speech has no defined SNR and is returned unchanged (no noise added).
    """
    if noise.shape[-1] != speech.shape[-1]:
        noise = fit_length(noise, speech.shape[-1])
    noise = noise.to(speech.dtype)
    p_speech = speech.pow(2).mean(dim=-1, keepdim=True)
    p_noise = noise.pow(2).mean(dim=-1, keepdim=True)
    if bool((p_noise == 0).any()):
        raise ValueError("noise segment is silent: no SNR can be reached")
    gain = torch.sqrt(p_speech / (p_noise * 10.0 ** (float(snr_db) / 10.0)))
    return speech + gain * noise


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same in every process (Python's hash() is salted per process)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


class NoiseBank:
    """Noise files of a noise manifest, split in time into a training half and an evaluation half.

    Only rows with raw_label "real" are used unless ``include_synthetic`` (Speech Commands' white and
    pink noise are generated, not recorded). Files are decoded lazily and kept in memory.
    """

    def __init__(
        self,
        manifest_df: pd.DataFrame,
        root: str | Path,
        split: Split,
        sample_rate: int = 16000,
        include_synthetic: bool = False,
    ) -> None:
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', not {split!r}")
        rows = manifest_df if include_synthetic else manifest_df[manifest_df["raw_label"] != "synthetic"]
        rows = rows.sort_values("key")  # fixed order: the hash picks files by index
        if rows.empty:
            raise ValueError("no noise files in the manifest (after excluding synthetic noise)")
        self.keys: list[str] = rows["key"].tolist()
        self.paths: list[Path] = [Path(root) / p for p in rows["path"]]
        self.split = split
        self.sample_rate = sample_rate
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def segment(self, index: int) -> torch.Tensor:
        """This split's half of noise file ``index``, at the bank's sample rate."""
        if index not in self._cache:
            wave = load_audio(self.paths[index], self.sample_rate)
            half = wave.shape[0] // 2
            self._cache[index] = (wave[:half] if self.split == "train" else wave[half:]).clone()
        return self._cache[index]

    def choose(self, key: str, snr_db: float) -> tuple[int, int]:
        """(file index, offset in the half) for an utterance and SNR: deterministic, process-independent."""
        h = stable_hash(key, float(snr_db))
        index = h % len(self.paths)
        offset = (h >> 20) % self.segment(index).shape[0]
        return index, offset

    def noise_for(self, key: str, snr_db: float, length: int) -> torch.Tensor:
        """``length`` samples of noise for utterance ``key`` at ``snr_db`` (looping within the half)."""
        index, offset = self.choose(key, snr_db)
        return fit_length(self.segment(index), length, offset)

    def mix(self, key: str, speech: torch.Tensor, snr_db: float) -> torch.Tensor:
        """``speech`` (1-D) with this bank's noise for ``key`` at exactly ``snr_db``."""
        return mix_at_snr(speech, self.noise_for(key, snr_db, speech.shape[-1]), snr_db)
