"""The rows of a user's own corpus: from its CSV or from one folder per label, labels mapped and checked."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..audio import AUDIO_EXTENSIONS
from ..manifest import FOUR_CLASSES
from ._common import Collector, is_hidden
from .base import BuildResult
from .custom_def import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, SPLITS, CustomCorpus, CustomCorpusError


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
