"""``python -m mtl_aug pretrain``: self-supervised pre-training of the encoder with the auxiliary tasks alone.

    python -m mtl_aug pretrain --config experiments/pretrain.yaml \\
        --data.corpora='[librispeech, ravdess]' --out pretrained/encoders/librispeech_ravdess.pt

The multitask module trains on unlabelled audio only (:class:`~mtl_aug.data.unlabelled.UnlabelledDataModule`):
every row goes through the augmentation policy, and the encoder learns from the reconstruction and
augmentation-classification losses; the emotion head is never trained. The output file holds the front end,
encoder, decoder and augmentation head weights, the model's settings and the pool it saw. Fine-tune from it
with ``--model.init_from=<file>`` (``init_parts`` chooses which sub-modules start from it), under the same
architecture settings.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch
from lightning.pytorch.cli import LightningCLI

from mtl_aug.data.unlabelled import UnlabelledDataModule
from mtl_aug.module import MTLAugModule

FORMAT_KEY = "mtl_aug_pretrained_encoder"
FORMAT = 1
PARTS = ("front_end", "encoder", "decoder", "aug_head")


class PretrainError(RuntimeError):
    """A pre-trained encoder file that cannot initialise this model; the message names the file."""


class PretrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.class_names", "model.class_names")
        parser.link_arguments("data.sample_rate", "model.sample_rate")


def save_parts(model: MTLAugModule, path: Path, pool: dict) -> Path:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if k.split(".", 1)[0] in PARTS}
    hparams = json.loads(json.dumps(dict(model.hparams), default=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({FORMAT_KEY: FORMAT, "state_dict": state, "hparams": hparams, "pool": pool}, tmp)
    tmp.replace(path)
    return path


def load_parts(model: torch.nn.Module, path: str | Path, parts: list[str]) -> list[str]:
    """Copy ``parts`` (sub-module names) of the pre-trained file into ``model``; returns the names loaded."""
    p = Path(path)
    if not p.is_file():
        raise PretrainError(f"{p}: pre-trained encoder file not found (make it with `python -m mtl_aug pretrain`)")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise PretrainError(f"{p}: not a readable pre-trained encoder file ({type(err).__name__}: {err})") from None
    if not isinstance(blob, dict) or blob.get(FORMAT_KEY) != FORMAT:
        raise PretrainError(f"{p}: not a pre-trained encoder file of format {FORMAT} (key '{FORMAT_KEY}')")
    state = blob["state_dict"]
    for part in parts:
        sub = getattr(model, part, None)
        if part not in PARTS or sub is None:
            raise PretrainError(f"{p}: cannot initialise '{part}': this model has no such part "
                                f"(parts: {', '.join(k for k in PARTS if getattr(model, k, None) is not None)})")
        src = {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")}
        if not src:
            raise PretrainError(f"{p}: holds no weights for '{part}'")
        own = sub.state_dict()
        bad = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in src.items() if k in own and own[k].shape != v.shape]
        missing, extra = sorted(set(own) - set(src)), sorted(set(src) - set(own))
        if bad or missing or extra:
            raise PretrainError(f"{p}: '{part}' does not match this model's architecture (pre-trained with "
                                f"{_arch(blob['hparams'])}); shapes: {bad[:3]}, missing: {missing[:3]}, unexpected: {extra[:3]}")
        sub.load_state_dict(src)
    return parts


def _arch(hp: dict) -> str:
    keys = ("n_mels", "n_fft", "prosody", "enc_channels", "enc_out_dim", "enc_deltas", "enc_norm")
    return ", ".join(f"{k}={hp.get(k)}" for k in keys if k in hp)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mtl_aug pretrain", description=__doc__.split("\n\n")[0],
                                epilog="Every other flag goes to LightningCLI (--config, --model.*, --data.*, --trainer.*).")
    p.add_argument("--out", required=True, help="the pre-trained encoder file to write (.pt)")
    opts, rest = p.parse_known_args(argv)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    cli = PretrainCLI(MTLAugModule, UnlabelledDataModule, args=rest, run=False, seed_everything_default=0,
                      save_config_kwargs={"overwrite": True})
    model, dm = cli.model, cli.datamodule
    if model.hparams.w_recon <= 0 and model.hparams.w_aug <= 0:
        raise SystemExit("pretrain: both auxiliary weights are 0, nothing would be learnt (set w_recon / w_aug > 0)")
    if model.hparams.class_weights is not None:
        raise SystemExit("pretrain: the pool has no labels; set --model.class_weights=null")
    cli.trainer.fit(model, datamodule=dm)
    if cli.trainer.is_global_zero:
        out = save_parts(model, Path(opts.out), dm.pool_info)
        print(f"pretrain: {sum(v['used'] for v in dm.pool_info.values())} utterances of "
              f"{', '.join(dm.pool_info)}, {cli.trainer.current_epoch} epochs -> {out}")
    return 0
