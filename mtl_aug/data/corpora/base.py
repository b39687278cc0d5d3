"""Corpus registry: every corpus is a :class:`CorpusSpec` registered under its name.

A spec says where the root comes from (env var), what kind of data it holds, how to build its
manifest rows from the root, and which fold protocol applies. Adding a corpus = one module with one
``@register_corpus(...)``-decorated builder; nothing else branches on corpus names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Protocol

import pandas as pd

Kind = Literal["labelled", "unlabelled", "noise"]
ValRule = Callable[[str, list[str]], str]


@dataclass
class BuildResult:
    """Manifest rows (typed DataFrame) and the files left out, as (relative path, reason)."""

    rows: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Builder(Protocol):
    def __call__(self, root: Path, progress: bool = False) -> BuildResult: ...


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    env_var: str
    kind: Kind
    build: Builder
    protocol: Literal["loso", "grouped_kfold"] | None = None
    layout: str = ""  # the expected folder layout, quoted in errors when nothing is found
    val_rule: ValRule | None = None  # LOSO: validation speaker for a test speaker
    group_size: int | None = None  # grouped k-fold: consecutive speakers per fold
    default_root: str | None = None  # used when neither --root nor the env var is given
    expected: dict[str, int] = field(default_factory=dict)  # counts of a full release, e.g. {"n_labelled": 5531}


CORPORA: dict[str, CorpusSpec] = {}
# A user's own corpora (``prepare --csv/--folders``), registered at run time from their definition file
# ``<manifest dir>/<name>/corpus.json`` by :func:`mtl_aug.data.corpora.custom.ensure_registered`.
CUSTOM: dict[str, CorpusSpec] = {}


def register_corpus(name: str, *, env_var: str, kind: Kind, **options: object) -> Callable[[Builder], Builder]:
    """Decorator registering a builder function as corpus ``name``."""

    def wrap(build: Builder) -> Builder:
        if name in CORPORA:
            raise ValueError(f"corpus {name!r} registered twice")
        CORPORA[name] = CorpusSpec(name=name, env_var=env_var, kind=kind, build=build, **options)  # type: ignore[arg-type]
        return build

    return wrap


class UnknownCorpusError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def get_corpus(name: str) -> CorpusSpec:
    if name in CORPORA:
        return CORPORA[name]
    if name in CUSTOM:
        return CUSTOM[name]
    raise UnknownCorpusError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}; your own corpus: "
                             f"python -m mtl_aug prepare --csv FILE --name {name} (or --folders DIR), see docs/own_corpus.md")
