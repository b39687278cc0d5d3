"""load_audio / audio_info: good files of any rate and layout, and a clear AudioError for each bad case."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mtl_aug.data.audio import AudioError, audio_info, load_audio, probe_audio


def test_48k_stereo_wav_becomes_16k_mono(tmp_path: Path, make_audio) -> None:
    path = make_audio(tmp_path / "x.wav", seconds=0.5, sr=48000, channels=2)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames) == (48000, 2, 24000)
    assert info.duration == pytest.approx(0.5)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.ndim == 1 and wave.shape[0] == 8000


def test_flac_at_22050_and_target_rate(tmp_path: Path, make_audio) -> None:
    path = make_audio(tmp_path / "x.flac", seconds=0.4, sr=22050)
    assert load_audio(path, target_sr=8000).shape[0] == 3200
    assert load_audio(path, target_sr=22050).shape[0] == 8820


def test_stereo_is_mean_downmixed(tmp_path: Path) -> None:
    path = tmp_path / "lr.wav"
    sf.write(path, np.stack([np.full(100, 0.5), np.zeros(100)], axis=1).astype(np.float32), 16000, subtype="FLOAT")
    assert torch.allclose(load_audio(path), torch.full((100,), 0.25))


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_files(tmp_path: Path, make_audio) -> dict[str, Path]:
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), np.float32), 16000)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.wav"
    text.write_text("this is not audio at all, just text with a .wav name\n")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2], np.float32), 16000, subtype="FLOAT")
    unreadable = make_audio(tmp_path / "locked.wav")
    unreadable.chmod(0)
    return {
        "missing": tmp_path / "missing.wav",
        "zero-length": zero,
        "empty file": empty,
        "non-audio": text,
        "truncated wav": _truncate(make_audio(tmp_path / "cut.wav", seconds=0.5)),
        "truncated flac": _truncate(make_audio(tmp_path / "cut.flac", seconds=0.5)),
        "non-finite": nan,
        "unreadable": unreadable,
        "directory": tmp_path,
    }


@pytest.mark.parametrize("case", ["missing", "zero-length", "empty file", "non-audio", "truncated wav",
                                  "truncated flac", "non-finite", "unreadable", "directory"])
def test_load_audio_raises_naming_the_path(tmp_path: Path, make_audio, case: str) -> None:
    path = _bad_files(tmp_path, make_audio)[case]
    if case == "unreadable" and os.access(path, os.R_OK):
        pytest.skip("running as root: a mode-000 file is still readable")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("case", ["missing", "zero-length", "empty file", "non-audio", "truncated wav"])
def test_audio_info_raises_from_headers(tmp_path: Path, make_audio, case: str) -> None:
    path = _bad_files(tmp_path, make_audio)[case]
    with pytest.raises(AudioError, match=str(path.name)):
        audio_info(path)


def test_probe_detects_truncated_flac(tmp_path: Path, make_audio) -> None:
    path = _truncate(make_audio(tmp_path / "cut.flac", seconds=0.5))
    audio_info(path)  # the FLAC header still claims the full length
    with pytest.raises(AudioError, match="truncated"):
        probe_audio(path)


def test_resampling_keeps_the_band_and_removes_what_would_alias(tmp_path):
    import numpy as np
    import soundfile as sf

    from mtl_aug.data.audio import load_audio

    sr = 22050
    t = np.arange(sr) / sr
    for freq, keep in ((1000.0, True), (9000.0, False)):  # 9 kHz is above 16 kHz's Nyquist frequency
        path = tmp_path / f"tone{int(freq)}.wav"
        sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
        wave = load_audio(path, 16000).numpy()
        assert abs(len(wave) - 16000) <= 1
        rms = float(np.sqrt(np.mean(wave[1000:-1000] ** 2)))
        assert (rms > 0.3) if keep else (rms < 0.005), (freq, rms)
