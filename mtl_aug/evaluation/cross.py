"""``python -m mtl_aug cross``: cross-corpus / cross-language evaluation.

    python -m mtl_aug cross --train ravdess --test emodb --system mtl_aug --seeds 3 [--normalize speaker]

Protocol (docs/protocols.md, setting 2): train on every speaker of corpus A except the validation
speakers of A's first fold (``--data.fold=all``; early stopping and checkpoint selection on them),
test on every utterance of corpus B in the label set (``--data.test_corpus=B``), one run per seed.

Label sets: B's labels (its own class column: ``emotion`` of a user corpus, the 4-class ``label`` of a
registered one; ``--test-label-column`` to choose) must map onto A's classes; ``--label-map
'bored=neutral,surprised='`` renames them (an empty class drops a label). A test set with a label that maps
onto none of A's classes is refused before training, naming the label (:mod:`mtl_aug.data.labels`).

Feature normalisation (``--normalize``): ``utterance`` (default, the model's own per-utterance
log-mel mean/variance normalisation), ``speaker`` (per-speaker log-mel statistics, at training and
test time) or ``corpus`` (per-corpus statistics); see :class:`mtl_aug.features.GroupNormalization`.

Outputs in ``<out>`` (default ``experiments/results/cross/<A>_to_<B>/<system>[_<normalize>norm]``):
the per-run JSON, ``folds.csv``, ``predictions.csv``, ``summary.json``, ``summary.md``,
``confusion.png``; and over every system run for A→B: ``experiments/results/cross/<A>_to_<B>.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from mtl_aug import tables
from mtl_aug.io import atomic_write_text, read_json
from mtl_aug.provenance import provenance
from mtl_aug.recipes import SYSTEMS

from . import aggregate, runs, shell
from .dry_run import dry_run as show_runs
from .cv import run_line, write_report

ALL = "all"


def default_out(train: str, test: str, system: str, normalize: str = "utterance") -> Path:
    return runs.normalized_out(runs.RESULTS_DIR / "cross" / f"{train}_to_{test}" / system, normalize)


def label_args(label_map: dict[str, str] | None, test_label_column: str | None) -> list[str]:
    """LightningCLI flags for the test corpus's labels (``cross --label-map / --test-label-column``)."""
    args = [f"--data.test_label_map={json.dumps(label_map)}"] if label_map is not None else []
    return args + ([f"--data.test_label_column={test_label_column}"] if test_label_column else [])


def run_cross(train: str, test: str, system: str, seeds: list[int], out: str | Path | None = None,
              normalize: str = "utterance", max_epochs: int | None = None, extra: Sequence[str] = (),
              manifest_dir: str = "data_manifests", force: bool = False, meta: dict | None = None,
              dry_run: bool = False, jobs: int = 1, label_map: dict[str, str] | None = None,
              test_label_column: str | None = None) -> dict:
    test_manifest = Path(manifest_dir) / test / "manifest.csv"
    if not test_manifest.exists():
        raise SystemExit(f"no manifest for the test corpus at {test_manifest}: run `python -m mtl_aug prepare {test}`")
    runs.fold_names(train, manifest_dir)  # the training corpus needs folds (its validation speakers): say so now
    out = Path(out or default_out(train, test, system, normalize))
    run_list = runs.make_runs(train, system, [ALL], seeds, out, max_epochs,
                              [*label_args(label_map, test_label_column), *extra], test_corpus=test,
                              manifest_dir=manifest_dir)
    runs.apply_normalization(run_list, normalize)
    if dry_run:
        show_runs(run_list, out, force)
        return {}
    results = runs.run_all(run_list, f"cross {train}->{test}/{system}", run_line, force=force, jobs=jobs)
    meta = meta or provenance("cross", ["--train", train, "--test", test, "--system", system])
    protocol = (f"cross-corpus {train} → {test}: trained on all {train} speakers but the validation speaker(s) of its "
                f"first fold, tested on {tested_set(test, results[0].get('class_names'))}"
                f"{mapping_text(label_map, test_label_column)}; {normalize}-level feature normalisation"
                f"{runs.trained_on_val_note(results)}")
    summary = write_report(out, results, meta | {"normalize": normalize, "train": train, "test": test,
                                                 **({"label_map": label_map} if label_map is not None else {})},
                           f"{system} {train} → {test}", protocol)
    summary["out"] = str(out)
    write_combined(out.parent, train, test)
    return summary


