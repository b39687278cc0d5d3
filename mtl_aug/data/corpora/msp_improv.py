"""MSP-IMPROV (Busso et al., IEEE TAC 2017), release layout.

Source: the MSP-IMPROV release documentation (the readme shipped with the corpus, which describes
the file naming and the ``Evalution.txt`` format) and Busso et al. 2017.

Audio: ``<root>/Audio/session<N>/<scenario>/<type>/MSP-IMPROV-S01A-F01-P-FM01.wav`` (some copies
drop the ``Audio/`` level; every ``MSP-IMPROV-*.wav`` below the root is taken). File-name fields::

    MSP-IMPROV - S01 A - F01 - P - FM01
                 |   |   |     |   `- who leads the dyad (FM / MF) + dyad number
                 |   |   |     `- type: R read, S spontaneous, T target improvised, P natural interaction
                 |   |   `- speaker: M01..M06 / F01..F06 (gender = first letter, session = its number)
                 |   `- emotion the scenario targets (A/H/S/N); NOT the label
                 `- sentence 01..20

Labels: the consensus file ``Evalution.txt`` (the release's spelling; ``Evaluation.txt`` is also
accepted), found at the root or one level below. Utterance lines read::

    UTD-IMPROV-S01A-F01-P-FM01.avi; N; A:3.000000; V:3.000000; D:3.000000; N:0.000000;

i.e. the video name, the consensus category (A angry, H happy, S sad, N neutral, O other, X no
agreement), then mean arousal/valence/dominance/naturalness. The annotator lines that follow
(starting with ``----`` or an annotator's name) are ignored. ``UTD-IMPROV-<id>.avi`` is the video of
``MSP-IMPROV-<id>.wav``. 4-class: A/H/N/S; O and X stay in the manifest with an empty label.

Speakers: 12; protocol LOSO with validation = the other speaker of the same session (M0k <-> F0k).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..folds import partner_rule
from ._common import Collector, is_hidden
from .base import BuildResult, register_corpus

# consensus letter -> (emotion, 4-class label)
EMOTIONS = {
    "A": ("angry", "angry"),
    "H": ("happy", "happy"),
    "S": ("sad", "sad"),
    "N": ("neutral", "neutral"),
    "O": ("other", ""),
    "X": ("no_agreement", ""),
}
LINE = re.compile(r"^UTD-IMPROV-([A-Za-z0-9-]+)\.avi\s*;\s*([A-Za-z]+)\s*;")
NAME = re.compile(r"^MSP-IMPROV-S(\d\d)([A-Z])-([MF])(\d\d)-([RSTP])-([FM]{2})(\d\d)$")
EVALUATION_FILES = ("Evalution.txt", "Evaluation.txt")


def find_evaluation(root: Path) -> Path | None:
    for pattern in EVALUATION_FILES + tuple(f"*/{name}" for name in EVALUATION_FILES):
        hits = [p for p in sorted(root.glob(pattern)) if not is_hidden(p, root)]
        if hits:
            return hits[0]
    return None


def read_labels(path: Path) -> dict[str, str]:
    """``MSP-IMPROV-<id>`` -> consensus letter."""
    labels = {}
    for line in path.read_text(errors="replace").splitlines():
        m = LINE.match(line.strip())
        if m:
            labels[f"MSP-IMPROV-{m.group(1)}"] = m.group(2)
    return labels


def expected_path(utt: str) -> str:
    """Where the release keeps ``utt``'s wav (for reporting a missing file)."""
    m = NAME.match(utt)
    if not m:
        return f"{utt}.wav"
    sentence, target, _, number, kind, _, _ = m.groups()
    return f"Audio/session{int(number)}/S{sentence}{target}/{kind}/{utt}.wav"


def _partner(speaker: str) -> str:
    return ("F" if speaker.startswith("M") else "M") + speaker[1:]


@register_corpus("msp_improv", env_var="MSP_IMPROV_ROOT", kind="labelled", protocol="loso",
                 val_rule=partner_rule(_partner),
                 layout="<root>/Audio/session1/<scenario>/<type>/MSP-IMPROV-S01A-F01-P-FM01.wav + <root>/Evalution.txt")
def build_msp_improv(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("msp_improv", root, progress)
    evaluation = find_evaluation(root)
    labels = read_labels(evaluation) if evaluation else {}
    wavs = c.scan(["**/MSP-IMPROV-*"])
    for path in c.iterate(wavs):
        m = NAME.match(path.stem)
        if not m:
            c.skip(path, "file name does not follow MSP-IMPROV-S<nn><emotion>-<speaker>-<type>-<dyad>")
            continue
        if evaluation is None:
            c.skip(path, "no Evalution.txt consensus file found, utterance unlabelled")
            continue
        if path.stem not in labels:
            c.skip(path, f"no consensus label in {evaluation.name}")
            continue
        letter = labels[path.stem]
        if letter not in EMOTIONS:
            c.skip(path, f"unknown MSP-IMPROV consensus label {letter!r}")
            continue
        _, _, gender, number, _, _, _ = m.groups()
        emotion, label = EMOTIONS[letter]
        c.add(path, key=path.stem, speaker=f"{gender}{number}", gender=gender, session=f"session{int(number)}",
              raw_label=letter, emotion=emotion, label=label)
    present = {p.stem for p in wavs}
    for utt in sorted(set(labels) - present):
        c.skip(expected_path(utt), f"labelled in {evaluation.name if evaluation else '?'} but the wav file is missing")
    return c.result()
