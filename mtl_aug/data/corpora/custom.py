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
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..audio import AUDIO_EXTENSIONS
from ..manifest import FOUR_CLASSES
from ._common import Collector, is_hidden
from .base import CORPORA, CUSTOM, BuildResult, CorpusSpec

DEFINITION = "corpus.json"
CONFIG = "config.yaml"
REQUIRED_COLUMNS = ("path", "label", "speaker")
OPTIONAL_COLUMNS = ("gender", "session", "split")
SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
RESERVED = {"cross": "experiments/results/cross/ holds the cross-corpus results", "all": "the fold name 'all'"}


class CustomCorpusError(ValueError):
    """A user corpus that cannot be prepared as asked; the message names the file, row, column or option."""


@dataclass
class CustomCorpus:
    """What ``prepare --csv/--folders`` was asked: enough to rebuild the corpus and to use it by name."""

    name: str
    type: str  # "csv" | "folders"
    root: str  # absolute; overridden at run time by --root / <NAME>_ROOT
    csv: str | None = None  # absolute path of the CSV (type csv)
    speaker_regex: str | None = None  # folders: speaker id from the path below the label folder
    session_regex: str | None = None  # folders: session from the path below the label folder
    label_map: dict[str, str] = field(default_factory=dict)  # raw label -> class ("" drops it)
    classes: list[str] | None = None  # class order (and the only classes kept); default: sorted labels
    protocol: str = "auto"  # auto | loso | kfold | split | none
    n_folds: int | None = None  # kfold
    group_by: str = "speaker"  # speaker | session: the column folds keep apart
    # filled by prepare:
    class_names: list[str] = field(default_factory=list)
    label_column: str = "emotion"
    no_folds_reason: str | None = None

    @property
    def env_var(self) -> str:
        return env_var(self.name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CustomCorpus":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def env_var(name: str) -> str:
    """``mycorpus`` -> ``MYCORPUS_ROOT`` (as ``EMODB_ROOT`` for emodb)."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_ROOT"


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


# -- options -------------------------------------------------------------------------------------------
def parse_mapping(text: str | None, what: str = "--label-map") -> dict[str, str]:
    """``"Wut=angry,Freude=happy,Ekel="`` or a .json/.yaml file of the same mapping -> dict (``""`` = drop)."""
    if not text:
        return {}
    path = Path(text)
    if path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file():
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise CustomCorpusError(f"{what} {path}: expected a mapping 'label: class', got {type(data).__name__}")
        return {str(k).strip(): "" if v is None else str(v).strip() for k, v in data.items()}
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise CustomCorpusError(f"{what}: {part.strip()!r} is not FROM=TO (e.g. {what} Wut=angry,Ekel= ; an "
                                    "empty TO drops that label; or give a .json/.yaml file)")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def compile_regex(pattern: str | None, option: str) -> re.Pattern | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        raise CustomCorpusError(f"{option} {pattern!r} is not a valid regular expression: {err}") from None


def regex_value(rx: re.Pattern, text: str, group: str) -> str | None:
    """The named group ``group`` of the first match, else group 1, else the whole match; None without a match."""
    m = rx.search(text)
    if not m:
        return None
    if group in rx.groupindex:
        return m.group(group) or ""
    return (m.group(1) if rx.groups else m.group(0)) or ""


class _Labels:
    """Raw label -> (emotion, 4-class label) or a skip reason, under the corpus's --label-map and --classes."""

    def __init__(self, corpus: CustomCorpus, raw_labels: set[str], source: str) -> None:
        by_lower = {r.lower(): r for r in raw_labels}  # "--label-map wut=angry" also means the label "Wut"
        corpus.label_map = {(k if k in raw_labels else by_lower.get(k.lower(), k)): v for k, v in corpus.label_map.items()}
        unknown = sorted(set(corpus.label_map) - raw_labels)
        if unknown:
            raise CustomCorpusError(f"--label-map: {', '.join(map(repr, unknown))} "
                                    f"{'is not a label' if len(unknown) == 1 else 'are not labels'} of {source} "
                                    f"(its labels: {', '.join(sorted(raw_labels)) or 'none'})")
        self.map = corpus.label_map
        self.classes = [c.strip().lower() for c in corpus.classes] if corpus.classes else None
        if self.classes:
            reachable = {self.map.get(r, r).strip().lower() for r in raw_labels} - {""}
            missing = [c for c in self.classes if c not in reachable]
            if missing:
                raise CustomCorpusError(f"--classes: {', '.join(map(repr, missing))} is not a label of {source} "
                                        f"(after --label-map its labels are: {', '.join(sorted(reachable))})")

    def __call__(self, raw: str) -> tuple[str, str] | str:
        mapped = self.map.get(raw, raw)
        if not mapped.strip():
            return f"label {raw!r} dropped by --label-map"
        emotion = mapped.strip().lower()
        if self.classes is not None and emotion not in self.classes:
            return f"label {emotion!r} is not one of --classes {','.join(self.classes)}"
        return emotion, emotion if emotion in FOUR_CLASSES else ""


# -- builders ------------------------------------------------------------------------------------------
@dataclass
class CustomBuild(BuildResult):
    """Rows and skips, and the given split of each row (key -> train/val/test) when the CSV has one."""

    splits: dict[str, str] = field(default_factory=dict)


def build(corpus: CustomCorpus, root: Path, progress: bool = False) -> CustomBuild:
    if corpus.type == "csv":
        return build_csv(corpus, Path(root), progress)
    if corpus.type == "folders":
        return build_folders(corpus, Path(root), progress)
    raise CustomCorpusError(f"{corpus.name}: unknown corpus type {corpus.type!r} (csv or folders)")


def _key(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel


def read_table(path: Path) -> pd.DataFrame:
    """The user's CSV (comma, or tab for .tsv), every cell a string, column names trimmed and lower-cased."""
    if not path.is_file():
        raise CustomCorpusError(f"--csv {path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[],
                         sep="\t" if path.suffix.lower() == ".tsv" else ",", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CustomCorpusError(f"--csv {path}: cannot read it as CSV ({str(err).strip()})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


def inside_root(root: Path, text: str) -> Path | None:
    """The file ``text`` (relative to ``root``, or absolute) names, when it lies inside ``root`` (no symlink
    resolution: a link inside the root is fine); None when the path leaves the root."""
    p = Path(text.replace("\\", "/"))
    full = Path(os.path.normpath(p if p.is_absolute() else root / p))
    return full if full.is_relative_to(root) and full != root else None


def build_csv(corpus: CustomCorpus, root: Path, progress: bool = False) -> CustomBuild:
    src = Path(corpus.csv or "")
    df = read_table(src)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise CustomCorpusError(f"--csv {src}: missing column{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(map(repr, missing))} (its columns: {', '.join(df.columns) or 'none'}; "
                                f"required: {', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)})")
    root = Path(root)
    line = lambda i: f"{src.name} line {i + 2}"  # noqa: E731  (header = line 1)
    outside = [f"{line(i)}: {p!r}" for i, p in enumerate(df["path"]) if p.strip() and inside_root(root, p.strip()) is None]
    if outside:
        raise CustomCorpusError(f"--csv {src}: {len(outside)} path(s) outside the root {root} (paths are relative to "
                                f"--root): " + "; ".join(outside[:5]) + (" ..." if len(outside) > 5 else ""))
    if "split" in df.columns:
        bad = [f"{line(i)}: {v!r}" for i, v in enumerate(df["split"]) if v.strip().lower() not in SPLITS]
        if bad:
            raise CustomCorpusError(f"--csv {src}: column 'split' must be one of train, val (valid, validation, dev), "
                                    "test: " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    labels = _Labels(corpus, {v.strip() for v in df["label"] if v.strip()}, f"{src} (column 'label')")
    c = Collector(corpus.name, root, progress)
    splits: dict[str, str] = {}
    speakers_given = any(v.strip() for v in df["speaker"])
    for i, row in c.iterate(list(df.iterrows()), desc=corpus.name):
        rel_text, raw = row["path"].strip(), row["label"].strip()
        if not rel_text:
            c.skip(f"({line(i)})", "empty path")
            continue
        path = inside_root(root, rel_text)
        if not raw:
            c.skip(path, f"no label ({line(i)})")
            continue
        speaker = row["speaker"].strip()
        if speakers_given and not speaker:
            c.skip(path, f"no speaker id ({line(i)}) while other rows have one")
            continue
        if not path.is_file():
            c.skip(path, f"listed in {line(i)} but the file is missing")
            continue
        got = labels(raw)
        if isinstance(got, str):
            c.skip(path, got)
            continue
        emotion, label = got
        key = _key(c.rel(path))
        if c.add(path, key=key, speaker=speaker, gender=row.get("gender", "").strip(),
                 session=row.get("session", "").strip(), raw_label=raw, emotion=emotion, label=label):
            if "split" in df.columns:
                splits[key] = SPLITS[row["split"].strip().lower()]
    res = c.result()
    return CustomBuild(rows=res.rows, skipped=res.skipped, splits=splits)


def build_folders(corpus: CustomCorpus, root: Path, progress: bool = False) -> CustomBuild:
    root = Path(root)
    c = Collector(corpus.name, root, progress)
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not is_hidden(d, root))
    if not folders:
        raise CustomCorpusError(f"--folders {root}: no label folder inside (expected one folder per label, e.g. "
                                f"{root}/angry/*.wav)")
    for f in sorted(p for p in root.iterdir() if p.is_file() and not is_hidden(p, root)):
        c.skip(f, "not inside a label folder")
    labels = _Labels(corpus, {d.name.strip() for d in folders}, f"--folders {root} (its folder names)")
    speaker_rx = compile_regex(corpus.speaker_regex, "--speaker-regex")
    session_rx = compile_regex(corpus.session_regex, "--session-regex")
    files: list[tuple[Path, Path]] = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            if is_hidden(p, root):
                c.skip(p, "hidden file (e.g. a macOS ._ resource fork)")
            elif p.suffix.lower() not in AUDIO_EXTENSIONS:
                c.skip(p, f"extension {p.suffix or '(none)'} is not an audio format read here "
                          f"({', '.join(sorted(AUDIO_EXTENSIONS))})")
            else:
                files.append((folder, p))
    for folder, path in c.iterate(files, desc=corpus.name):
        got = labels(folder.name.strip())
        if isinstance(got, str):
            c.skip(path, got)
            continue
        emotion, label = got
        below = path.relative_to(folder).as_posix()
        speaker = session = ""
        if speaker_rx is not None:
            speaker = regex_value(speaker_rx, below, "speaker")
            if not speaker:
                c.skip(path, f"--speaker-regex {corpus.speaker_regex!r} finds no speaker id in {below!r}")
                continue
        if session_rx is not None:
            session = regex_value(session_rx, below, "session")
            if not session:
                c.skip(path, f"--session-regex {corpus.session_regex!r} finds no session in {below!r}")
                continue
        c.add(path, key=_key(c.rel(path)), speaker=speaker, session=session, raw_label=folder.name,
              emotion=emotion, label=label)
    res = c.result()
    return CustomBuild(rows=res.rows, skipped=res.skipped)