def tested_set(test: str, class_names) -> str:
    """What a cross-corpus test set holds: every 4-class utterance, or every one mapped onto the trained classes."""
    from .cv import class_set

    text = class_set(class_names)
    return f"every 4-class utterance of {test}" if text == "4-class" else \
        f"every utterance of {test} whose label maps onto the {text}"


def mapping_text(label_map: dict[str, str] | None, column: str | None) -> str:
    parts = [f"its column '{column}'"] if column else []
    if label_map:
        parts.append("labels mapped " + ", ".join(f"{k} → {v or '(dropped)'}" for k, v in label_map.items()))
    return f" ({'; '.join(parts)})" if parts else ""


def write_combined(pair_dir: Path, train: str, test: str) -> Path | None:
    """``<pair_dir>.md``: one row per system (and normalisation) run for this corpus pair."""
    rows, plain = [], True  # plain: every system ran on the 4-class set without a label map
    order = {name: i for i, name in enumerate(SYSTEMS)}
    found = sorted(Path(pair_dir).glob("*/summary.json"), key=lambda p: (order.get(p.parent.name, 99), p.parent.name))
    for path in found:
        s = read_json(path)
        if not s:
            continue
        plain = plain and tested_set(test, s.get("class_names")).startswith("every 4-class") and not s.get("label_map")
        rows.append([path.parent.name, s.get("normalize", "utterance"), aggregate.fmt_pct(s["uar"]),
                     aggregate.fmt_pct(s["wa"]), aggregate.fmt_pct(s["f1"]), len(s["seeds"])])
    if not rows:
        return None
    md = [f"## Cross-corpus {train} → {test}", "",
          f"Protocol: train on all {train} speakers (validation speaker(s) of its first fold held out), test on "
          + (f"every 4-class utterance of {test}. " if plain else f"every utterance of {test} in the label set (each "
             "system's summary.md names its classes and label map). ") + "Values in %, mean ± std over seeds.", "",
          tables.markdown_table(["system", "normalisation", "UAR", "WA", "macro-F1", "seeds"], rows), ""]
    return atomic_write_text(Path(str(pair_dir) + ".md"), "\n".join(md))


class CrossCorpus(shell.Setting):
    name, doc, jobs_unit = "cross", __doc__, "seeds"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train", required=True, help="training corpus (all its speakers)")
        p.add_argument("--test", required=True, help="test corpus (all its labelled utterances)")
        p.add_argument("--system", required=True, help=f"one of {', '.join(SYSTEMS)}")
        p.add_argument("--out", default=None)
        p.add_argument("--label-map", default=None,
                       help="the test corpus's labels onto the trained classes: 'bored=neutral,surprised=' (empty = "
                            "drop) or a .json/.yaml file; a label that maps onto no class refuses the test set")
        p.add_argument("--test-label-column", default=None,
                       help="the test corpus's column of labels (default: emotion for your own corpus, label = the "
                            "4-class set for a registered one)")

    def user_errors(self) -> tuple[type[Exception], ...]:
        from mtl_aug.data.corpora.custom_def import CustomCorpusError
        from mtl_aug.data.labels import LabelMapError

        return (*super().user_errors(), LabelMapError, CustomCorpusError)

    def run(self, a: argparse.Namespace, system: str, extra: Sequence[str], meta: dict) -> dict:
        from mtl_aug.data.corpora.custom_def import parse_mapping

        label_map = parse_mapping(a.label_map) if a.label_map else None
        return run_cross(a.train, a.test, system, runs.parse_seeds(a.seeds), a.out, a.normalize, a.max_epochs, extra,
                         a.manifest_dir, a.force, meta, a.dry_run, shell.jobs(a), label_map, a.test_label_column)

    def line(self, a: argparse.Namespace, s: dict) -> str:
        f = aggregate.fmt_pct
        return (f"{a.system} {a.train} -> {a.test} ({a.normalize} normalisation): UAR {f(s['uar'])}, WA {f(s['wa'])}, "
                f"F1 {f(s['f1'])} over {len(s['seeds'])} seed(s) -> {s['out']}/summary.md")


SETTING = CrossCorpus()


def main(argv: list[str]) -> int:
    return shell.main(SETTING, argv)
