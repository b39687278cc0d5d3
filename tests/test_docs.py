"""The documentation works as written (docs/development.md, "Documentation checks"):

* every command of README.md, docs/*.md and experiments/results/README.md parses — the ``bash`` code blocks and
  inline ``python -m mtl_aug ...`` / ``make ...`` spans: the command's own parser runs on the exact arguments (for
  LightningCLI commands with every ``--config`` file read) and is stopped before anything runs; ``make`` lines are
  expanded with ``make -n`` and checked the same way;
* every repository path they name exists (globs match), and every link to a heading finds it;
* README.md's results table is what ``python -m mtl_aug headline`` makes of the committed results.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "experiments" / "results" / "README.md"]
SHELL_LANGS = ("bash", "sh", "shell", "console")
REPO_TOP = ("experiments/", "docs/", "mtl_aug/", "tests/", "benchmarks/", "data_manifests/", ".ci/")
ROOT_FILES = ("Makefile", "README.md", "pyproject.toml", "constraints.txt")
PLACEHOLDERS = ("<", ">", "{", "}", "…", "...", "$")
OUTPUT_FLAGS = ("--out", "--json", "--csv", "--out-dir", "--md", "OUT")
# Paths a documented command creates before another one reads them (own-corpus example, `make synth`, noise).
GENERATED = ("data_manifests/mine", "experiments/results/mine", "data_manifests/synthetic", "data_manifests/demand")
# A config a documented command writes first (prepare --folders ... --name mine), parsed as this stand-in instead.
STAND_INS = {"data_manifests/mine/config.yaml": "experiments/corpora/synthetic.yaml"}
STAND_IN_CORPORA = {"mine": "synthetic"}  # `train --corpus mine` reads that config.yaml too
EXTRA_CHECKED = ("cv", "cross", "noise", "adversarial", "pretrained")  # their flags after `--` go to LightningCLI


# -- reading the docs ------------------------------------------------------------------------------------
def split_doc(text: str) -> tuple[list[tuple[str, str]], str]:
    """(fenced code blocks as (language, body), the prose with the blocks removed)."""
    blocks = [(m.group(1).strip().lower(), m.group(2)) for m in re.finditer(r"^```([^\n`]*)\n(.*?)^```", text, re.M | re.S)]
    prose = re.sub(r"^```[^\n`]*\n.*?^```", "", text, flags=re.M | re.S)
    return blocks, prose


def split_ops(tokens: list[str]) -> list[list[str]]:
    """``a && b; c`` -> the three commands."""
    commands, current = [], []
    for t in tokens:
        if t in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(t)
    return [c for c in commands + [current] if c]


def shell_commands(body: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments dropped, split as the shell would."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        commands += split_ops(shlex.split(line, comments=True))
    return commands


def inline_commands(prose: str) -> list[list[str]]:
    """Inline spans that are whole commands (a bare `python -m mtl_aug predict` names a command: not checked)."""
    spans = re.findall(r"`([^`\n]+)`", prose)
    commands = [c for s in spans if s.startswith(("python -m mtl_aug ", "make "))
                and not any(p in s for p in PLACEHOLDERS + ("[", "|")) for c in split_ops(shlex.split(s))]
    return [c for c in commands if len(c) > (4 if c[0] == "python" else 1)]


def all_commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        blocks, prose = split_doc(doc.read_text())
        for lang, body in blocks:
            if lang in SHELL_LANGS:
                found += [(doc.relative_to(REPO).as_posix(), c) for c in shell_commands(body)]
        found += [(doc.relative_to(REPO).as_posix(), c) for c in inline_commands(prose)]
    return found


# -- parsing without running ---------------------------------------------------------------------------
class Parsed(BaseException):
    """Raised right after a command's top-level argument parse succeeded: nothing of the command runs."""


