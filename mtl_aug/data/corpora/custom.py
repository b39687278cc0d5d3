"""A user's own corpus, with no code: a CSV (path, label, speaker) or one folder per label.

``python -m mtl_aug prepare --csv my.csv --name mycorpus --root DIR`` or
``python -m mtl_aug prepare --folders DIR --name mycorpus --speaker-regex '^(\\d+)_'`` (see
:mod:`mtl_aug.data.custom_corpus`) builds the rows here and writes, besides the files every corpus has
(``manifest.csv``, ``skipped.csv``, ``folds.json``, ``summary.json``), the corpus's definition
``corpus.json`` (type, root, options, class names) and a LightningCLI data config ``config.yaml``.
Commands then take the corpus by name: :func:`ensure_registered` reads ``corpus.json`` and registers a
:class:`CorpusSpec` (root from ``--root``, ``<NAME>_ROOT`` or the stored root) in ``CUSTOM``.

Labels: ``raw_label`` = the label as written (CSV value or folder name); ``emotion`` = the label after the
optional ``--label-map``, in lower case (the corpus's classes; config ``label_column: emotion``);
``label`` = the same when it is one of the 4-class set (angry, happy, neutral, sad), else "" (so the
corpus also works with the 4-class protocols of the registered corpora).
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import CORPORA, CUSTOM, CorpusSpec
from .custom_build import build
from .custom_def import DEFINITION, NAME, RESERVED, CustomCorpus, CustomCorpusError


def check_name(name: str, repo_configs: Path | None = None) -> None:
    """Refuse names that are not plain identifiers or that a registered corpus or a corpus config already uses."""
    if not NAME.match(name or ""):
        raise CustomCorpusError(f"--name {name!r}: use letters, digits, '_' or '-', starting with a letter "
                                "(it names the data_manifests folder, the results and the root variable)")
    if name in RESERVED:
        raise CustomCorpusError(f"--name {name!r} is reserved ({RESERVED[name]}); choose another name")
    if name in CORPORA:
        raise CustomCorpusError(f"--name {name!r} collides with the registered corpus {name!r}; choose another name "
                                f"(registered: {', '.join(sorted(CORPORA))})")
    for base in filter(None, [Path("experiments/corpora"), repo_configs]):
        if (base / f"{name}.yaml").exists():
            raise CustomCorpusError(f"--name {name!r} collides with the corpus config {base / (name + '.yaml')}; "
                                    "choose another name")


def definition_path(name: str, manifest_dir: str | Path) -> Path:
    return Path(manifest_dir) / name / DEFINITION


def read_definition(name: str, manifest_dir: str | Path) -> CustomCorpus | None:
    """The definition of a prepared user corpus, or None when ``name`` is not one (in ``manifest_dir``)."""
    path = definition_path(name, manifest_dir)
    if not path.is_file():
        return None
    try:
        return CustomCorpus.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise CustomCorpusError(f"{path}: not a corpus definition ({err}); prepare the corpus again") from None


def spec_of(corpus: CustomCorpus) -> CorpusSpec:
    protocol = None if corpus.no_folds_reason else corpus.protocol
    layout = f"the files listed in {corpus.csv}" if corpus.type == "csv" else "<root>/<label>/.../<file>.wav"
    return CorpusSpec(name=corpus.name, env_var=corpus.env_var, kind="labelled", build=lambda root, progress=False:
                      build(corpus, root, progress), protocol=protocol, layout=layout,  # type: ignore[arg-type]
                      default_root=corpus.root)


def ensure_registered(name: str, manifest_dir: str | Path = "data_manifests") -> CorpusSpec | None:
    """Register the user corpus ``name`` prepared in ``manifest_dir`` (no-op for a registered corpus or an
    unknown name: the later lookup then says what is missing). Returns its spec when it is a user corpus."""
    if name in CORPORA or not name:
        return None
    corpus = read_definition(name, manifest_dir)
    if corpus is None:
        return CUSTOM.get(name)
    CUSTOM[name] = spec_of(corpus)
    return CUSTOM[name]


def no_folds_reason(name: str, manifest_dir: str | Path = "data_manifests") -> str | None:
    """Why a prepared user corpus has no folds (no speakers, too few), or None."""
    try:
        corpus = read_definition(name, manifest_dir)
    except CustomCorpusError:
        return None
    return corpus.no_folds_reason if corpus else None


def own_label_column(name: str, manifest_dir: str | Path = "data_manifests") -> str | None:
    """The column holding a user corpus's classes ("emotion"); None for a registered corpus."""
    try:
        corpus = read_definition(name, manifest_dir)
    except CustomCorpusError:
        return None
    return corpus.label_column if corpus else None
