"""``python -m mtl_aug pretrained --corpus <name>``: the release model of a corpus, with a model card.

    python -m mtl_aug pretrained --corpus emodb [--system mtl_aug|compare_svm] [--max-epochs N] [--seed 0] [--seeds 1] \
        [--out pretrained/emodb] [-- <LightningCLI flags>]

Trains ``--system`` (default ``mtl_aug``) on ALL speakers of the corpus with the same configuration
files and code path as every other number of the project (``make_cli`` + ``run_training``, configs
``experiments/base.yaml`` + ``corpora/<corpus>.yaml`` + ``systems/<system>.yaml``) and
``--data.fold=all``: every speaker trains except the first fold's validation speakers, whose UAR is
logged every epoch (the default recipe ships the final averaged weights; a recipe with a monitored
checkpoint, e.g. ``experiments/recipes/recipe1.yaml``, ships the best epoch). There is no test split: the model's expected
accuracy on unseen speakers is the cross-validated UAR of the evaluation suite
(``experiments/results/<corpus>/<system>/summary.json``, written by ``make cv``), copied into the card
when present.

Writes into ``--out``: ``model.ckpt`` (the tested weights, without optimizer state; load it with
``mtl_aug.checkpoints.load_model`` or ``python -m mtl_aug predict ... --ckpt``), ``config.yaml``
(the full resolved training configuration), ``MODEL_CARD.md`` and ``model_card.json`` (provenance:
config, corpus + manifest sha256, protocol, cross-validated UAR, date, git commit, versions), and the
training logs under ``run/``. ``--seeds N`` (N > 1) releases a seed ensemble instead: members trained with seeds
``seed .. seed+N-1``, identical but for the seed, written as ``model_s<seed>.ckpt`` with logs under ``run_s<seed>/``;
``predict`` takes them all (``--ckpt`` repeated) and averages their class probabilities, as
``python -m mtl_aug ensemble`` scores a cv folder's seeds, which the card quotes when it has been run.
A classical baseline system (``--system compare_svm``) is fitted once on every speaker and written as
``model.pkl`` + card, for ``predict --svm`` (late fusion with a network).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import warnings
from pathlib import Path
from typing import Sequence

from mtl_aug.inference.cv_summary import cv_result, same_recipe  # noqa: F401 (the card's API)
from mtl_aug.inference.model_card import CARD_JSON, CARD_MD, build_card, write_card
from mtl_aug.tables import val_note

log = logging.getLogger(__name__)

RESULTS_DIR = Path("experiments/results")
CHECKPOINT_NAME = "model.ckpt"
SVM_NAME = "model.pkl"  # a classical baseline's release (pretrained --system compare_svm)
# kept in the release checkpoint; the optimizer/scheduler/loop state is for resuming training only
RELEASE_KEYS = ("state_dict", "hyper_parameters", "hparams_name", "datamodule_hyper_parameters",
                "datamodule_hparams_name", "mtl_aug_format", "mtl_aug_version", "pytorch-lightning_version",
                "epoch", "global_step")


def training_args(corpus: str, system: str, out: Path, seed: int = 0, max_epochs: int | None = None,
                  manifest_dir: str = "data_manifests", extra: Sequence[str] = (), run_name: str = "run") -> list[str]:
    """The system's recipe on every speaker (``--data.fold=all``), its logs under ``<out>/<run_name>``."""
    from mtl_aug.data.items import ALL_SPEAKERS
    from mtl_aug.recipes import training_args as recipe_training_args

    return recipe_training_args(corpus, system, ALL_SPEAKERS, seed, out / run_name, max_epochs, extra,
                                manifest_dir=manifest_dir, progress_bar=True)


def default_out(corpus: str, system: str) -> Path:
    """``pretrained/<corpus>`` for a network; ``pretrained/<corpus>_<system>`` for a classical baseline, so that
    releasing the SVM never replaces the network it is fused with."""
    from mtl_aug.recipes import is_baseline_system

    return Path("pretrained") / (f"{corpus}_{system}" if is_baseline_system(system) else corpus)


def member_names(seed: int, seeds: int) -> list[tuple[int, str, str]]:
    """``(seed, checkpoint file, log folder)`` of each member: one model is ``model.ckpt`` + ``run/``."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if seeds == 1:
        return [(seed, CHECKPOINT_NAME, "run")]
    return [(s, f"model_s{s}.ckpt", f"run_s{s}") for s in range(seed, seed + seeds)]


def release_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint without optimizer/loop state (smaller; loads the same for inference)."""
    import torch

    from mtl_aug.checkpoints import read_checkpoint

    ckpt, _ = read_checkpoint(src)
    slim = {k: ckpt[k] for k in RELEASE_KEYS if k in ckpt}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, dst)
    return dst


