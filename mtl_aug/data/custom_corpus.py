"""``prepare --csv/--folders``: a user's own corpus, written like a registered one and usable by name.

    python -m mtl_aug prepare --csv my.csv --name mycorpus --root /data/mycorpus
    python -m mtl_aug prepare --folders /data/mycorpus --name mycorpus --speaker-regex '^(\\d+)_'
    python -m mtl_aug prepare mycorpus            # rebuild it with the options it was prepared with

Writes ``<out-dir>/<name>/``: ``manifest.csv``, ``skipped.csv``, ``folds.json`` (when folds can be built),
``summary.json`` as for every corpus, plus ``corpus.json`` (the definition: type, root, options, classes)
and ``config.yaml`` (the LightningCLI data config: corpus, class names, label column), which
``cv``/``cross``/``noise``/``pretrained`` use when ``experiments/corpora/<name>.yaml`` does not exist, and
``train`` takes as ``--config``. Folds (``--protocol``): LOSO up to 12 speakers, else ``--n-folds``
(default 6) speaker-grouped folds of consecutive speakers; ``split`` = the CSV's own train/val/test
column; grouped by ``session`` instead of speaker with ``--group-by session`` (not speaker-independent);
no folds when the corpus has no speaker ids (it is then a cross-corpus test set only).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from .corpora.base import CUSTOM
from .corpora.custom import spec_of
from .corpora.custom_build import CustomBuild, build
from .corpora.custom_def import CONFIG, DEFINITION, CustomCorpus, CustomCorpusError
from .folds import Fold, _format, check_folds, folds_document, loso_folds, next_speaker, sorted_speakers
from .manifest import validate_manifest, write_manifest, write_skipped
from .summary import EmptyCorpusError, format_summary, summarize
from .roots import CorpusRootError

LOSO_MAX = 12  # --protocol auto: LOSO up to this many speakers, else speaker-grouped k-fold
DEFAULT_FOLDS = 6
PROTOCOLS = ("auto", "loso", "kfold", "split", "none")


def check_root(corpus: CustomCorpus) -> Path:
    path = Path(corpus.root).expanduser()
    what = f"{corpus.name}: root {path}"
    if not path.exists():
        raise CorpusRootError(f"{what} does not exist (pass --root, or set {corpus.env_var})")
    if not path.is_dir():
        raise CorpusRootError(f"{what} is not a folder (pass --root, or set {corpus.env_var})")
    if not any(path.iterdir()):
        raise CorpusRootError(f"{what} is empty")
    return path.resolve()


def balanced_kfold(groups: list[str], k: int) -> list[Fold]:
    """``k`` folds of consecutive groups (sorted), sizes differing by at most one; validation = the next
    fold's first group; named "<first>-<last>" (or the group itself)."""
    order = sorted_speakers(groups)
    if k < 2 or k > len(order):
        raise CustomCorpusError(f"--n-folds {k}: needs 2 .. {len(order)} (the number of groups)")
    size, extra = divmod(len(order), k)
    chunks, start = [], 0
    for i in range(k):
        n = size + (1 if i < extra else 0)
        chunks.append(order[start:start + n])
        start += n
    folds = []
    for i, test in enumerate(chunks):
        val = chunks[(i + 1) % k][0]
        train = [g for g in order if g not in test and g != val]
        if not train:
            raise CustomCorpusError(f"--n-folds {k} over {len(order)} groups leaves fold {i + 1} without training "
                                    "data; use fewer folds")
        name = test[0] if len(test) == 1 else f"{test[0]}-{test[-1]}"
        folds.append({"name": name, "train": train, "val": [val], "test": list(test)})
    return folds


def _no_folds(name: str, why: str, group_by: str) -> str:
    fix = ("give the speaker of each file with --speaker-regex (folders) or the CSV's speaker column, or build "
           "folds grouped by session with --group-by session (not speaker-independent)"
           if group_by == "speaker" else "give more sessions, or use speakers (--group-by speaker)")
    return (f"{name}: {why}, so no {'speaker-independent ' if group_by == 'speaker' else ''}folds can be built: cv, "
            f"noise, train with a fold, cross --train and pretrained refuse this corpus; it can be a cross-corpus "
            f"test set (cross --train A --test {name}). To build folds, {fix}")


