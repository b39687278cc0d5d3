"""The multitask LightningModule: wires the pure components, computes the weighted loss, logs.

loss = CE + center_lambda·center + w_recon·L_recon + w_aug·L_aug
Unlabelled rows (label -1) reach the encoder through the auxiliary terms only: the emotion head
runs on the labelled rows alone.

Systems (see experiments/systems/): STL = ``augment=False, w_recon=0, w_aug=0``; STL+aug =
``augment=True, w_recon=0, w_aug=0``; MTL-AUG = ``augment=True, w_recon>0, w_aug>0``. An auxiliary
head whose weight is 0 is not built (``decoder`` / ``aug_head`` is None): its loss is never
computed and DDP never sees unused parameters.

Under DDP every rank seeds its augmentation policy with the same ``seed`` (same chunk pattern,
different data); the center-loss centres are all-reduced; test predictions are gathered from all ranks.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import functional as F

from mtl_aug import __version__
from mtl_aug.augment import AugmentationPolicy
from mtl_aug.encoder import ConvEncoder
from mtl_aug.features import LogMelFrontEnd
from mtl_aug.heads import AugmentationClassifier, EmotionClassifier, ReconstructionDecoder
from mtl_aug.heads.emotion import balanced_class_weights
from mtl_aug.masking import multi_crop, pad_to
from mtl_aug.metrics import confusion_matrix_metric, emotion_metrics

CHECKPOINT_FORMAT = 1
FORMAT_KEY = "mtl_aug_format"
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("plateau", "cosine", "none")
RECON_TARGETS = ("input", "clean")
FUNCTIONAL_DIMS = {"egemaps": 88, "compare": 6373}  # openSMILE eGeMAPSv02 / ComParE_2016 functionals
FUNC_CLIP = 8.0


class CheckpointFormatError(RuntimeError):
    """A checkpoint without, or with another, ``mtl_aug_format``."""


_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Let glibc keep freed heap memory for reuse (no ``mmap`` per large block, no trimming); process-wide.

    Otherwise every activation tensor above glibc's mmap threshold (at most 32 MB, e.g. the first encoder
    block of a 32 x 3 s batch) is a fresh ``mmap`` that the kernel zero-fills page by page, unmapped again
    when freed: measured 180 000 page faults and 0.3 s of system time per 32 x 3 s CPU training step (a
    third of it), 33 000-51 000 faults per 32 x 2 s step (benchmarks/, bench_history.md). Costs resident
    memory (freed blocks are kept). Called by ``on_fit_start`` on CPU; ``MTL_AUG_MALLOC_TUNING=0`` leaves
    the allocator alone. Returns whether the setting is in effect."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if os.environ.get("MTL_AUG_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        _ALLOCATOR_TUNED = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):  # not glibc
        return False
    return _ALLOCATOR_TUNED


class MTLAugModule(L.LightningModule):
    CHECKPOINT_FORMAT = CHECKPOINT_FORMAT

    def __init__(
        self,
        class_names: list[str] = ["angry", "happy", "neutral", "sad"],
        sample_rate: int = 16000,
        n_fft: int = 512,
        n_mels: int = 64,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        f_min: float = 20.0,
        f_max: float | None = 8000.0,
        normalize: str = "utterance",
        prosody: bool = False,
        enc_channels: list[int] = [16, 32, 64],
        enc_kernel_size: int = 3,
        enc_time_pool: list[int] = [2, 2, 1],
        enc_freq_pool: list[int] = [2, 2, 2],
        enc_norm: str = "group",
        enc_out_dim: int | None = 256,
        enc_dropout: float = 0.1,
        enc_deltas: bool = False,
        lstm_hidden: int = 128,
        lstm_layers: int = 1,
        attn_dim: int = 128,
        embed_dim: int = 128,
        head_dropout: float = 0.3,
        dec_hidden: int = 128,
        aug_hidden: int = 128,
        augment: bool = True,
        aug_types: list[str] = ["none", "speed", "specaug", "mixup"],
        aug_proportions: list[float] | None = None,
        speed_factors: list[float] = [0.9, 1.1],
        freq_mask_param: int = 12,
        time_mask_param: int = 20,
        n_freq_masks: int = 2,
        n_time_masks: int = 2,
        mixup_alpha: float = 0.4,
        center_lambda: float = 0.01,
        center_alpha: float = 0.5,
        label_smoothing: float = 0.0,
        tta_crops: int = 1,
        tta_crop_seconds: float | None = None,
        w_recon: float = 1.0,
        w_aug: float = 1.0,
        recon_target: str = "input",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: str = "adamw",
        scheduler: str = "plateau",
        lr_patience: int = 3,
        lr_factor: float = 0.5,
        cosine_t_max: int | None = None,
        class_weights: list[float] | str | None = None,
        functionals: str | None = None,
        functionals_hidden: int = 64,
        init_from: str | None = None,
        init_parts: list[str] = ["front_end", "encoder"],
        seed: int = 0,
    ) -> None:
        """
        Args (the less obvious ones):
            enc_norm: "group" (per-row GroupNorm over valid frames: rows independent, the default),
                "layer" (per-bin channel LayerNorm: loses local energy contrast) or "batch" (masked BatchNorm).
            prosody: frame-level pitch, voicing and energy tracks (``features.ProsodyTracks``) beside the log-mels;
                they join the encoder output after the convolutions and are reconstructed with the bands.
            enc_deltas: give the encoder Δ and ΔΔ of the log-mels as two more input channels.
            label_smoothing: share of each labelled row's CE target spread uniformly over the classes.
            tta_crops / tta_crop_seconds: test-time multi-crop: outside training, each utterance is classified
                as ``tta_crops`` evenly spaced crops of ``tta_crop_seconds`` (the mean of their probabilities);
                1 = the whole utterance.
            enc_out_dim: linear projection size of the encoder output; None keeps the flattened conv maps.
            augment: apply the augmentation policy in training (False: clean features, aug label 0).
            aug_types / aug_proportions: chunks of the batch; the index in ``aug_types`` is the aug label.
            center_alpha: centre update rate of the center loss (centres are a buffer, not optimized).
            recon_target: "input" = the encoder's (augmented) input, as in the paper; "clean" = the
                front-end output before SpecAugment/mixup (denoising variant; see ``mtl_aug.augment``).
            scheduler: "plateau" (on val/uar, mode max; needs a validation loop), "cosine"
                (T_max = cosine_t_max or trainer.max_epochs), "none".
            cosine_t_max: epochs of the cosine schedule (None: trainer.max_epochs).
            class_weights: per-class CE weights (class-index order), or "balanced": inverse class
                frequency of the fold's training set, computed when fitting starts (kept in checkpoints).
            functionals: fuse the utterance's openSMILE functionals (``egemaps`` / ``compare``) into the emotion
                head (linked from ``data.functionals``, which provides them per file); standardised with the
                training set's statistics (kept in the model), computed from the audio itself when a batch
                does not carry them (perturbed audio, ``predict``). Not differentiable: export and
                adversarial attacks refuse such a model.
            init_from: a pre-trained encoder file (``python -m mtl_aug pretrain``): when fitting starts, the
                ``init_parts`` sub-modules take its weights (fine-tuning); shapes must match.
            seed: seed of the augmentation policy's generator.
        """
        super().__init__()
        self.save_hyperparameters()
        self._check_hparams()
        num_classes = len(class_names)
        self.front_end = LogMelFrontEnd(sample_rate, n_fft, win_ms, hop_ms, n_mels, f_min, f_max, normalize,
                                        prosody=prosody)
        self.augment = AugmentationPolicy(
            types=list(aug_types) if augment else ["none"],
            proportions=list(aug_proportions) if (augment and aug_proportions is not None) else None,
            speed_factors=list(speed_factors),
            freq_mask_param=freq_mask_param,
            time_mask_param=time_mask_param,
            n_freq_masks=n_freq_masks,
            n_time_masks=n_time_masks,
            mixup_alpha=mixup_alpha,
            seed=seed,
            sample_rate=sample_rate,
        )
        self.encoder = ConvEncoder(
            n_mels, list(enc_channels), enc_kernel_size, list(enc_time_pool), list(enc_freq_pool), enc_dropout, enc_norm, enc_out_dim,
            enc_deltas, self.front_end.out_dim - n_mels,
        )
        d = self.encoder.out_dim
        n_func = FUNCTIONAL_DIMS[functionals] if functionals else 0
        self.emotion_head = EmotionClassifier(
            d, num_classes, lstm_hidden, lstm_layers, attn_dim, head_dropout, embed_dim,
            class_weights if not isinstance(class_weights, str) else None, center_alpha, label_smoothing,
            n_func, functionals_hidden,
        )
        if functionals:  # training-set standardisation of the functionals, set when fitting starts
            self.register_buffer("func_mean", torch.zeros(n_func))
            self.register_buffer("func_std", torch.ones(n_func))
        self.decoder = ReconstructionDecoder(d, self.front_end.out_dim, dec_hidden, self.encoder.time_reduction) if w_recon > 0 else None
        self.aug_head = AugmentationClassifier(d, self.augment.num_types, aug_hidden, head_dropout) if w_aug > 0 else None

        self.train_metrics = emotion_metrics(num_classes, prefix="train/")
        self.val_metrics = emotion_metrics(num_classes, prefix="val/")
        self.test_metrics = emotion_metrics(num_classes, prefix="test/")
        self.test_confmat = confusion_matrix_metric(num_classes)
        self.test_confusion: list[list[int]] = []
        self.test_predictions: list[dict[str, Any]] = []
        self._test_rows: list[dict[str, Any]] = []

    def _check_hparams(self) -> None:
        hp = self.hparams
        if hp.w_aug > 0 and (not hp.augment or len(hp.aug_types) < 2):
            raise ValueError("w_aug > 0 needs augment=True and at least 2 aug_types (the aug classifier would "
                             "have one class); set w_aug=0 for STL")
        if hp.recon_target not in RECON_TARGETS:
            raise ValueError(f"recon_target must be one of {RECON_TARGETS}, got {hp.recon_target!r}")
        if hp.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {hp.optimizer!r}")
        if hp.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {hp.scheduler!r}")
        if isinstance(hp.class_weights, str) and hp.class_weights != "balanced":
            raise ValueError(f"class_weights must be a list of floats or 'balanced', got {hp.class_weights!r}")
        if len(hp.class_names) < 2:
            raise ValueError("need at least 2 class_names")
        if hp.functionals is not None and hp.functionals not in FUNCTIONAL_DIMS:
            raise ValueError(f"functionals must be one of {sorted(FUNCTIONAL_DIMS)} or None, got {hp.functionals!r}")
        if hp.tta_crops < 1 or (hp.tta_crops > 1 and not (hp.tta_crop_seconds or 0) > 0):
            raise ValueError(f"tta_crops must be >= 1 and, above 1, needs tta_crop_seconds > 0 (got {hp.tta_crops}, "
                             f"{hp.tta_crop_seconds})")

    # ------------------------------------------------------------------ inference path
    def emotion_logits(self, wave: Tensor, lengths: Tensor, functionals: Tensor | None = None) -> Tensor:
        """front end -> encoder -> emotion head; no augmentation, differentiable w.r.t. ``wave``.
        Call ``.eval()`` first for deterministic outputs (dropout). With test-time multi-crop (outside
        training) the logits are the log of the crops' mean probabilities. A model that fuses functionals
        takes them from ``functionals`` (the files' own) or extracts them from ``wave``."""
        hp = self.hparams
        side = self._side(wave, lengths, functionals)
        if hp.tta_crops > 1 and hp.tta_crop_seconds and not self.training:
            crops, crop_lengths = multi_crop(wave, lengths, int(round(hp.tta_crop_seconds * hp.sample_rate)), hp.tta_crops)
            side = side.repeat_interleave(hp.tta_crops, 0) if side is not None else None
            probs = torch.softmax(self._logits(crops, crop_lengths, side).float(), -1)
            return torch.log(probs.view(wave.size(0), hp.tta_crops, -1).mean(1).clamp(min=1e-12)).to(wave.dtype)
        return self._logits(wave, lengths, side)

    def _logits(self, wave: Tensor, lengths: Tensor, side: Tensor | None = None) -> Tensor:
        feats, frame_lengths = self.front_end(wave, lengths)
        z, z_lengths = self.encoder(feats, frame_lengths)
        return self.emotion_head(z, z_lengths, side)[0]

    def _side(self, wave: Tensor, lengths: Tensor, functionals: Tensor | None) -> Tensor | None:
        """Standardised functionals of the rows (None for a model that fuses none)."""
        if not self.hparams.functionals:
            return None
        if functionals is None:
            functionals = self.extract_functionals(wave, lengths)
        z = (functionals.to(self.func_mean.dtype) - self.func_mean) / self.func_std
        return z.clamp(-FUNC_CLIP, FUNC_CLIP)  # an outlier file must not dominate the fused layer

    def extract_functionals(self, wave: Tensor, lengths: Tensor) -> Tensor:
        """openSMILE functionals of each row's valid samples (CPU, no gradient)."""
        from mtl_aug.data.functionals import extractor

        smile = extractor(self.hparams.functionals)
        rows = wave.detach().float().cpu().numpy()
        out = [smile(rows[i, : int(n)], int(self.hparams.sample_rate), what=f"row {i}")
               for i, n in enumerate(lengths.tolist())]
        return torch.from_numpy(np.stack(out)).to(wave.device)

    def forward(self, wave: Tensor, lengths: Tensor) -> Tensor:
        return self.emotion_logits(wave, lengths)

    # ------------------------------------------------------------------ training
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.functionals:
            self._fit_functional_stats()
        if stage == "fit" and self.hparams.init_from:
            from mtl_aug.pretrain import load_parts

            load_parts(self, self.hparams.init_from, list(self.hparams.init_parts))
        if stage == "fit" and self.hparams.class_weights == "balanced":
            labels = [it.label for it in self.trainer.datamodule.datasets["train"].items]
            weights = balanced_class_weights(labels, len(self.hparams.class_names))
            self.emotion_head.class_weights.copy_(torch.tensor(weights))

    def _fit_functional_stats(self) -> None:
        train = self.trainer.datamodule.datasets["train"]
        x = getattr(train, "functionals", None)
        if x is None:
            raise ValueError(f"the model fuses {self.hparams.functionals} functionals but the training data carry none "
                             f"(set --data.functionals={self.hparams.functionals})")
        x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
        self.func_mean.copy_(x.mean(0))
        self.func_std.copy_(x.std(0, unbiased=False).clamp(min=1e-6))

    def on_fit_start(self) -> None:
        if self.device.type == "cpu":
            tune_cpu_allocator()

    @staticmethod
    def _merge(batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Labelled (+ unlabelled) rows -> one batch padded to a common T; unlabelled labels forced to -1;
        the rows' functionals when every part carries them."""
        if "wave" in batch:
            parts = [(batch, False)]
        else:
            parts = [(batch["labelled"], False)]
            if batch.get("unlabelled") is not None:
                parts.append((batch["unlabelled"], True))
        t = max(p["wave"].size(1) for p, _ in parts)
        wave = torch.cat([pad_to(p["wave"], t) for p, _ in parts])
        lengths = torch.cat([p["lengths"] for p, _ in parts])
        labels = torch.cat([torch.full_like(p["lengths"], -1) if unl else p["label"] for p, unl in parts])
        func = torch.cat([p["functionals"] for p, _ in parts]) if all("functionals" in p for p, _ in parts) else None
        return wave, lengths, labels, func

    def _soft_targets(self, labels: Tensor) -> Tensor:
        c = len(self.hparams.class_names)
        return F.one_hot(labels.clamp(min=0), c).float() * (labels >= 0).unsqueeze(1).float()

    def training_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        hp = self.hparams
        wave, lengths, labels, func = self._merge(batch)
        side = self._side(wave, lengths, func)
        out = self.augment(wave, lengths, self._soft_targets(labels), self.front_end, side)
        z, z_lengths = self.encoder(out.feats, out.frame_lengths)
        n = wave.size(0)

        lab = out.targets.sum(-1) > 0
        if bool(lab.any()):
            logits, embedding, _ = self.emotion_head(z[lab], z_lengths[lab], out.extra[lab] if side is not None else None)
            em = self.emotion_head.loss(logits, embedding, out.targets[lab], labels[lab], out.mixed[lab], hp.center_lambda)
            unmixed = ~out.mixed[lab]
            if bool(unmixed.any()):  # training accuracy on rows whose label is well defined
                self.train_metrics.update(logits[unmixed].argmax(-1), labels[lab][unmixed])
                self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        else:  # a batch without labelled rows: auxiliary terms only
            em = {k: z.new_zeros(()) for k in ("ce", "center", "total")}
        loss = em["total"]
        logs = {"ce": em["ce"], "center": em["center"]}

        if self.decoder is not None:
            recon = self.decoder(z, out.feats.size(1), z_lengths)
            target = out.feats if hp.recon_target == "input" else out.clean_feats
            logs["recon"] = self.decoder.loss(recon, target.detach(), out.frame_lengths)
            loss = loss + hp.w_recon * logs["recon"]
        if self.aug_head is not None:
            aug_logits = self.aug_head(z, z_lengths)
            logs["aug"] = self.aug_head.loss(aug_logits, out.aug_label)
            logs["aug_acc"] = self.aug_head.accuracy(aug_logits.detach(), out.aug_label)
            loss = loss + hp.w_aug * logs["aug"]

        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=n)
        for k, v in logs.items():
            self.log(f"train/{k}", v, on_step=True, on_epoch=True, sync_dist=True, batch_size=n)
        return {"loss": loss, **{k: v.detach() for k, v in logs.items()}}

    # ------------------------------------------------------------------ evaluation (no augmentation)
    def _eval_step(self, batch: dict, stage: str) -> tuple[Tensor, Tensor, Tensor]:
        logits = self.emotion_logits(batch["wave"], batch["lengths"], batch.get("functionals"))
        labels = batch["label"]
        lab = labels >= 0
        n_lab = int(lab.sum())
        if n_lab > 0:  # rows with label -1 are predicted but not scored
            loss = F.cross_entropy(logits[lab], labels[lab], weight=self.emotion_head.class_weights)
            metrics = self.val_metrics if stage == "val" else self.test_metrics
            metrics.update(logits[lab].argmax(-1), labels[lab])
            # {stage}/loss = emotion CE only (class-weighted like training, no center term)
            self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=n_lab)
            self.log_dict(metrics, on_step=False, on_epoch=True)
        return logits, labels, lab

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def test_step(self, batch: dict, batch_idx: int) -> None:
        logits, labels, lab = self._eval_step(batch, "test")
        if bool(lab.any()):
            self.test_confmat.update(logits[lab].argmax(-1), labels[lab])
        probs = torch.softmax(logits.float(), -1).cpu()
        for i, (key, spk) in enumerate(zip(batch["key"], batch["speaker"])):
            self._test_rows.append(
                {"key": key, "speaker": spk, "label": int(labels[i]), "pred": int(probs[i].argmax()), "probs": probs[i].tolist()}
            )

    def on_test_epoch_end(self) -> None:
        self.test_confusion = self.test_confmat.compute().cpu().long().tolist()  # synced across ranks
        self.test_confmat.reset()
        rows = self._test_rows
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        unique = {r["key"]: r for r in rows}  # a distributed sampler may repeat rows to even out ranks
        self.test_predictions = sorted(unique.values(), key=lambda r: r["key"])
        self._test_rows = []

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        probs = torch.softmax(self.emotion_logits(batch["wave"], batch["lengths"], batch.get("functionals")).float(), -1)
        return {"key": batch["key"], "probs": probs, "pred": probs.argmax(-1)}

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        kwargs: dict[str, Any] = {"lr": hp.lr, "weight_decay": hp.weight_decay}
        if hp.optimizer == "sgd":
            kwargs["momentum"] = 0.9
        opt = OPTIMIZERS[hp.optimizer](self.parameters(), **kwargs)
        if hp.scheduler == "none":
            return opt
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=hp.lr_factor, patience=hp.lr_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/uar", "interval": "epoch"}}
        t_max = hp.cosine_t_max or (self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else None)
        if t_max is None:
            raise ValueError("scheduler='cosine' needs cosine_t_max or trainer.max_epochs")
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max)}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[FORMAT_KEY] = CHECKPOINT_FORMAT
        checkpoint["mtl_aug_version"] = __version__
        checkpoint["mtl_aug_policy_rng"] = self.augment.generator.get_state()  # exact resume of the augmentation stream

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        fmt = checkpoint.get(FORMAT_KEY)
        if fmt is None:
            raise CheckpointFormatError(
                f"checkpoint has no '{FORMAT_KEY}' key: it was not written by MTLAugModule "
                f"(or by a pre-release version); retrain it with mtl_aug {__version__}"
            )
        if fmt != CHECKPOINT_FORMAT:
            raise CheckpointFormatError(
                f"incompatible checkpoint: {FORMAT_KEY}={fmt!r} (written by mtl_aug "
                f"{checkpoint.get('mtl_aug_version', '?')}), this mtl_aug {__version__} reads format {CHECKPOINT_FORMAT}"
            )
        state = checkpoint.get("mtl_aug_policy_rng")
        if state is not None:
            self.augment.generator.set_state(state.cpu() if isinstance(state, Tensor) else state)
