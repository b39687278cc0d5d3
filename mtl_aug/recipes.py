"""Config composition (training layer): which files and flags make a system's run, in one place.

* :func:`recipe_args` — the ``--config`` files of a system on a corpus (base + corpus + system, then the corpus's
  tuned settings for that system when it has them, for a neural system; corpus + system for a classical baseline,
  whose YAML declares ``family: baseline``);
* :func:`run_flags` / :func:`training_args` — the flags that make a run one fold x seed of a system;
* :func:`normalization_args` — the flag of a speaker/corpus-normalised run (both families);
* :func:`translate_args` — the flat ``model.*`` keys of configs and flags before issue 33 (``--model.w_aug``,
  ``model: {n_mels: 128}``) as the nested keys they stand for; they stay usable as shorthands.

Every command that trains (``train``, ``cv``, ``cross``, ``noise``/``adversarial`` for missing runs,
``pretrained``, sweeps through ``make_cli``) composes its arguments here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import yaml

from mtl_aug.provenance import REPO_ROOT
from mtl_aug.tasks import legacy

NEURAL_SYSTEMS = ("stl", "stl_aug", "mtl_aug", "mtl_aug_unlabelled", "no_recon", "no_augcls")
BASELINE_SYSTEMS = ("egemaps_svm", "compare_svm", "voice_svm")  # utterance features + SVM (mtl_aug.baseline)
SYSTEMS = NEURAL_SYSTEMS + BASELINE_SYSTEMS
NORMALIZATIONS = ("utterance", "speaker", "corpus")
FAMILY_KEY, BASELINE_FAMILY = "family", "baseline"
CONFIG_FLAGS = ("--config", "-c")


def config_path(rel: str) -> str:
    """A config file relative to the working directory when it exists there, else to the repository."""
    return rel if Path(rel).exists() else str(REPO_ROOT / rel)


def declared_family(path: str | Path) -> str | None:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return data.get(FAMILY_KEY) if isinstance(data, dict) else None


def config_walk(args: Sequence[str]) -> list[tuple[str, str]]:
    """``args`` in order as ``("config", file)`` for ``--config FILE`` / ``-c FILE`` / ``--config=FILE`` and
    ``("flag", arg)`` for everything else."""
    out, args, i = [], list(args), 0
    while i < len(args):
        a = args[i]
        if a in CONFIG_FLAGS and i + 1 < len(args):
            out.append(("config", args[i + 1]))
            i += 2
            continue
        out.append(("config", a.split("=", 1)[1]) if a.startswith("--config=") else ("flag", a))
        i += 1
    return out


def config_files(args: Sequence[str]) -> list[str]:
    return [v for kind, v in config_walk(args) if kind == "config"]


def is_baseline(args: Sequence[str]) -> bool:
    """Whether a run's args compose a baseline system (a ``--config`` YAML declaring ``family: baseline``)."""
    return any(declared_family(f) == BASELINE_FAMILY for f in config_files(args))


def is_baseline_system(system: str) -> bool:
    """Whether ``experiments/systems/<system>.yaml`` declares ``family: baseline`` (a classical system)."""
    return declared_family(config_path(f"experiments/systems/{system}.yaml")) == BASELINE_FAMILY


def tuned_config(corpus: str, system: str) -> str | None:
    """``experiments/tuned/<corpus>/<system>.yaml``: the settings searched for ``system`` on ``corpus``'s own dev
    folds (MTL-AUG's auxiliary-loss weights), when that search has been made; a corpus without one keeps the
    system's defaults."""
    path = config_path(f"experiments/tuned/{corpus}/{system}.yaml")
    return path if Path(path).exists() else None


def recipe_args(corpus: str, system: str, manifest_dir: str | Path = "data_manifests") -> list[str]:
    """The ``--config`` files of ``system`` on ``corpus``. The corpus config is ``experiments/corpora/<corpus>.yaml``,
    or for a user's own corpus the ``config.yaml`` that ``prepare --csv/--folders`` wrote beside its manifest;
    :func:`tuned_config` comes last, so a flag or a recipe file given after these overrides it."""
    system_yaml = config_path(f"experiments/systems/{system}.yaml")
    if system not in SYSTEMS and not Path(system_yaml).exists():
        raise SystemExit(f"unknown system '{system}': one of {', '.join(SYSTEMS)}")
    corpus_yaml = config_path(f"experiments/corpora/{corpus}.yaml")
    if not Path(corpus_yaml).exists():
        corpus_yaml = str(Path(manifest_dir) / corpus / "config.yaml")  # a user corpus (mtl_aug.data.custom_corpus)
    if not Path(corpus_yaml).exists():
        raise SystemExit(f"no corpus config experiments/corpora/{corpus}.yaml (nor {corpus_yaml} of your own corpus: "
                         f"python -m mtl_aug prepare --csv/--folders ... --name {corpus})")
    if is_baseline_system(system):
        return ["--config", corpus_yaml, "--config", system_yaml]
    tuned = tuned_config(corpus, system)
    return (["--config", config_path("experiments/base.yaml"), "--config", corpus_yaml, "--config", system_yaml]
            + (["--config", tuned] if tuned else []))


