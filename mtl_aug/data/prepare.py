"""``python -m mtl_aug prepare <corpus>``: build a corpus's manifest, skipped list, folds and summary.

Your own corpus (no code): ``prepare --csv my.csv --name NAME --root DIR`` or ``prepare --folders DIR
--name NAME [--speaker-regex RE]``, see :mod:`mtl_aug.data.custom_corpus` and docs/own_corpus.md.

Writes ``<out_dir>/<corpus>/manifest.csv`` (all rows), ``skipped.csv`` (path, reason; always),
``folds.json`` (labelled corpora with a protocol) and ``summary.json`` (counts, deterministic: no
timestamps or absolute paths, so regenerated files diff cleanly).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from .corpora import CORPORA, CorpusSpec, UnknownCorpusError, get_corpus
from .folds import Fold, check_folds, grouped_kfold, loso_folds, sorted_speakers, write_folds
from .manifest import validate_manifest, write_manifest, write_skipped
from .roots import CorpusRootError, resolve_root
from .summary import EmptyCorpusError, format_summary, summarize


def build_folds(spec: CorpusSpec, df: pd.DataFrame) -> list[Fold]:
    """Folds over the speakers of the 4-class subset (labelled corpora only)."""
    speakers = sorted_speakers(df.loc[df["label"] != "", "speaker"])
    if spec.protocol == "loso":
        return loso_folds(speakers, spec.val_rule)
    if spec.protocol == "grouped_kfold":
        return grouped_kfold(speakers, spec.group_size or 1)
    raise ValueError(f"{spec.name}: unknown protocol {spec.protocol!r}")


def prepare(corpus: str, root: str | None = None, out_dir: str = "data_manifests", progress: bool = True) -> dict:
    """Build and write the manifest files of ``corpus``; returns the summary dict.

    Raises CorpusRootError (root unset/missing/empty) or EmptyCorpusError (nothing usable found).
    """
    spec = get_corpus(corpus)
    root_path = resolve_root(corpus, root)
    result = spec.build(root_path, progress=progress)
    df = result.rows
    if df.empty:
        reasons = f"; {len(result.skipped)} files skipped, e.g. {result.skipped[0]}" if result.skipped else ""
        raise EmptyCorpusError(f"{corpus}: no usable audio under {root_path} (expected layout {spec.layout}){reasons}")
    validate_manifest(df)
    folds = None
    if spec.kind == "labelled" and spec.protocol:
        folds = build_folds(spec, df)
        check_folds(folds, df)
    out = Path(out_dir) / corpus
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(df, out / "manifest.csv")
    write_skipped(result.skipped, out / "skipped.csv")
    if folds:
        write_folds(out / "folds.json", corpus, spec.protocol, folds)
    elif (out / "folds.json").exists():
        (out / "folds.json").unlink()  # a stale fold file must not outlive its manifest
    summary = summarize(spec, df, result.skipped, folds)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtl_aug prepare", description="Build manifests, folds and summaries for a corpus.",
                                epilog="Your own corpus: --csv FILE or --folders DIR, with --name (docs/own_corpus.md).")
    p.add_argument("corpus", nargs="?", help=f"corpus to prepare: {', '.join(sorted(CORPORA))}, or the name of "
                                             "your own corpus prepared before (rebuilt with its options)")
    p.add_argument("--root", default=None, help="corpus root (default: the corpus's environment variable); "
                                                "--csv: the folder the CSV's paths are relative to (default: the CSV's folder)")
    p.add_argument("--out-dir", default="data_manifests", help="output folder (default: data_manifests)")
    p.add_argument("--all-present", action="store_true", help="prepare every corpus whose root resolves")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    own = p.add_argument_group("your own corpus")
    own.add_argument("--csv", default=None, help="CSV with columns path (relative to --root), label, speaker; "
                                                 "optional gender, session, split (train/val/test)")
    own.add_argument("--folders", default=None, metavar="DIR", help="DIR/<label>/.../<file>: one folder per label")
    own.add_argument("--name", default=None, help="the corpus's name in every command (not a registered corpus's)")
    own.add_argument("--speaker-regex", default=None, help="--folders: the speaker id in each file's path below its "
                     "label folder: the group 'speaker', else group 1, else the match (e.g. '^(\\d+)_')")
    own.add_argument("--session-regex", default=None, help="--folders: the session in that path, likewise")
    own.add_argument("--label-map", default=None, help="rename labels: 'Wut=angry,Freude=happy,Ekel=' (empty = drop) "
                                                       "or a .json/.yaml file")
    own.add_argument("--classes", default=None, help="class order, comma-separated (other labels are skipped); "
                                                     "default: every label, sorted")
    own.add_argument("--protocol", default="auto", choices=["auto", "loso", "kfold", "split", "none"],
                     help="folds: auto = the CSV's split column if any, else LOSO up to 12 speakers, else k-fold")
    own.add_argument("--n-folds", type=int, default=None, help="kfold: number of speaker-grouped folds (default 6)")
    own.add_argument("--group-by", default="speaker", choices=["speaker", "session"],
                     help="the column folds keep apart (session: not speaker-independent)")
    return p


def _custom_definition(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The CustomCorpus asked for by --csv/--folders, or rebuilt from a prepared one's corpus.json."""
    from .corpora.custom import check_name, read_definition
    from .corpora.custom_def import CustomCorpus, parse_mapping

    if args.corpus:  # `prepare mycorpus`: again, with the options it was prepared with
        corpus = read_definition(args.corpus, args.out_dir)
        if corpus is None:
            parser.error(f"unknown corpus {args.corpus!r}: one of {', '.join(sorted(CORPORA))}, or your own corpus "
                         f"with --csv FILE / --folders DIR and --name (no {args.out_dir}/{args.corpus}/corpus.json)")
        if args.root:
            corpus.root = str(Path(args.root).resolve())
        return corpus
    if bool(args.csv) == bool(args.folders):
        parser.error("give --csv FILE or --folders DIR (one of them)")
    if not args.name:
        parser.error("--name is required with --csv / --folders")
    check_name(args.name, Path(__file__).resolve().parents[2] / "experiments" / "corpora")
    if args.folders and args.root and Path(args.root).resolve() != Path(args.folders).resolve():
        parser.error("--folders DIR is the corpus root; leave out --root")
    if args.csv and (args.speaker_regex or args.session_regex):
        parser.error("--speaker-regex / --session-regex apply to --folders; a CSV has speaker and session columns")
    csv = Path(args.csv).resolve() if args.csv else None
    root = Path(args.folders or args.root or csv.parent).resolve()
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    return CustomCorpus(name=args.name, type="csv" if args.csv else "folders", root=str(root),
                        csv=str(csv) if csv else None, speaker_regex=args.speaker_regex,
                        session_regex=args.session_regex, label_map=parse_mapping(args.label_map), classes=classes,
                        protocol=args.protocol, n_folds=args.n_folds, group_by=args.group_by)