@contextlib.contextmanager
def parse_only():
    """Top-level ``parse_args`` of argparse and jsonargparse parsers (LightningCLI's included) raise ``Parsed`` once
    they succeed. A direct ``parse_known_args`` returns (``pretrain`` and the sweep objective hand the rest to
    LightningCLI, whose parse then stops the command)."""
    import jsonargparse

    depth = [0]
    patched = [(argparse.ArgumentParser, "parse_args", True), (argparse.ArgumentParser, "parse_known_args", False),
               (jsonargparse.ArgumentParser, "parse_args", True)]
    originals = [(cls, name, cls.__dict__[name]) for cls, name, _ in patched]

    def wrap(orig, stops):
        def wrapper(self, *args, **kwargs):
            depth[0] += 1
            try:
                result = orig(self, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0 and stops:
                raise Parsed(result)
            return result
        return wrapper

    for (cls, name, stops), (_, _, orig) in zip(patched, originals):
        setattr(cls, name, wrap(orig, stops))
    try:
        yield
    finally:
        for cls, name, orig in originals:
            setattr(cls, name, orig)


def parse(call, what: str):
    """Run ``call`` under :func:`parse_only`; the parsed namespace (None after --help/--print_config or a
    command that parses nothing). A parse error fails the test with the parser's message."""
    err = io.StringIO()
    with parse_only(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            call()
        except Parsed as p:
            return p.args[0]
        except SystemExit as e:
            if e.code in (0, None):
                return None
            pytest.fail(f"{what}: does not parse (exit {e.code}):\n{err.getvalue()[-1500:]}")
    return None


def stand_in(argv: list[str]) -> list[str]:
    return [STAND_IN_CORPORA.get(a, a) if i and argv[i - 1] == "--corpus" else STAND_INS.get(a, a)
            for i, a in enumerate(argv)]


def check_mtl_aug(argv: list[str], where: str) -> None:
    from mtl_aug import cli

    argv = stand_in(argv)
    what = f"{where}: python -m mtl_aug {shlex.join(argv)}"
    ns = parse(lambda: cli.main(list(argv)), what)
    if "--" in argv and argv[0] in EXTRA_CHECKED and ns is not None:
        check_lightning_extras(ns, argv[argv.index("--") + 1:], what)


def check_lightning_extras(ns, extra: list[str], what: str) -> None:
    """A setting's flags after ``--``, parsed by LightningCLI with its system's configs (neural systems with a
    corpus config only)."""
    from mtl_aug import recipes
    from mtl_aug.training import make_cli

    corpus, system = getattr(ns, "corpus", None) or getattr(ns, "train", None), getattr(ns, "system", None)
    if system not in recipes.NEURAL_SYSTEMS or not (REPO / "experiments" / "corpora" / f"{corpus}.yaml").exists():
        return
    args = recipes.recipe_args(corpus, system) + list(extra)
    parse(lambda: make_cli(args, run=False), f"{what} (flags after --)")


def check_script(argv: list[str], where: str) -> None:
    script = REPO / argv[0]
    assert script.is_file(), f"{where}: no script {argv[0]}"
    saved = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv[1:]]
    try:
        parse(lambda: runpy.run_path(str(script), run_name="__main__"), f"{where}: {shlex.join(argv)}")
    finally:
        sys.argv, sys.path[:] = saved[0], saved[1]


def expand_make(tokens: list[str], where: str) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-n", "-s", *tokens], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{where}: make {shlex.join(tokens)} fails: {proc.stderr.strip()}"
    return shell_commands(proc.stdout)


def check_command(tokens: list[str], where: str) -> str | None:
    """Check one command; what kind it was (None: not ours, e.g. wandb or git)."""
    for i, t in enumerate(tokens[:-1]):
        if t == "-m" and tokens[i + 1] == "mtl_aug":
            check_mtl_aug(tokens[i + 2:], where)
            return "mtl_aug"
    scripts = [i for i, t in enumerate(tokens) if t.startswith("benchmarks/") and t.endswith(".py")]
    if scripts:
        check_script(tokens[scripts[0]:], where)
        return "script"
    if tokens[0] == "make":
        for line in expand_make(tokens[1:], where):
            check_command(line, f"{where} ({shlex.join(tokens)})")
        return "make"
    return None


@pytest.mark.skipif(sys.platform == "win32", reason="make and shell syntax")
def test_every_documented_command_parses():
    kinds = {}
    for where, tokens in all_commands():
        kind = check_command(tokens, where)
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds.get("mtl_aug", 0) >= 40 and kinds.get("make", 0) >= 10, kinds  # the docs were read at all


def test_the_checker_catches_a_bad_flag_and_a_missing_config():
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_mtl_aug(["cv", "--corpus", "emodb", "--system", "stl", "--seeds", "3", "--no-such-flag"], "test")
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_mtl_aug(["train", "--config", "experiments/base.yaml", "--model.no_such_key=1"], "test")
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_mtl_aug(["fit", "--config", "experiments/no_such.yaml"], "test")
    with pytest.raises(pytest.fail.Exception, match="flags after --"):
        check_mtl_aug(["cv", "--corpus", "emodb", "--system", "stl", "--", "--model.no_such_key=1"], "test")


# -- paths and links -----------------------------------------------------------------------------------
def path_candidates(tokens: list[str]) -> list[str]:
    out, skip_next = [], False
    for t in tokens:
        if skip_next:
            skip_next = False
            continue
        if t in OUTPUT_FLAGS:
            skip_next = True
            continue
        key, eq, value = t.partition("=")
        if eq and key.lstrip("-") in [f.lstrip("-") for f in OUTPUT_FLAGS]:
            continue
        for v in ([value] if eq else []) + [t]:
            v = v.strip("'\"").rstrip(".,:;)")
            if v.startswith(REPO_TOP) or v in ROOT_FILES:
                out.append(v)
    return out


def missing_paths(doc: Path) -> list[str]:
    blocks, prose = split_doc(doc.read_text())
    found = []
    for lang, body in blocks:
        if lang in SHELL_LANGS:
            for tokens in shell_commands(body):
                found += path_candidates(tokens)
    for span in re.findall(r"`([^`\n]+)`", prose):
        found += path_candidates(span.split())
    bad = []
    for p in sorted(set(found)):
        if any(x in p for x in PLACEHOLDERS) or p.startswith(GENERATED):
            continue
        if "*" in p:
            if not list(REPO.glob(p.rstrip("/"))):
                bad.append(f"{p} (glob matches nothing)")
        elif not (REPO / p).exists():
            bad.append(p)
    return bad


def slug(heading: str) -> str:
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def anchors(md: Path) -> set[str]:
    _, prose = split_doc(md.read_text())
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.*)$", prose, re.M)}


def broken_links(doc: Path) -> list[str]:
    _, prose = split_doc(doc.read_text())
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            bad.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            bad.append(f"{target} (no such heading)")
    return bad


def test_the_path_and_link_checks_catch_what_is_missing(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("# Title\n\nSee `experiments/no_such.yaml`, [x](nowhere.md), [y](#title), [z](#nope).\n\n"
                   "```bash\npython -m mtl_aug fit --config experiments/absent.yaml --out experiments/new_dir\n```\n")
    assert missing_paths(doc) == ["experiments/absent.yaml", "experiments/no_such.yaml"]
    assert broken_links(doc) == ["nowhere.md", "#nope (no such heading)"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_path_and_link_exists(doc):
    assert missing_paths(doc) == []
    assert broken_links(doc) == []


def test_the_readme_results_table_is_generated_from_the_results():
    from mtl_aug.evaluation import headline

    text = (REPO / "README.md").read_text()
    config = REPO / headline.CONFIG
    assert headline.replace_block(text, headline.block(config, REPO / "experiments" / "results")) == text, (
        "README.md's results table is stale: run `python -m mtl_aug headline`")


def test_readme_is_short_and_ci_runs_its_test_command():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "make test" in readme and "make test" in (REPO / ".ci" / "run").read_text()