def make_pretrained(corpus: str, system: str = "mtl_aug", out: str | Path | None = None, max_epochs: int | None = None,
                    seed: int = 0, manifest_dir: str = "data_manifests", extra: Sequence[str] = (),
                    results_dir: str | Path = RESULTS_DIR, seeds: int = 1) -> dict:
    """Train the release model (or the ``seeds`` members of a seed ensemble) and write checkpoint(s) + config + model
    card; returns the card."""
    from mtl_aug.data.items import manifest_paths
    from mtl_aug.inference.loading import load_models
    from mtl_aug.recipes import is_baseline_system
    from mtl_aug.training import make_cli, run_training

    out = Path(out or default_out(corpus, system))
    names = member_names(seed, seeds)
    baseline = is_baseline_system(system)
    if baseline and seeds != 1:  # refused before the previous release is cleared away
        raise ValueError(f"--seeds {seeds}: an SVM is deterministic, release it once")
    manifest, folds = manifest_paths(corpus, manifest_dir)  # fails early with "run make prepare"
    # a previous release: its checkpoints must not be picked up, nor its members outlive a smaller release
    for old in [*out.glob("run"), *out.glob("run_s*")]:
        shutil.rmtree(old)
    for old in [*out.glob(CHECKPOINT_NAME), *out.glob("model_s*.ckpt"), *out.glob(SVM_NAME)]:
        old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if baseline:
        return make_svm_release(corpus, system, out, seed, manifest, folds, manifest_dir, extra, results_dir)
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    trained = []
    for s, file, run_name in names:
        args = training_args(corpus, system, out, s, max_epochs, manifest_dir, extra, run_name)
        cli = make_cli(args, run=False)
        result = run_training(cli, test=False)
        best = result.get("best_checkpoint")
        if not best:
            raise RuntimeError("training produced no checkpoint (is a ModelCheckpoint callback configured?)")
        trained.append((s, release_checkpoint(best, out / file), result, args, cli))
        log.info("release member seed %d: %s (%s)", s, out / file, val_note(result))
    first_seed, ckpt, result, args, cli = trained[0]
    # the release files must load through the inference path (several: as one ensemble, same classes and rate)
    model = load_models([str(t[1]) for t in trained], "cpu")
    config_file = Path(cli.trainer.log_dir or out / names[0][2]) / "config.yaml"
    config_text = config_file.read_text() if config_file.exists() else cli.parser.dump(cli.config)
    (out / "config.yaml").write_text(config_text)
    card = build_card(corpus=corpus, system=system, result=result, config_text=config_text, args=args, ckpt=ckpt,
                      manifest=manifest, folds=folds, class_names=[str(c) for c in model.hparams.class_names],
                      hparams=dict(model.hparams), results_dir=results_dir, max_epochs=max_epochs, seed=first_seed,
                      checkpoint_format=model.checkpoint_format,
                      members=[(s, c, r) for s, c, r, _, _ in trained] if len(trained) > 1 else ())
    write_card(out, card)
    return card


def make_svm_release(corpus: str, system: str, out: Path, seed: int, manifest: Path, folds: Path, manifest_dir: str,
                     extra: Sequence[str], results_dir: str | Path) -> dict:
    """A classical baseline fitted on every speaker (``model.pkl``) + its card: ``predict --svm`` fuses it."""
    import yaml

    from mtl_aug.baseline.run import load_baseline, train_and_test

    args = training_args(corpus, system, out, seed, None, manifest_dir, extra)
    result = train_and_test(args, out / "run")
    ckpt = out / SVM_NAME
    shutil.copyfile(result["best_checkpoint"], ckpt)
    svm = load_baseline(ckpt)  # the release file must load through the prediction path
    config_text = yaml.safe_dump({"model": vars(svm.cfg), "data": svm.data}, sort_keys=False)
    (out / "config.yaml").write_text(config_text)
    card = build_card(corpus=corpus, system=system, result=result, config_text=config_text, args=args, ckpt=ckpt,
                      manifest=manifest, folds=folds, class_names=list(svm.hparams.class_names),
                      hparams=vars(svm.hparams), results_dir=results_dir, max_epochs=None, seed=seed,
                      checkpoint_format=f"baseline {svm.cfg.feature_set} svm")
    write_card(out, card)
    return card


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtl_aug pretrained", description=__doc__.split("\n")[0],
                                epilog="Flags after -- go to LightningCLI unchanged (e.g. -- --trainer.accelerator=gpu).")
    p.add_argument("--corpus", required=True, help="prepared corpus (data_manifests/<corpus>/)")
    p.add_argument("--system", default="mtl_aug", help="experiments/systems/<system>.yaml (default mtl_aug)")
    p.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("--seed", type=int, default=0, help="the (first member's) seed")
    p.add_argument("--seeds", type=int, default=1,
                   help="N > 1: release a soft-voting ensemble of N members, seeds seed..seed+N-1 (default 1)")
    p.add_argument("--out", default=None, help="output folder (default pretrained/<corpus>; for an SVM "
                                               "pretrained/<corpus>_<system>)")
    p.add_argument("--manifest-dir", default="data_manifests")
    p.add_argument("--results-dir", default=str(RESULTS_DIR), help="where `make cv` wrote its summaries")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    a = build_parser().parse_args(own)
    try:
        card = make_pretrained(a.corpus, a.system, a.out, a.max_epochs, a.seed, a.manifest_dir, extra, a.results_dir,
                               a.seeds)
    except (FileNotFoundError, ValueError) as err:
        print(f"pretrained: error: {err}", file=sys.stderr)
        return 1
    out = Path(a.out or default_out(a.corpus, a.system))
    if card.get("family") == "baseline":
        print(f"release SVM: {out / SVM_NAME} ({val_note(card['training'])}: inner cross-validation)")
    elif card.get("ensemble"):
        print(f"release ensemble of {len(card['ensemble'])}: " + ", ".join(
            f"{out / m['file']} ({val_note(m)})" for m in card["ensemble"]))
    else:
        print(f"release model: {out / CHECKPOINT_NAME} ({val_note(card['training'])}, "
              f"{card['training']['epochs']} epochs)")
    print(f"model card: {out / CARD_MD}, {out / CARD_JSON}")
    print(f"cross-validated: {card['cross_validated']['text']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
