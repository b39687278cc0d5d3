"""The evaluation settings behind one interface, run by one command shell.

A :class:`Setting` (``cv``, ``cross``, ``noise``, ``adversarial``) says which options it adds, how it runs one
system and what it prints; :func:`main` is the command line all four share: the common options
(``--seeds``, ``--max-epochs``, ``--normalize``, ``--manifest-dir``, ``--force``, ``--dry-run``, ``--jobs``),
LightningCLI flags after ``--``, the provenance of the reports, one or several systems, and the errors that
are the user's situation rather than a bug (one line on stderr, exit 2).

    python -m mtl_aug <setting> [options] [-- LightningCLI flags]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mtl_aug.provenance import provenance
from mtl_aug.recipes import NORMALIZATIONS

from . import runs


class UserError(Exception):
    """A situation the user resolves (e.g. a cv checkpoint that is not on disk): one line, exit 2."""


class Setting:
    """One evaluation setting. ``run`` returns the system's summary (``{}`` for a dry run)."""

    name: str = ""
    doc: str = ""
    jobs_unit: str | None = "fold x seed runs"  # the unit of --jobs; None: the setting has no --jobs
    several_systems: bool = False  # --system takes a comma list

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def check(self, a: argparse.Namespace) -> None:
        """Reject option values argparse cannot (SystemExit with the reason)."""

    def user_errors(self) -> tuple[type[Exception], ...]:
        """The exceptions that are the user's situation: printed as ``<setting>: error: ...``, exit 2."""
        from mtl_aug.baseline.run import BaselineArgsError

        return (UserError, runs.OtherRecipeError, BaselineArgsError)

    def run(self, a: argparse.Namespace, system: str, extra: Sequence[str], meta: dict) -> dict:
        raise NotImplementedError

    def line(self, a: argparse.Namespace, summary: dict) -> str:
        raise NotImplementedError

    def done(self, a: argparse.Namespace, summaries: list[dict]) -> None:
        """Anything printed once every system has run."""


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default="3", type=_seeds,
                   help="a count N (seeds 0..N-1) or a comma list, e.g. '0,' for seed 0 alone (default 3)")
    p.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("--normalize", default="utterance", choices=list(NORMALIZATIONS),
                   help="log-mel normalisation: per utterance (the model's own), per speaker or per corpus "
                        "(statistics over each group's audio, test speakers included, never their labels); "
                        "results go to <system folder>_<mode>norm (cv/cross without --out; noise/adversarial "
                        "read <results-dir>/<system>_<mode>norm)")
    p.add_argument("--manifest-dir", default="data_manifests")
    p.add_argument("--force", action="store_true", help="redo finished runs too")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs (finished or not), check that the first one's configuration parses; train nothing")


def add_jobs_argument(p: argparse.ArgumentParser, unit: str = "fold x seed runs") -> None:
    p.add_argument("--jobs", default="auto",
                   help=f"train this many {unit} at once, each in its own process with an equal share of the torch "
                        "threads; 'auto' (default): 1 on a GPU, else one per core (at most 4)")


def split_extra(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``[own args] -- [LightningCLI flags]`` -> (own, extra)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _seeds(text: str) -> str:
    """Checked at parse time so that a bad value is a usage error, not a traceback; kept as text for the settings."""
    try:
        runs.parse_seeds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a count nor a comma-separated list of seeds") from None
    return text


def parser(setting: Setting) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m mtl_aug {setting.name}", description=setting.doc.split("\n")[0],
                                epilog="Flags after -- go to LightningCLI unchanged (for the runs it trains).")
    setting.add_arguments(p)
    if setting.jobs_unit:
        add_jobs_argument(p, setting.jobs_unit)
    add_common_arguments(p)
    return p


def main(setting: Setting, argv: Sequence[str]) -> int:
    own, extra = split_extra(argv)
    a = parser(setting).parse_args(own)
    setting.check(a)
    meta = provenance(setting.name, list(argv))
    systems = a.system.split(",") if setting.several_systems else [a.system]
    summaries = []
    for system in systems:
        try:
            s = setting.run(a, system, extra, meta)
        except setting.user_errors() as err:
            print(f"{setting.name}: error: {err}", file=sys.stderr)
            return 2
        if not a.dry_run:
            print(setting.line(a, s))
            summaries.append(s)
    if not a.dry_run:
        setting.done(a, summaries)
    return 0


def jobs(a: argparse.Namespace) -> int:
    return runs.parse_jobs(getattr(a, "jobs", 1))
