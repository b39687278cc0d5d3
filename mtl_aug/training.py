"""LightningCLI wiring and the ``train`` command (fit, then test the best checkpoint).

``run_training`` is the one function that trains and tests a configuration; the CLI, the
cross-validation driver and the sweep runner all go through it, so every number the project reports
comes from the same code path.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from mtl_aug.data.datamodule import SERDataModule
from mtl_aug.recipes import translate_args
from mtl_aug.tables import confusion_table, val_note
from mtl_aug.tasks import MTLAugModule

log = logging.getLogger(__name__)


class MTLAugCLI(LightningCLI):
    """LightningCLI whose model follows the data's label set, sample rate and functionals, and which reads the
    flat ``model.*`` keys of older configs and flags as the nested keys they stand for (``recipes.translate_args``)."""

    LINKS = ("class_names", "sample_rate", "functionals")

    def add_arguments_to_parser(self, parser) -> None:
        # The label set and the sample rate are properties of the data; the model follows them.
        for key in self.LINKS:
            parser.link_arguments(f"data.{key}", f"model.{key}")

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, translate_args(args) if isinstance(args, (list, tuple)) else args)

    def _parse_ckpt_path(self) -> None:
        """``test|validate|predict --ckpt_path``: the checkpoint's model config (a format-1 checkpoint's flat
        hyper-parameters translated) over the parsed one, as Lightning does for its own format."""
        from mtl_aug.checkpoints import read_checkpoint
        from mtl_aug.tasks.config import module_config

        sub = self.config.get("subcommand")
        path = self.config[sub].get("ckpt_path") if sub else None
        if not path or not Path(path).is_file():
            return
        config = module_config(read_checkpoint(path)[0])
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        self.config = self.parser.parse_object({sub: {"model": config}}, self.config)


def make_cli(args: list[str] | None, run: bool = True) -> MTLAugCLI:
    # `python -m mtl_aug <cmd> ...` hands LightningCLI the args after <cmd>; its warning about args and
    # sys.argv both being set is about scripts, not this dispatcher.
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    return MTLAugCLI(
        MTLAugModule,
        SERDataModule,
        args=args,
        run=run,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
    )


def run_training(cli: MTLAugCLI, test: bool = True) -> dict:
    """Fit, reload the best validation-UAR checkpoint, test; returns the fold's results."""
    trainer, model, dm = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, datamodule=dm)
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
    result: dict = {"fold": dm.fold_info.get("name"), "best_checkpoint": ckpt, "epochs": trainer.current_epoch,
                    "best_val_uar": _float(getattr(trainer.checkpoint_callback, "best_model_score", None)),
                    "final_val_uar": _float(trainer.callback_metrics.get("val/uar")),
                    "fold_info": dm.fold_info, "class_names": list(model.hparams.class_names)}
    if test and "test" in dm.datasets:
        _test_the_checkpoint_as_saved(trainer)
        metrics = trainer.test(model, datamodule=dm, ckpt_path="best" if ckpt else None, verbose=False)[0]
        result.update({k.split("/", 1)[1]: float(v) for k, v in metrics.items() if k.startswith("test/")})
        result["confusion"] = [list(map(int, row)) for row in model.test_confusion]
        result["predictions"] = model.test_predictions
    log_dir = trainer.log_dir  # a collective under DDP: every rank must read it, not only rank 0
    if trainer.is_global_zero and log_dir:
        out = Path(log_dir) / "results.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        result["results_file"] = str(out)
    return result


def _test_the_checkpoint_as_saved(trainer) -> None:
    """Test the weights the checkpoint file holds, as predict, export and the robustness commands do.

    A weight-averaging callback saves the averaged weights as the checkpoint's ``state_dict``, but when the same
    trainer reloads that checkpoint it puts the raw (not averaged) weights back into the model, to resume
    training: without this, cv would report the raw weights of the selected epoch, not the model a user gets."""
    from lightning.pytorch.callbacks import WeightAveraging

    trainer.callbacks[:] = [cb for cb in trainer.callbacks if not isinstance(cb, WeightAveraging)]


def summary(result: dict) -> str:
    lines = [f"fold {result['fold']}: test UAR {result['uar']:.4f}  WA {result['wa']:.4f}  macro-F1 "
             f"{result['f1']:.4f}  ({val_note(result)}, "
             f"{result['fold_info'].get('n_test', 0)} test utterances)"]
    lines.append(confusion_table(result["confusion"], result["class_names"]))
    return "\n".join(lines)


def _float(x) -> float | None:
    return None if x is None else float(x)


def recipe_argv(argv: list[str]) -> list[str]:
    """``train --corpus C --system S [flags]``: the system's recipe on the corpus (``recipes.recipe_args``: base,
    corpus, system and the corpus's tuned file, as cv composes them) before the other flags; without the two
    options ``argv`` is LightningCLI's as it is. A ``--data.manifest_dir`` among the flags is where a user corpus's
    ``config.yaml`` is looked up, as in cv."""
    import argparse

    from mtl_aug import recipes

    parser = argparse.ArgumentParser(prog="python -m mtl_aug train", add_help=False, allow_abbrev=False)
    parser.add_argument("--corpus")
    parser.add_argument("--system")
    opts, rest = parser.parse_known_args(argv)
    if opts.corpus is None and opts.system is None:
        return argv
    # read, not consumed: LightningCLI still needs the flag; recipe_args needs it to find a user corpus's config.yaml
    manifest_dir = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    manifest_dir.add_argument("--data.manifest_dir", dest="manifest_dir", default="data_manifests")
    opts.manifest_dir = manifest_dir.parse_known_args(rest)[0].manifest_dir
    if opts.corpus is None:
        raise SystemExit("train --system needs --corpus (a corpus of experiments/corpora/ or your own prepared one)")
    system = opts.system or "mtl_aug"
    if recipes.is_baseline_system(system):
        raise SystemExit(f"train trains the neural systems; '{system}' is an SVM baseline: "
                         f"python -m mtl_aug cv --corpus {opts.corpus} --system {system} [--folds F]")
    return recipes.recipe_args(opts.corpus, system, opts.manifest_dir) + rest


def main(argv: list[str]) -> int:
    cli = make_cli(recipe_argv(argv), run=False)
    result = run_training(cli)
    if cli.trainer.is_global_zero and "uar" in result:
        print(summary(result))
        print(f"results: {result.get('results_file')}  checkpoint: {result['best_checkpoint']}")
    return 0
