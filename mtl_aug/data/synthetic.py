"""A small synthetic emotional-speech corpus, generated in seconds, for tests and smoke runs.

Each utterance is a string of voiced "syllables" from a source-filter model: a sawtooth glottal
source following an f0 contour, a one-pole spectral tilt, three formant resonators (a vowel per
syllable, scaled by the speaker's vocal-tract length), aspiration noise, optional fricative onsets,
attack/decay envelopes, word pauses and a faint noise floor.

Emotions differ the way acted speech does, in several cues at once, each overlapping between classes:
f0 level and range, contour shape, speaking rate, loudness, spectral tilt, attack sharpness and
breathiness. Speakers differ in base f0, formant scale, loudness and rate, so no single cue (e.g.
raw f0, which mostly tells the speaker's gender) separates the classes across speakers under LOSO.

Layout (read by the ``synthetic`` / ``synthetic_unlabelled`` corpora)::

    <root>/labelled/<speaker>/<speaker>_<emotion>_<nnn>.wav     speakers F01, M02, F03, ...
    <root>/unlabelled/<speaker>/<nnn>.flac                       further speakers, mixed styles
    <root>/params.json                                           written last; makes generation idempotent
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from .manifest import FOUR_CLASSES

VERSION = 2  # bump when the generator changes, so existing trees are regenerated
N_UNLABELLED_SPEAKERS = 4

# Formants (F1, F2, F3 in Hz) of a few vowels for an adult male voice; scaled per speaker.
VOWELS = np.array([
    [730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
    [530, 1840, 2480], [570, 840, 2410], [660, 1720, 2410],
], dtype=float)
BANDWIDTHS = np.array([80.0, 100.0, 150.0])


@dataclass(frozen=True)
class Style:
    f0_scale: float  # multiplies the speaker's base f0
    range_st: float  # accent excursion, semitones
    rate: float  # syllables per second
    rms_db: float  # loudness of the voiced parts, dBFS
    tilt: float  # one-pole low-pass coefficient: higher = darker spectrum
    attack: float  # syllable attack time, s
    declination: float  # f0 drift over the utterance, semitones (negative = falling)
    accent_skew: float  # where the accent peaks in a syllable (0 early/falling, 1 late/rising)
    breath: float  # aspiration noise relative to the voiced source
    pause: float  # mean pause between words, s
    drive: float  # tanh saturation (pressed voice)


STYLES: dict[str, Style] = {
    "angry": Style(1.28, 5.0, 5.2, -17.0, 0.50, 0.008, -3.0, 0.25, 0.02, 0.07, 2.5),
    "happy": Style(1.32, 7.5, 4.6, -20.0, 0.72, 0.020, 1.5, 0.75, 0.04, 0.09, 1.0),
    "neutral": Style(1.00, 2.5, 4.0, -23.0, 0.82, 0.030, -2.0, 0.5, 0.04, 0.12, 1.0),
    "sad": Style(0.92, 1.5, 2.9, -28.0, 0.90, 0.060, -3.5, 0.3, 0.12, 0.25, 1.0),
}


@dataclass(frozen=True)
class Speaker:
    name: str
    gender: str
    f0: float
    formant_scale: float
    rms_offset_db: float
    rate_factor: float
    tilt_offset: float


def make_speaker(name: str, gender: str, rng: np.random.Generator) -> Speaker:
    male = gender == "M"
    return Speaker(
        name=name, gender=gender,
        f0=float(rng.uniform(95, 135) if male else rng.uniform(175, 235)),
        formant_scale=float(rng.uniform(0.95, 1.03) if male else rng.uniform(1.10, 1.20)),
        rms_offset_db=float(rng.uniform(-2.5, 2.5)),
        rate_factor=float(rng.uniform(0.9, 1.1)),
        tilt_offset=float(rng.uniform(-0.04, 0.04)),
    )


def _vocal_tract(formants: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Cascade of Klatt two-pole resonators (unity gain at DC) as one IIR filter (b, a)."""
    b_total, a_total = np.array([1.0]), np.array([1.0])
    for freq, bw in zip(formants, BANDWIDTHS):
        c = -np.exp(-2 * np.pi * bw / sr)
        b = 2 * np.exp(-np.pi * bw / sr) * np.cos(2 * np.pi * min(freq, 0.45 * sr) / sr)
        b_total = b_total * (1 - b - c)
        a_total = np.convolve(a_total, [1.0, -b, -c])
    return b_total, a_total


def _envelope(n: int, attack: float, sr: int) -> np.ndarray:
    env = np.ones(n)
    a = min(n // 2, max(1, int(attack * sr)))
    r = min(n // 2, max(1, int(0.04 * sr)))
    env[:a] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a))
    env[n - r:] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, r))
    return env


