"""``python -m mtl_aug <command>``: LightningCLI for fit/validate/test/predict, plus the toolkit's commands.

Every non-Lightning command lives in its own module as ``main(argv) -> int`` and is looked up in
``COMMANDS``, so adding one is one line here.
"""

from __future__ import annotations

import importlib
import sys

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("mtl_aug.training", "fit, then test the checkpoint, print the fold's summary (--corpus C --system S: cv's recipe)"),
    "prepare": ("mtl_aug.data.prepare", "build a corpus manifest, skip report and speaker-independent folds"),
    "levels": ("mtl_aug.data.levels", "recording levels (peak/RMS dBFS) per label: check a corpus before comparing"),
    "synth": ("mtl_aug.data.synthetic", "generate the synthetic demo corpus"),
    "cv": ("mtl_aug.evaluation.cv", "cross-validation over every fold x seed, resumable, with reports"),
    "cross": ("mtl_aug.evaluation.cross", "cross-corpus / cross-language evaluation"),
    "noise": ("mtl_aug.evaluation.noise", "UAR under real noise at SNR 20/10/0 dB"),
    "adversarial": ("mtl_aug.evaluation.adversarial", "UAR under FGSM/PGD waveform attacks"),
    "curves": ("mtl_aug.evaluation.curves", "training curves of cv runs and validation vs test UAR, per system"),
    "compare": ("mtl_aug.evaluation.paired", "paired comparison of two cv results on the same folds and seeds"),
    "ensemble": ("mtl_aug.evaluation.ensemble", "a cv result's seeds as one model (soft voting), in cv's format"),
    "fuse": ("mtl_aug.evaluation.fusion", "late fusion of several systems' cv results (equal-weight soft voting)"),
    "paper-tables": ("mtl_aug.evaluation.paper", "regenerate every paper table for the corpora present"),
    "headline": ("mtl_aug.evaluation.headline", "rewrite README.md's results table from the result files"),
    "compact-results": ("mtl_aug.evaluation.epochs", "per-run training logs of result folders into epochs.csv"),
    "sweep": ("mtl_aug.sweep", "run a W&B sweep YAML offline (or online with --online)"),
    "directions": ("mtl_aug.sweep.directions", "table of a recipe-directions sweep: each direction's dev-fold UAR"),
    "infer": ("mtl_aug.inference.predict", "emotion of audio files/folders (same as `predict PATH --ckpt`)"),
    "export": ("mtl_aug.inference.export", "export front end + encoder + emotion head (TorchScript/ONNX)"),
    "pretrain": ("mtl_aug.pretrain", "pre-train the encoder on unlabelled audio with the auxiliary tasks alone"),
    "pretrained": ("mtl_aug.inference.pretrained", "train the release model on all speakers + model card"),
}


def _usage() -> str:
    lines = ["usage: python -m mtl_aug <command> [args]", "", "Lightning commands (LightningCLI, --config YAML):"]
    lines.append("  " + " | ".join(LIGHTNING_COMMANDS))
    lines.append("  predict PATH... --ckpt CKPT   runs file inference instead (no --config)")
    lines.append("")
    lines.append("Toolkit commands:")
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def _is_file_predict(args: list[str]) -> bool:
    """`predict` with a config/data/model flag is LightningCLI's; with paths + --ckpt it is file inference."""
    lightning_flags = ("--config", "-c", "--data", "--model", "--trainer", "--print_config", "--ckpt_path")
    return not any(a.split("=")[0].startswith(lightning_flags) for a in args)


def lightning_main(args: list[str]) -> int:
    from mtl_aug.training import make_cli

    make_cli(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "predict" and _is_file_predict(rest):
        command = "infer"
    if command in LIGHTNING_COMMANDS:
        return lightning_main(argv)
    if command not in COMMANDS:
        print(f"mtl_aug: unknown command '{command}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)
