"""RAVDESS speech, audio-only (Livingstone & Russo 2018).

Layout: ``<root>/Audio_Speech_Actors_01-24/Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (the release: 48 kHz
WAV; FLAC and any rate are accepted too, and ``<root>/Actor_XX/`` directly). Name fields: modality
(03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity, statement, repetition, actor.
Actor = speaker "01".."24"; odd actors are male, even female.
Protocol: speaker-grouped 6-fold of 4 consecutive actors, validation = the next group's first actor.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._common import Collector
from .base import BuildResult, register_corpus

# code -> (emotion, 4-class label)
EMOTIONS = {
    "01": ("neutral", "neutral"),
    "02": ("calm", ""),
    "03": ("happy", "happy"),
    "04": ("sad", "sad"),
    "05": ("angry", "angry"),
    "06": ("fearful", ""),
    "07": ("disgust", ""),
    "08": ("surprised", ""),
}
NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@register_corpus("ravdess", env_var="RAVDESS_ROOT", kind="labelled", expected={"n_rows": 1440, "n_labelled": 672},
                 protocol="grouped_kfold", group_size=4,
                 layout="<root>/Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav")
def build_ravdess(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("ravdess", root, progress)
    for path in c.iterate(c.scan(["*/Actor_*/*", "Actor_*/*"])):
        m = NAME.match(path.stem)
        if not m:
            c.skip(path, "file name does not follow the RAVDESS pattern MM-VV-EE-II-SS-RR-AA")
            continue
        _, channel, code, _, _, _, actor = m.groups()
        if channel != "01":
            c.skip(path, f"vocal channel {channel} is not speech (01)")
            continue
        if code not in EMOTIONS:
            c.skip(path, f"unknown RAVDESS emotion code {code!r}")
            continue
        emotion, label = EMOTIONS[code]
        c.add(path, key=path.stem, speaker=actor, gender="M" if int(actor) % 2 else "F", raw_label=code,
              emotion=emotion, label=label)
    return c.result()