def _syllable(spk: Speaker, st: Style, base_st: float, stress: float, dur: float, sr: int,
              rng: np.random.Generator) -> np.ndarray:
    n = max(int(dur * sr), 64)
    t = np.linspace(0.0, 1.0, n)
    # Accent: a hump of height range*stress, peaking at accent_skew within the syllable.
    hump = np.exp(-0.5 * ((t - st.accent_skew) / 0.28) ** 2)
    semitones = base_st + st.range_st * stress * hump + rng.normal(0, 0.15)
    f0 = spk.f0 * st.f0_scale * 2.0 ** (semitones / 12.0)
    knots = max(2, n // 160)  # slow random f0 wobble (jitter/shimmer-like), one knot per 10 ms
    f0 *= 1.0 + 0.01 * np.interp(np.arange(n), np.linspace(0, n - 1, knots), rng.normal(0, 1, knots))
    phase = np.cumsum(f0 / sr) + rng.uniform()
    source = 2.0 * (phase % 1.0) - 1.0
    tilt = float(np.clip(st.tilt + spk.tilt_offset, 0.2, 0.97))
    source = lfilter([1 - tilt], [1, -tilt], source)
    source = source / (np.std(source) + 1e-9) + st.breath * 4 * rng.normal(0, 1, n)
    out = lfilter(*_vocal_tract(VOWELS[rng.integers(len(VOWELS))] * spk.formant_scale, sr), source)
    out = out / (np.std(out) + 1e-9) * (0.6 + 0.4 * stress)
    return out * _envelope(n, st.attack, sr)


def _fricative(dur: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(dur * sr)
    noise = np.diff(rng.normal(0, 1, n + 1))  # first difference: a high-frequency hiss
    return noise / (np.std(noise) + 1e-9) * np.exp(-np.linspace(0, 3, n))


def synthesize(spk: Speaker, st: Style, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One utterance of ``seconds`` for speaker ``spk`` in style ``st``."""
    total = int(seconds * sr)
    out = np.zeros(total)
    voiced = np.zeros(total, dtype=bool)
    pos = int(rng.uniform(0.05, 0.15) * sr)
    end = total - int(0.08 * sr)
    rate = st.rate * spk.rate_factor
    word_left = int(rng.integers(2, 5))
    while pos < end - int(0.06 * sr):
        if rng.uniform() < 0.4:  # consonant onset
            fric = _fricative(rng.uniform(0.02, 0.05), sr, rng) * (0.5 if st.drive > 1 else 0.25)
            stop = min(pos + fric.size, end)
            out[pos:stop] += fric[: stop - pos]
            pos = stop
        dur = min(rng.uniform(0.65, 1.0) / rate, (end - pos) / sr)
        if dur < 0.04:
            break
        progress = pos / total
        stress = 1.0 if rng.uniform() < 0.4 else float(rng.uniform(0.2, 0.6))
        syl = _syllable(spk, st, st.declination * progress, stress, dur, sr, rng)
        out[pos:pos + syl.size] += syl
        voiced[pos:pos + syl.size] = True
        pos += syl.size + int(rng.uniform(0.01, 0.04) * sr)
        word_left -= 1
        if word_left == 0:
            pos += int(rng.exponential(st.pause) * sr)
            word_left = int(rng.integers(2, 5))
    if st.drive > 1:
        out = np.tanh(st.drive * out / (np.abs(out).max() + 1e-9)) * np.abs(out).max()
    rms_db = st.rms_db + spk.rms_offset_db + rng.normal(0, 2.0)
    rms = np.sqrt(np.mean(out[voiced] ** 2)) if voiced.any() else 1.0
    out *= 10 ** (rms_db / 20) / (rms + 1e-12)
    out += rng.normal(0, 10 ** (-62 / 20), total)  # noise floor: no digital silence
    peak = np.abs(out).max()
    if peak > 0.98:
        out *= 0.98 / peak
    return out.astype(np.float32)


def blend(a: Style, b: Style, w: float) -> Style:
    """Style ``(1-w)*a + w*b`` field by field (unlabelled speech: between neutral and an emotion)."""
    return Style(**{k: (1 - w) * va + w * getattr(b, k) for k, va in asdict(a).items()})


def jitter(st: Style, rng: np.random.Generator) -> Style:
    """Per-utterance variation so classes overlap in every single cue."""
    return replace(
        st,
        f0_scale=st.f0_scale * float(np.exp(rng.normal(0, 0.07))),
        range_st=st.range_st * float(rng.uniform(0.7, 1.3)),
        rate=st.rate * float(rng.uniform(0.85, 1.15)),
        tilt=st.tilt + float(rng.normal(0, 0.04)),
        attack=st.attack * float(rng.uniform(0.7, 1.4)),
    )


def speaker_names(n: int, start: int = 1) -> list[tuple[str, str]]:
    """(name, gender) pairs F01, M02, F03, ... continuing the numbering from ``start``."""
    out = []
    for i in range(start, start + n):
        gender = "F" if i % 2 else "M"
        out.append((f"{gender}{i:02d}", gender))
    return out


def _write(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """Encode in memory, then write: soundfile's close() fsyncs every file, which dominates on slow disks."""
    buf = io.BytesIO()
    sf.write(buf, wave, sample_rate, subtype="PCM_16", format=path.suffix[1:].upper())
    path.write_bytes(buf.getvalue())


def _expected_files(params: dict) -> int:
    return params["n_speakers"] * len(FOUR_CLASSES) * params["utts_per_emotion"] + params["n_unlabelled"]


def _is_current(root: Path, params: dict) -> bool:
    path = root / "params.json"
    if not path.is_file():
        return False
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    n_files = sum(1 for _ in root.glob("labelled/*/*.wav")) + sum(1 for _ in root.glob("unlabelled/*/*.flac"))
    return old == params and n_files == _expected_files(params)


def generate_synthetic(root: str | Path, n_speakers: int = 6, utts_per_emotion: int = 12, n_unlabelled: int = 40,
                       seconds: tuple[float, float] = (1.5, 3.0), sample_rate: int = 16000, seed: int = 0) -> Path:
    """Write the synthetic corpus under ``root`` (skipped when already there with the same parameters).

    Every utterance has its own RNG seeded by (seed, speaker, emotion, index), so a file does not depend
    on how many others are generated.
    """
    root = Path(root)
    params = {"version": VERSION, "n_speakers": n_speakers, "utts_per_emotion": utts_per_emotion,
              "n_unlabelled": n_unlabelled, "seconds": [float(seconds[0]), float(seconds[1])],
              "sample_rate": sample_rate, "seed": seed}
    if _is_current(root, params):
        return root
    if (root / "params.json").is_file():  # our own older tree: replace it wholesale
        for sub in ("labelled", "unlabelled"):
            shutil.rmtree(root / sub, ignore_errors=True)
        (root / "params.json").unlink()
    lo, hi = seconds
    emotions = list(STYLES)
    for s_idx, (name, gender) in enumerate(speaker_names(n_speakers)):
        spk = make_speaker(name, gender, np.random.default_rng([seed, 1, s_idx]))
        folder = root / "labelled" / name
        folder.mkdir(parents=True, exist_ok=True)
        for e_idx, emotion in enumerate(emotions):
            for u in range(utts_per_emotion):
                rng = np.random.default_rng([seed, 2, s_idx, e_idx, u])
                wave = synthesize(spk, jitter(STYLES[emotion], rng), rng.uniform(lo, hi), sample_rate, rng)
                _write(folder / f"{name}_{emotion}_{u:03d}.wav", wave, sample_rate)
    n_unl_spk = max(1, min(N_UNLABELLED_SPEAKERS, n_unlabelled))
    unl_speakers = [make_speaker(name, gender, np.random.default_rng([seed, 3, i]))
                    for i, (name, gender) in enumerate(speaker_names(n_unl_spk, start=n_speakers + 1))]
    for j in range(n_unlabelled):
        rng = np.random.default_rng([seed, 4, j])
        spk = unl_speakers[j % n_unl_spk]
        style = blend(STYLES["neutral"], STYLES[emotions[rng.integers(len(emotions))]], float(rng.uniform()))
        wave = synthesize(spk, jitter(style, rng), rng.uniform(lo, hi), sample_rate, rng)
        folder = root / "unlabelled" / spk.name
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / f"{j // n_unl_spk:03d}.flac", wave, sample_rate)
    (root / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    """``python -m mtl_aug synth [--root R] ...``; ``argv`` excludes the sub-command word."""
    from .roots import root_candidate

    p = argparse.ArgumentParser(prog="mtl_aug synth", description="Generate the synthetic emotional-speech corpus.")
    p.add_argument("--root", default=None, help="output folder (default: $SYNTHETIC_ROOT or .cache/synthetic)")
    p.add_argument("--n-speakers", type=int, default=6)
    p.add_argument("--utts-per-emotion", type=int, default=12)
    p.add_argument("--n-unlabelled", type=int, default=40)
    p.add_argument("--min-seconds", type=float, default=1.5)
    p.add_argument("--max-seconds", type=float, default=3.0)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.n_speakers < 3:
        p.error("--n-speakers must be at least 3 (LOSO needs test, validation and training speakers)")
    if not 0 < args.min_seconds <= args.max_seconds:
        p.error("need 0 < --min-seconds <= --max-seconds")
    root, _ = root_candidate("synthetic", args.root)
    out = generate_synthetic(root, args.n_speakers, args.utts_per_emotion, args.n_unlabelled,
                             (args.min_seconds, args.max_seconds), args.sample_rate, args.seed)
    n = args.n_speakers * len(FOUR_CLASSES) * args.utts_per_emotion
    print(f"synthetic corpus in {out}: {n} labelled + {args.n_unlabelled} unlabelled utterances; "
          f"next: python -m mtl_aug prepare synthetic --root {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