def run_flags(fold: str, seed: int, run_dir: Path) -> dict[str, object]:
    """The flags that make a run one fold x seed of its system; every other flag is the system's."""
    return {"--data.fold": fold, "--seed_everything": seed, "--model.seed": seed, "--data.seed": seed,
            "--trainer.default_root_dir": run_dir, "--trainer.logger.init_args.save_dir": run_dir}


def training_args(corpus: str, system: str, fold: str, seed: int, run_dir: Path, max_epochs: int | None = None,
                  extra: Sequence[str] = (), test_corpus: str | None = None,
                  manifest_dir: str | Path = "data_manifests", progress_bar: bool = False) -> list[str]:
    """Everything LightningCLI (or the baseline's parser) gets for one run."""
    args = recipe_args(corpus, system, manifest_dir) + [f"--data.manifest_dir={manifest_dir}"] + [
        f"{k}={v}" for k, v in run_flags(fold, seed, run_dir).items()]
    if not progress_bar:
        args.append("--trainer.enable_progress_bar=false")
    if test_corpus:
        args.append(f"--data.test_corpus={test_corpus}")
    if max_epochs is not None:
        args.append(f"--trainer.max_epochs={max_epochs}")
    return args + list(extra)


def recipe_fingerprint(args: Sequence[str]) -> str:
    """The recipe that trained a run, whichever fold, seed or folder it was: the settings its ``--config`` files
    amount to, merged in order as LightningCLI merges them (a later file's list replaces an earlier one's, ``key+``
    appends), and every flag but the run's fold, seeds and directories (:func:`run_flags`). A comment, a moved
    results folder or a setting moved from a recipe file into base.yaml changes nothing; an edited setting does.
    cv compares it with a finished run's before reusing that run; a release model's card with its cv folder's runs."""
    return _merged_digest(_recipe_parts(args))


def recipe_fingerprints(args: Sequence[str]) -> set[str]:
    """What a finished run of ``args`` may have recorded: :func:`recipe_fingerprint`, or for runs recorded before
    it the digest of each config file's content in turn (which a setting moved between files changed)."""
    parts = _recipe_parts(args)
    legacy = [json.dumps(v, sort_keys=True, default=str) if kind == "config" else
              v if kind == "flag" else f"unreadable config {v}" for kind, v in parts]
    return {_merged_digest(parts), _digest(legacy)}


def _merged_digest(parts: list[tuple[str, object]]) -> str:
    merged: dict = {}
    flags = []
    for kind, value in parts:
        if kind == "flag":
            flags.append(value)
        elif kind == "config" and isinstance(value, dict):
            _merge(merged, value)
        elif not (kind == "config" and value is None):  # an empty file adds nothing
            flags.append(f"unreadable config {value}")
    return _digest([json.dumps(merged, sort_keys=True, default=str)] + flags)


def _recipe_parts(args: Sequence[str]) -> list[tuple[str, object]]:
    """``args`` in order as ("config", parsed YAML), ("unreadable", path) or ("flag", arg), run identity left out."""
    parts: list[tuple[str, object]] = []
    for kind, a in config_walk(args):
        if kind == "config":
            try:
                parts.append(("config", yaml.safe_load(Path(a).read_text())))
            except (OSError, yaml.YAMLError):
                parts.append(("unreadable", a))
        elif canonical_key(a.split("=", 1)[0]) not in RUN_IDENTITY:
            parts.append(("flag", a))
    return parts


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _merge(into: dict, config: dict) -> None:
    for key, value in config.items():
        if key.endswith("+"):
            into[key[:-1]] = list(into.get(key[:-1]) or []) + list(value or [])
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class OtherRecipeError(Exception):
    """Finished runs in an output folder were trained with another recipe than the one asked for now."""


