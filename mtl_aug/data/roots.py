"""Where each corpus lives: an explicit root, else the corpus's environment variable, else its default.

Committed files never hold absolute paths; roots are resolved on each machine at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from .corpora import get_corpus


class CorpusRootError(FileNotFoundError):
    """A corpus root that is unset, missing or empty; the message names corpus, env var and path."""

    def __str__(self) -> str:
        return str(self.args[0])


def root_candidate(corpus: str, root: str | Path | None = None) -> tuple[Path | None, str]:
    """The root that would be used, unchecked, and where it came from ("--root", "$VAR", "default")."""
    spec = get_corpus(corpus)
    if root is not None and str(root) != "":
        return Path(root).expanduser(), "--root"
    env = os.environ.get(spec.env_var, "")
    if env:
        return Path(env).expanduser(), f"${spec.env_var}"
    if spec.default_root:
        return Path(spec.default_root), "default"
    return None, ""


def resolve_root(corpus: str, root: str | Path | None = None) -> Path:
    """Absolute root of ``corpus``; raises CorpusRootError when unset, missing, not a folder or empty."""
    spec = get_corpus(corpus)
    path, source = root_candidate(corpus, root)
    hint = f"pass --root or set {spec.env_var}"
    if path is None:
        raise CorpusRootError(f"{corpus}: no corpus root given ({hint}; expected layout {spec.layout})")
    if not path.exists():
        raise CorpusRootError(f"{corpus}: root {path} (from {source}) does not exist ({hint})")
    if not path.is_dir():
        raise CorpusRootError(f"{corpus}: root {path} (from {source}) is not a folder ({hint})")
    if not any(path.iterdir()):
        raise CorpusRootError(f"{corpus}: root {path} (from {source}) is empty ({hint}; expected layout {spec.layout})")
    return path.resolve()
