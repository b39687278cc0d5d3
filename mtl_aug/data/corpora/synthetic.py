"""The generated synthetic corpus (see :mod:`mtl_aug.data.synthetic`), read like any release.

``synthetic``: ``<root>/labelled/<speaker>/<speaker>_<emotion>_<nnn>.wav`` with speaker ids like
"F01"/"M02" (gender = first letter); LOSO with validation = the next speaker.
``synthetic_unlabelled``: ``<root>/unlabelled/<speaker>/<nnn>.flac``, no labels.
Both share the root (``SYNTHETIC_ROOT``, default ``.cache/synthetic``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..folds import next_speaker
from ..manifest import FOUR_CLASSES
from ._common import Collector
from .base import BuildResult, register_corpus

SPEAKER = re.compile(r"^[FM]\d\d$")
LABELLED = re.compile(r"^([FM]\d\d)_([a-z]+)_(\d+)$")
DEFAULT_ROOT = ".cache/synthetic"


@register_corpus("synthetic", env_var="SYNTHETIC_ROOT", kind="labelled", protocol="loso", val_rule=next_speaker,
                 default_root=DEFAULT_ROOT, layout="<root>/labelled/F01/F01_angry_000.wav (python -m mtl_aug synth)")
def build_synthetic(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("synthetic", root, progress)
    for path in c.iterate(c.scan(["labelled/*/*"])):
        m = LABELLED.match(path.stem)
        if not m or m.group(1) != path.parent.name:
            c.skip(path, "file name is not <speaker>_<emotion>_<nnn> inside its speaker folder")
            continue
        speaker, emotion, _ = m.groups()
        if emotion not in FOUR_CLASSES:
            c.skip(path, f"unknown synthetic emotion {emotion!r}")
            continue
        c.add(path, key=path.stem, speaker=speaker, gender=speaker[0], raw_label=emotion, emotion=emotion, label=emotion)
    return c.result()


@register_corpus("synthetic_unlabelled", env_var="SYNTHETIC_ROOT", kind="unlabelled", default_root=DEFAULT_ROOT,
                 layout="<root>/unlabelled/F07/000.flac (python -m mtl_aug synth)")
def build_synthetic_unlabelled(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("synthetic_unlabelled", root, progress)
    for path in c.iterate(c.scan(["unlabelled/*/*"])):
        speaker = path.parent.name
        if not SPEAKER.match(speaker):
            c.skip(path, "speaker folder is not F<nn>/M<nn>")
            continue
        c.add(path, key=f"{speaker}_{path.stem}", speaker=speaker, gender=speaker[0])
    return c.result()
