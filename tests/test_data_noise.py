"""Noise mixing: exact SNR, looping, deterministic choice per (key, SNR), disjoint train/eval halves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from mtl_aug.data.corpora import CORPORA
from mtl_aug.data.noise import NoiseBank, fit_length, mix_at_snr, stable_hash

HASH = 0x48C85EAB01024131


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0, -5.0])
def test_mix_at_snr_is_exact(snr: float) -> None:
    g = torch.Generator().manual_seed(0)
    speech, noise = torch.randn(16000, generator=g), 3 * torch.randn(5000, generator=g)
    mixed = mix_at_snr(speech, noise, snr)
    added = mixed - speech
    measured = 10 * torch.log10(speech.pow(2).mean() / added.pow(2).mean())
    assert measured.item() == pytest.approx(snr, abs=1e-3)
    assert torch.allclose(added[:5000], added[5000:10000], atol=1e-5)  # the short noise loops


def test_batched_and_silent_speech() -> None:
    speech = torch.stack([torch.randn(800), torch.zeros(800)])
    mixed = mix_at_snr(speech, torch.randn(300), 10)
    assert torch.equal(mixed[1], speech[1])
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(speech, torch.zeros(300), 10)


def test_fit_length_loops_from_offset() -> None:
    assert fit_length(torch.arange(5.0), 7, offset=3).tolist() == [3, 4, 0, 1, 2, 3, 4]


def test_stable_hash_is_not_salted() -> None:
    assert stable_hash("03a01Wa", 10.0) == HASH  # same value in every process and on every machine
    assert stable_hash("a", 10.0) != stable_hash("a", 20.0)


@pytest.fixture
def bank_manifest(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    noise_dir = tmp_path / "_background_noise_"
    noise_dir.mkdir()
    ramp = np.linspace(-1, 1, 4000, dtype=np.float32) * 0.5  # sample value encodes its position
    for name in ("running_tap", "exercise_bike", "white_noise"):
        sf.write(noise_dir / f"{name}.wav", ramp, 16000, subtype="FLOAT")
    return CORPORA["speech_commands"].build(tmp_path).rows, tmp_path


def test_noise_bank_halves_and_determinism(bank_manifest) -> None:
    df, root = bank_manifest
    train, evaluation = NoiseBank(df, root, "train"), NoiseBank(df, root, "eval")
    assert train.keys == ["exercise_bike", "running_tap"]  # synthetic white noise excluded
    a = train.noise_for("utt1", 10, 3000)
    assert torch.equal(a, NoiseBank(df, root, "train").noise_for("utt1", 10.0, 3000))
    assert a.shape == (3000,) and (a < 0).all()  # first half of the ramp only, even when looping
    assert (evaluation.noise_for("utt1", 10, 3000) >= 0).all()  # second half only
    picks = {train.choose(f"u{i}", snr) for i in range(20) for snr in (0, 10, 20)}
    assert len({p[0] for p in picks}) == 2 and len(picks) > 30  # both files and many offsets get used
    assert NoiseBank(df, root, "eval", include_synthetic=True).keys == ["exercise_bike", "running_tap", "white_noise"]
    speech = torch.randn(2000)
    mixed = train.mix("utt1", speech, 0)
    assert 10 * torch.log10(speech.pow(2).mean() / (mixed - speech).pow(2).mean()).item() == pytest.approx(0, abs=1e-3)


def test_noise_bank_rejects_bad_split(bank_manifest) -> None:
    df, root = bank_manifest
    with pytest.raises(ValueError, match="split"):
        NoiseBank(df, root, "test")  # type: ignore[arg-type]