def _run_custom(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .custom_corpus import format_custom_summary, prepare_custom

    corpus = _custom_definition(args, parser)
    summary = prepare_custom(corpus, out_dir=args.out_dir, progress=not args.no_progress)
    print(format_custom_summary(summary, out=str(Path(args.out_dir) / corpus.name)))


def _run_one(corpus: str, root: str | None, out_dir: str, progress: bool) -> None:
    summary = prepare(corpus, root=root, out_dir=out_dir, progress=progress)
    print(format_summary(summary, out=str(Path(out_dir) / corpus)))


def main(argv: list[str] | None = None) -> int:
    """CLI entry; ``argv`` excludes the ``prepare`` sub-command word. Returns the exit code."""
    from .corpora.custom_def import CustomCorpusError

    parser = _parser()
    args = parser.parse_args(argv)
    own = bool(args.csv or args.folders)
    if own and (args.corpus or args.all_present):
        parser.error("--csv / --folders prepare your own corpus named by --name: leave out the corpus name and --all-present")
    if not own and args.all_present == bool(args.corpus):
        parser.error("give a corpus or --all-present (not both), or your own corpus with --csv/--folders and --name")
    if args.all_present and args.root:
        parser.error("--root applies to one corpus, not to --all-present")
    try:
        if own or (args.corpus and args.corpus not in CORPORA):
            _run_custom(args, parser)
            return 0
        if args.corpus:
            _run_one(args.corpus, args.root, args.out_dir, not args.no_progress)
            return 0
        done = 0
        for name in sorted(CORPORA):
            try:
                resolve_root(name)
            except CorpusRootError as err:
                print(f"skip {err}")
                continue
            _run_one(name, None, args.out_dir, not args.no_progress)
            done += 1
        if not done:
            print("error: no corpus root resolves; set e.g. EMODB_ROOT", file=sys.stderr)
            return 2
        return 0
    except (CorpusRootError, EmptyCorpusError, UnknownCorpusError, CustomCorpusError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
