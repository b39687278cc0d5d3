"""Shared builder machinery: file scanning, header probing, and bookkeeping of skipped files.

Every file a builder looks at ends up either as a manifest row or in ``skipped`` with a reason;
nothing is dropped silently.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

from ..audio import AUDIO_EXTENSIONS, AudioError, probe_audio
from ..manifest import manifest_row, to_frame
from .base import BuildResult

T = TypeVar("T")


def relpath(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (what manifests store)."""
    return path.relative_to(root).as_posix()


def is_hidden(path: Path, root: Path) -> bool:
    """Dot-files anywhere below the root, e.g. macOS ``._foo.wav`` resource forks inside a release."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


class Collector:
    """Accumulates rows and skips for one corpus build."""

    def __init__(self, corpus: str, root: Path, progress: bool = False) -> None:
        self.corpus = corpus
        self.root = Path(root)
        self.progress = progress
        self.rows: list[dict[str, object]] = []
        self.skipped: list[tuple[str, str]] = []
        self._keys: dict[str, str] = {}

    def rel(self, path: Path | str) -> str:
        """Path relative to the root; strings are taken as already relative (e.g. an expected file)."""
        if isinstance(path, Path):
            try:
                return relpath(path, self.root)
            except ValueError:
                pass
        return str(path)

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append((self.rel(path), reason))

    def scan(self, patterns: Iterable[str], base: Path | None = None) -> list[Path]:
        """Audio files matching the glob ``patterns`` under ``base`` (default: the root), sorted.

        Hidden files are recorded as skipped rather than read: they are not part of the release.
        """
        base = base or self.root
        found: set[Path] = set()
        for pattern in patterns:
            found.update(p for p in base.glob(pattern) if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        keep = []
        for path in sorted(found):
            if is_hidden(path, self.root):
                self.skip(path, "hidden file (e.g. a macOS ._ resource fork), not part of the release")
            else:
                keep.append(path)
        return keep

    def iterate(self, items: list[T], desc: str | None = None) -> Iterator[T]:
        """Progress bar over files (stderr), off unless ``progress``."""
        return iter(tqdm(items, desc=desc or self.corpus, unit="file", disable=not self.progress,
                         file=sys.stderr, leave=False))

    def add(self, path: Path, *, key: str, **fields: str) -> bool:
        """Probe ``path`` and append a row; unreadable audio or a duplicate key becomes a skip."""
        rel = self.rel(path)
        if key in self._keys:
            self.skip(rel, f"duplicate utterance key {key!r} (already taken by {self._keys[key]})")
            return False
        try:
            info = probe_audio(path)
        except AudioError as err:
            self.skip(rel, err.problem)
            return False
        self._keys[key] = rel
        self.rows.append(manifest_row(self.corpus, rel, info, key=key, **fields))
        return True

    def result(self) -> BuildResult:
        return BuildResult(rows=to_frame(self.rows), skipped=sorted(self.skipped))
