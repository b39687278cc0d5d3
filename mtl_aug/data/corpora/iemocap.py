"""IEMOCAP (Busso et al. 2008), release layout.

Audio: ``<root>/Session{1..5}/sentences/wav/<dialog>/<utterance>.wav``.
Labels: ``<root>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt``; the consensus line of each
utterance reads ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``;
every other line (header, ``C-E1:``/``A-E2:`` annotator lines, blanks) is ignored.

Speaker = session x the speaker letter of the *utterance* id, i.e. the first character after the last
underscore (``Ses01F_impro01_M003`` is spoken by "Ses01M"; the dialog's letter only says who wore the
markers). Protocol: LOSO, validation = the other speaker of the same session.
4-class: ang -> angry, hap + exc -> happy, neu -> neutral, sad -> sad (5531 utterances on a full release).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..folds import partner_rule
from ._common import Collector, is_hidden, relpath
from .base import BuildResult, register_corpus

# IEMOCAP code -> (emotion, 4-class label)
EMOTIONS = {
    "ang": ("angry", "angry"),
    "hap": ("happy", "happy"),
    "exc": ("excited", "happy"),
    "sad": ("sad", "sad"),
    "neu": ("neutral", "neutral"),
    "fru": ("frustrated", ""),
    "sur": ("surprised", ""),
    "fea": ("fearful", ""),
    "dis": ("disgusted", ""),
    "oth": ("other", ""),
    "xxx": ("no_agreement", ""),
}
LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(Ses\d+[FM]_\S+)\s+(\S+)\s+\[")
UTTERANCE = re.compile(r"^(Ses\d+)[FM]_.*_([FM])[^_]*$")


def speaker_of(utterance: str) -> tuple[str, str, str] | None:
    """(speaker, session, gender) from an utterance id, e.g. Ses01F_impro01_M003 -> (Ses01M, Ses01, M)."""
    m = UTTERANCE.match(utterance)
    if not m:
        return None
    session, letter = m.groups()
    return session + letter, session, letter


def _partner(speaker: str) -> str:
    return speaker[:-1] + ("M" if speaker.endswith("F") else "F")


def read_labels(root: Path) -> dict[str, tuple[str, str]]:
    """utterance id -> (code, relative path of the EmoEvaluation file it came from)."""
    labels: dict[str, tuple[str, str]] = {}
    for txt in sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt")):
        if is_hidden(txt, root):
            continue
        for line in txt.read_text(errors="replace").splitlines():
            m = LINE.match(line)
            if m:
                labels[m.group(1)] = (m.group(2), relpath(txt, root))
    return labels


@register_corpus("iemocap", env_var="IEMOCAP_ROOT", kind="labelled", expected={"n_labelled": 5531},
                 protocol="loso", val_rule=partner_rule(_partner),
                 layout="<root>/Session1/sentences/wav/<dialog>/<utterance>.wav + Session1/dialog/EmoEvaluation/<dialog>.txt")
def build_iemocap(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("iemocap", root, progress)
    labels = read_labels(root)
    wavs = c.scan(["Session*/sentences/wav/*/*"])
    present = {p.stem for p in wavs}
    for path in c.iterate(wavs):
        utt = path.stem
        who = speaker_of(utt)
        if who is None:
            c.skip(path, "file name is not an IEMOCAP utterance id (SesNN[FM]_<dialog>_[FM]NNN)")
            continue
        if utt not in labels:
            c.skip(path, "no label for this utterance in EmoEvaluation")
            continue
        code, _ = labels[utt]
        if code not in EMOTIONS:
            c.skip(path, f"unknown IEMOCAP label {code!r}")
            continue
        speaker, session, gender = who
        emotion, label = EMOTIONS[code]
        c.add(path, key=utt, speaker=speaker, gender=gender, session=session, raw_label=code,
              emotion=emotion, label=label)
    for utt, (_, source) in sorted(labels.items()):
        if utt not in present:
            session_dir = source.split("/")[0]
            dialog = utt.rsplit("_", 1)[0]
            c.skip(f"{session_dir}/sentences/wav/{dialog}/{utt}.wav", f"labelled in {source} but the wav file is missing")
    return c.result()
