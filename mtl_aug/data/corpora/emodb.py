"""Berlin Database of Emotional Speech (EMODB, Burkhardt et al. 2005).

Layout: ``<root>/wav/03a01Fa.wav``. File name: speaker (2 digits), text code (3 chars), emotion
letter (6th char, German initial), version letter. Speaker genders from the corpus documentation.
Protocol: LOSO, validation = the next speaker in sorted order.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..folds import next_speaker
from ._common import Collector
from .base import BuildResult, register_corpus

# letter -> (emotion, 4-class label)
EMOTIONS = {
    "W": ("anger", "angry"),
    "L": ("boredom", ""),
    "E": ("disgust", ""),
    "A": ("fear", ""),
    "F": ("happiness", "happy"),
    "T": ("sadness", "sad"),
    "N": ("neutral", "neutral"),
}
GENDERS = {"03": "M", "08": "F", "09": "F", "10": "M", "11": "M", "12": "M", "13": "F", "14": "F", "15": "M", "16": "F"}
NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z]?)$")


@register_corpus("emodb", env_var="EMODB_ROOT", kind="labelled", expected={"n_rows": 535, "n_labelled": 339},
                 protocol="loso", val_rule=next_speaker,
                 layout="<root>/wav/03a01Fa.wav")
def build_emodb(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("emodb", root, progress)
    for path in c.iterate(c.scan(["wav/*"])):
        m = NAME.match(path.stem)
        if not m:
            c.skip(path, "file name does not follow the EMODB pattern <speaker:2><text:3><emotion:1><version>")
            continue
        speaker, _, letter, _ = m.groups()
        if letter not in EMOTIONS:
            c.skip(path, f"unknown EMODB emotion letter {letter!r}")
            continue
        emotion, label = EMOTIONS[letter]
        c.add(path, key=path.stem, speaker=speaker, gender=GENDERS.get(speaker, ""), raw_label=letter,
              emotion=emotion, label=label)
    return c.result()
