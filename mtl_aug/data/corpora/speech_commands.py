"""Speech Commands v0.02 background noise (Warden 2018), the fallback noise when DEMAND is absent.

Layout: ``<root>/_background_noise_/*.wav`` (root = the Speech Commands folder; the
``_background_noise_`` folder itself is accepted too). Four files are real recordings
(doing_the_dishes, dude_miaowing, exercise_bike, running_tap); ``white_noise`` and ``pink_noise`` are
synthetic: raw_label says "real" or "synthetic" so that evaluation can keep to real noise.
"""

from __future__ import annotations

from pathlib import Path

from ._common import Collector
from .base import BuildResult, register_corpus

SYNTHETIC = frozenset({"white_noise", "pink_noise"})
NOISE_DIR = "_background_noise_"


@register_corpus("speech_commands", env_var="NOISE_ROOT", kind="noise", layout=f"<root>/{NOISE_DIR}/running_tap.wav")
def build_speech_commands(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("speech_commands", root, progress)
    base = root / NOISE_DIR if (root / NOISE_DIR).is_dir() else root
    for path in c.iterate(c.scan(["*"], base=base)):
        c.add(path, key=path.stem, raw_label="synthetic" if path.stem in SYNTHETIC else "real")
    return c.result()