def other_recipe(args: Sequence[str], result: dict | None) -> bool:
    """A finished training run whose recorded fingerprint differs from what ``args`` would train now: reusing it
    would report the old recipe under the new one's name. Results written before fingerprints carry none and
    are taken as they are."""
    return bool(result and args and result.get("recipe") and result["recipe"] not in recipe_fingerprints(args))


def canonical_key(flag: str) -> str:
    """``--model.seed`` and ``--model.augment.init_args.seed`` are one setting: its nested spelling."""
    if flag.startswith("--model."):
        paths = legacy.flag_paths(flag[len("--model."):], None)
        if paths:
            return "--model." + paths[0]
    return flag


def retarget_args(args: Sequence[str], fold: str, seed: int, run_dir: Path) -> list[str]:
    """A finished run's recorded training args made into another fold x seed's, everything else kept: how a
    robustness command trains a missing run of a cv folder whose flags it does not know."""
    new = {canonical_key(k): v for k, v in run_flags(fold, seed, run_dir).items()}
    keys = [canonical_key(a.split("=", 1)[0]) for a in args]
    missing = [k for k, c in zip(run_flags(fold, seed, run_dir), new) if c not in keys]
    if missing:
        raise ValueError(f"not the training args of a cv run (no {', '.join(missing)})")
    return [f"{a.split('=', 1)[0]}={new[k]}" if k in new else a for k, a in zip(keys, args)]


# what makes a run one fold x seed in one folder, and what only changes its console: not part of the recipe
RUN_IDENTITY = frozenset([*(canonical_key(k) for k in run_flags("f", 0, Path("."))), "--trainer.enable_progress_bar"])


def normalization_args(normalize: str) -> list[str]:
    """The flag of a run whose features are normalised per speaker / corpus ([] for the models' own per-utterance
    normalisation). The same flag for both families: the front end's mode, or the baseline's ``normalize``."""
    if normalize not in NORMALIZATIONS:
        raise SystemExit(f"--normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return [] if normalize == "utterance" else [f"--model.normalize={normalize}"]


def model_config(config_files: Sequence[str | Path], flags: Sequence[str] = ()) -> dict:
    """The nested ``model`` config that LightningCLI composes from the ``model`` sections of ``config_files`` and
    ``--model.*`` flags (shorthands translated), without the data or trainer: what ``MTLAugModule.from_config``
    builds (benchmarks, tests)."""
    from jsonargparse import ArgumentParser

    from mtl_aug.tasks import MTLAugModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(MTLAugModule, "model", fail_untyped=False)
    args = []
    for f in config_files:
        section = (yaml.safe_load(Path(f).read_text()) or {}).get("model")
        if section:
            args.append("--model=" + yaml.safe_dump(legacy.nested_partial(section)))
    cfg = parser.parse_args(translate_args(args + list(flags)))
    return yaml.safe_load(parser.dump(cfg, skip_none=False))["model"]


# -- flat model keys (shorthands) -> nested keys ---------------------------------------------------------------
def translate_config(path_or_text: str) -> str | None:
    """The YAML of a config whose ``model`` section holds flat keys, translated (None: nothing to translate)."""
    p = Path(path_or_text)
    try:
        data = yaml.safe_load(p.read_text() if p.is_file() else path_or_text)
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict) or not legacy.is_flat(data["model"]):
        return None
    return yaml.safe_dump({**data, "model": legacy.nested_partial(data["model"])}, sort_keys=False)


def _flag(args: list[str], i: int) -> tuple[str, str, int]:
    """``(key after --model., value, index of the value)`` of ``--model.key=value`` or ``--model.key value``."""
    key, eq, value = args[i][len("--model."):].partition("=")
    if not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
        return key, args[i + 1], i + 1
    return key, value, i


def translate_args(args: Sequence[str]) -> list[str]:
    """LightningCLI args with every flat ``model.*`` key (in config files and flags) at its nested path(s)."""
    out, args, i = [], list(args), 0
    while i < len(args):
        a = args[i]
        if a in CONFIG_FLAGS and i + 1 < len(args):
            text = translate_config(args[i + 1])
            out += [a, text if text is not None else args[i + 1]]
            i += 2
            continue
        if a.startswith("--config="):
            text = translate_config(a.split("=", 1)[1])
            out.append(f"--config={text}" if text is not None else a)
        elif a.startswith("--model.") and legacy.flag_paths(*_flag(args, i)[:2]):
            key, value, i = _flag(args, i)
            out += [f"--model.{path}={value}" for path in legacy.flag_paths(key, value)]
        else:
            out.append(a)
        i += 1
    return out
