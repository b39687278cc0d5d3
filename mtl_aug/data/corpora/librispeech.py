"""LibriSpeech (Panayotov et al. 2015), unlabelled speech for the auxiliary losses.

Layout: ``<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`` where the root is the
``LibriSpeech`` folder; ``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``) gives the gender.
Speaker = the speaker folder, session = the chapter folder. No emotion labels, no folds.
"""

from __future__ import annotations

from pathlib import Path

from ._common import Collector
from .base import BuildResult, register_corpus


def read_genders(root: Path) -> dict[str, str]:
    path = root / "SPEAKERS.TXT"
    if not path.is_file():
        return {}
    genders = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[0].isdigit() and fields[1] in ("M", "F"):
            genders[fields[0]] = fields[1]
    return genders


@register_corpus("librispeech", env_var="LIBRISPEECH_ROOT", kind="unlabelled",
                 layout="<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-0000.flac (root = the LibriSpeech folder)")
def build_librispeech(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("librispeech", root, progress)
    genders = read_genders(root)
    for path in c.iterate(c.scan(["*/*/*/*"])):
        speaker, chapter = path.parent.parent.name, path.parent.name
        if not path.stem.startswith(f"{speaker}-{chapter}-"):
            c.skip(path, f"file name does not start with <speaker>-<chapter>- ({speaker}-{chapter}-)")
            continue
        c.add(path, key=path.stem, speaker=speaker, gender=genders.get(speaker, ""), session=chapter)
    return c.result()
