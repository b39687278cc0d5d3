"""``python -m mtl_aug pretrain``: self-supervised pre-training of the encoder with the auxiliary tasks alone.

    python -m mtl_aug pretrain --config experiments/pretrain.yaml \\
        --data.corpora='[librispeech, ravdess]' --out pretrained/encoders/librispeech_ravdess_deltas.pt

The multitask module with the reconstruction and augmentation-classification tasks and no emotion task
(``experiments/pretrain.yaml``: ``model.emotion: null``) trains on unlabelled audio only
(:class:`~mtl_aug.data.unlabelled.UnlabelledDataModule`): every row goes through the augmentation policy, and
the encoder learns from those two losses. The output file holds the front end, encoder, decoder and
augmentation head weights, the model's settings and the pool it saw (:mod:`mtl_aug.tasks.pretrained`).
Fine-tune from it with ``--model.init_from=<file>`` (``init_parts`` chooses which parts start from it), under
the same architecture settings.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from mtl_aug.data.unlabelled import UnlabelledDataModule
from mtl_aug.tasks import MTLAugModule
from mtl_aug.tasks.pretrained import save_parts
from mtl_aug.training import MTLAugCLI


class PretrainCLI(MTLAugCLI):
    """The training CLI over unlabelled audio: no functionals to link (the pool carries none)."""

    LINKS = ("class_names", "sample_rate")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m mtl_aug pretrain", description=__doc__.split("\n\n")[0],
                                epilog="Every other flag goes to LightningCLI (--config, --model.*, --data.*, --trainer.*).")
    p.add_argument("--out", required=True, help="the pre-trained encoder file to write (.pt)")
    opts, rest = p.parse_known_args(argv)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    cli = PretrainCLI(MTLAugModule, UnlabelledDataModule, args=rest, run=False, seed_everything_default=0,
                      save_config_kwargs={"overwrite": True})
    model, dm = cli.model, cli.datamodule
    if model.emotion is not None and model.emotion.class_weights is not None:
        raise SystemExit("pretrain: the pool has no labels; set --model.class_weights=null (or leave the emotion task "
                         "out: --model.emotion=null)")
    if not any(task is not model.emotion for task in model.tasks.values()):
        raise SystemExit("pretrain: no auxiliary task would be trained (set the reconstruction / aug_classification "
                         "weights, w_recon / w_aug, > 0)")
    cli.trainer.fit(model, datamodule=dm)
    if cli.trainer.is_global_zero:
        out = save_parts(model, Path(opts.out), dm.pool_info)
        print(f"pretrain: {sum(v['used'] for v in dm.pool_info.values())} utterances of "
              f"{', '.join(dm.pool_info)}, {cli.trainer.current_epoch} epochs -> {out}")
    return 0