def make_folds(corpus: CustomCorpus, df: pd.DataFrame, splits: dict[str, str]) -> tuple[list[Fold] | None, dict, str | None, pd.Series]:
    """``(folds or None, extra folds.json fields, reason for no folds, rows to drop: no group value)``."""
    keep = pd.Series(True, index=df.index)
    protocol = corpus.protocol
    if protocol == "auto" and splits:
        protocol = "split"
    if protocol == "none":
        return None, {}, f"{corpus.name}: prepared without folds (--protocol none); it can be a cross-corpus test set", keep
    speakers_known = bool((df["speaker"] != "").all())
    if protocol == "split":
        if not splits:
            raise CustomCorpusError("--protocol split needs a 'split' column in the CSV (train / val / test per row)")
        counts = Counter(splits.values())
        missing = [p for p in ("train", "val", "test") if not counts.get(p)]
        if missing:
            raise CustomCorpusError(f"--protocol split: the CSV's split column has no {' / '.join(missing)} rows "
                                    "(a fold needs training, validation (early stopping) and test rows)")
        folds = [{"name": "split", "train": ["train"], "val": ["val"], "test": ["test"]}]
        extra = {"group_by": "split", "groups": dict(sorted(splits.items()))}
        groups = df["key"].map(splits)
    else:
        col = corpus.group_by
        values = df[col].astype(str)
        if not (values != "").any():
            why = ("no speaker ids (the CSV's speaker column is empty)" if corpus.type == "csv" else
                   "no speaker ids (no --speaker-regex)") if col == "speaker" else f"no {col} values"
            return None, {}, _no_folds(corpus.name, why, col), keep
        keep = values != ""
        groups = values
        names = sorted_speakers(values[keep])
        if len(names) < 3:
            return None, {}, _no_folds(corpus.name, f"only {len(names)} {col}(s) ({', '.join(names)}); folds need "
                                       "at least 3 (test, validation, training)", col), keep
        if protocol == "auto":
            protocol = "loso" if len(names) <= LOSO_MAX and not corpus.n_folds else "kfold"
        if protocol == "loso":
            folds = loso_folds(names, next_speaker)
        elif protocol == "kfold":
            folds = balanced_kfold(names, corpus.n_folds or min(DEFAULT_FOLDS, len(names)))
        else:
            raise CustomCorpusError(f"--protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
        extra = {} if col == "speaker" else {"group_by": col}
    # the speaker-disjointness check every corpus's folds pass (here over the fold's groups; a given split is
    # one fold that tests only its test rows) ...
    if protocol != "split":
        check_folds(folds, df[keep].assign(speaker=groups[keep]), label_column="emotion")
    # ... and whether folds over another grouping keep speakers apart too
    if extra.get("group_by"):
        leaks = speaker_overlap(folds, df[keep], groups[keep]) if speakers_known else []
        extra["speaker_independent"] = (not leaks) if speakers_known else None
        if leaks:
            extra["speaker_leaks"] = leaks
    extra["protocol"] = "grouped_kfold" if protocol == "kfold" else protocol
    return folds, extra, None, keep


def speaker_overlap(folds: list[Fold], df: pd.DataFrame, groups: pd.Series) -> list[str]:
    """Speakers found in two of train/val/test of one fold, when folds are over groups other than speakers."""
    leaks = []
    for fold in folds:
        spk = {part: set(df.loc[groups.isin(fold[part]), "speaker"]) for part in ("train", "val", "test")}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = sorted(spk[a] & spk[b])
            if both:
                leaks.append(f"fold {fold['name']}: speakers {', '.join(both[:5])} in both {a} and {b}")
    return leaks


def config_text(corpus: CustomCorpus, out_dir: str, folds: list[Fold] | None, protocol: str | None) -> str:
    how = f"{len(folds)} folds ({protocol})" if folds else "no folds (a cross-corpus test set only)"
    head = (f"# {corpus.name}: your own corpus ({corpus.type}), written by `python -m mtl_aug prepare`; "
            f"{len(corpus.class_names)} classes, {how}.\n"
            f"# Train: python -m mtl_aug train --config experiments/base.yaml --config {Path(out_dir) / corpus.name / CONFIG} "
            "--config experiments/systems/mtl_aug.yaml --data.fold=<fold>\n")
    data = {"data": {"corpus": corpus.name, "manifest_dir": str(out_dir), "class_names": list(corpus.class_names),
                     "label_column": corpus.label_column}}
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def prepare_custom(corpus: CustomCorpus, out_dir: str = "data_manifests", progress: bool = True) -> dict:
    """Build, check and write a user corpus; returns its summary (also in ``summary.json``)."""
    root = check_root(corpus)
    corpus.root = str(root)
    result: CustomBuild = build(corpus, root, progress)
    df, skipped = result.rows, list(result.skipped)
    if df.empty:
        reasons = f"; {len(skipped)} files skipped, e.g. {skipped[0]}" if skipped else ""
        raise EmptyCorpusError(f"{corpus.name}: no usable audio under {root}{reasons}")
    folds, extra, reason, keep = make_folds(corpus, df, result.splits)
    if reason and corpus.protocol not in ("auto", "none"):
        raise CustomCorpusError(f"--protocol {corpus.protocol}: {reason}")
    if not keep.all():
        col = corpus.group_by
        skipped += [(p, f"no {col} value (folds are grouped by {col})") for p in df.loc[~keep, "path"]]
        df = df[keep].reset_index(drop=True)
    present = sorted(set(df["emotion"]))
    corpus.class_names = [c.strip().lower() for c in corpus.classes] if corpus.classes else present
    if len(corpus.class_names) < 2:
        raise CustomCorpusError(f"{corpus.name}: needs at least 2 classes; found {present}")
    corpus.no_folds_reason = reason
    validate_manifest(df)
    out = Path(out_dir) / corpus.name
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(df, out / "manifest.csv")
    write_skipped(skipped, out / "skipped.csv")
    protocol = extra.pop("protocol", None)
    if folds:
        doc = folds_document(corpus.name, protocol, folds, label_column=corpus.label_column) | extra
        (out / "folds.json").write_text(_format(doc))
    elif (out / "folds.json").exists():
        (out / "folds.json").unlink()  # a stale fold file must not outlive its manifest
    (out / DEFINITION).write_text(corpus.to_json())
    (out / CONFIG).write_text(config_text(corpus, out_dir, folds, protocol))
    spec = spec_of(corpus)
    CUSTOM[corpus.name] = spec
    summary = summarize(spec, df, skipped, folds)
    summary.update({
        "kind": f"labelled (own corpus: {corpus.type})", "protocol": protocol if folds else None,
        "class_names": corpus.class_names,
        "class_counts": {c: int((df["emotion"] == c).sum()) for c in corpus.class_names},
        "n_labelled": int(df["emotion"].isin(corpus.class_names).sum()),
        "four_class_counts": summary.pop("label_counts"),  # the rows the 4-class protocols can use
        "label_counts": {},
        "group_by": extra.get("group_by", "speaker") if folds else None,
        "speaker_independent": (extra.get("speaker_independent", True) if folds else None),
        "no_folds_reason": reason,
    })
    if extra.get("speaker_leaks"):
        summary["warnings"].append(f"folds grouped by {extra['group_by']} are not speaker-independent: "
                                   + "; ".join(extra["speaker_leaks"][:3]))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_custom_summary(summary: dict, out: str = "") -> str:
    lines = format_summary(summary, out).splitlines()
    counts = ", ".join(f"{k} {v}" for k, v in summary["class_counts"].items())
    lines.insert(1, f"  classes: {len(summary['class_names'])} ({counts})")
    if summary["no_folds_reason"]:
        lines.insert(2, f"  no folds: {summary['no_folds_reason']}")
    elif summary["group_by"] != "speaker":
        lines.insert(2, f"  folds grouped by {summary['group_by']}: "
                        + {True: "speaker-independent", False: "NOT speaker-independent",
                           None: "speaker independence unknown (no speaker ids)"}[summary["speaker_independent"]])
    if out and summary["no_folds_reason"]:
        lines.append(f"  use it by name as a test set: cross --train <corpus> --test {summary['corpus']}")
    elif out:
        lines.append(f"  use it by name: cv --corpus {summary['corpus']}, cross --train/--test {summary['corpus']}, "
                     f"train --config {Path(out) / CONFIG}")
    return "\n".join(lines)
