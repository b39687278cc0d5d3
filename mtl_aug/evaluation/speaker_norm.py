"""Speaker-level (or corpus-level) log-mel normalisation, as an option of the evaluation drivers.

The model's front end normalises each utterance by itself (``LogMelFrontEnd(normalize="utterance")``).
For cross-corpus tests, a common alternative is to normalise by the statistics of the *speaker*
(or of the whole corpus), which removes channel and speaker offsets while keeping within-speaker
differences between emotions. This module provides it without touching the model:

* :class:`SpeakerNormFrontEnd` wraps the model's ``LogMelFrontEnd``: it computes the same log-mels
  without normalisation, then per row subtracts the mean and divides by the std (per mel band) of
  the row's *group*; the groups of the rows of the current batch are set in ``row_groups``. It holds
  the front end's ``mel`` under the same name, so the state dict (and checkpoints) keep the plain
  model's keys.
* :class:`SpeakerNormCallback` installs the wrapper when the trainer sets up, computes the statistics
  of every group over the group's whole utterances (all splits: training, validation, test and
  unlabelled audio — the test speakers' statistics use their audio but never their labels), and
  before every train/val/test batch sets ``row_groups`` from the batch's keys (labelled rows first,
  then unlabelled rows, the order ``MTLAugModule`` concatenates them in). The statistics are stored
  in the checkpoint under ``speaker_norm``.

Groups: ``mode="speaker"``: ``"<corpus>:<speaker>"``; ``mode="corpus"``: ``"<corpus>"``. Use at train
and test time alike (``cross --normalize speaker``).
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
from torch import Tensor, nn

MODES = ("utterance", "speaker", "corpus")


class SpeakerNormFrontEnd(nn.Module):
    """``LogMelFrontEnd`` with per-group (speaker or corpus) instead of per-utterance normalisation."""

    def __init__(self, base: nn.Module, stats: dict[str, tuple[Tensor, Tensor]]) -> None:
        super().__init__()
        object.__setattr__(self, "base", base)  # not a submodule: the state dict keeps "mel.*" only
        self.mel = base.mel
        base.normalize = "none"
        self.sample_rate, self.n_mels, self.hop_length = base.sample_rate, base.n_mels, base.hop_length
        self.normalize = "group"
        self.stats = dict(stats)
        self.row_groups: list[str] | None = None

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return self.base.frame_lengths(lengths)

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats, frame_lengths = self.base(wave, lengths)  # unnormalised log-mels, padding at 0
        groups = self.row_groups
        if groups is None or len(groups) != feats.size(0):
            raise RuntimeError(f"SpeakerNormFrontEnd: row_groups has {None if groups is None else len(groups)} "
                               f"entries for a batch of {feats.size(0)} rows")
        mean = torch.stack([self.stats[g][0] for g in groups]).to(feats).unsqueeze(1)
        std = torch.stack([self.stats[g][1] for g in groups]).to(feats).unsqueeze(1)
        mask = (torch.arange(feats.size(1), device=feats.device).unsqueeze(0) < frame_lengths.unsqueeze(1))
        return (feats - mean) / std * mask.unsqueeze(-1).to(feats.dtype), frame_lengths


@torch.no_grad()
def group_stats(front_end: nn.Module, waves: Sequence[Tensor], groups: Sequence[str], batch_size: int = 16,
                eps: float = 1e-5) -> dict[str, tuple[Tensor, Tensor]]:
    """Mean and std per mel band over every valid frame of each group's utterances.

    ``front_end`` must not normalise (``normalize="none"``)."""
    sums: dict[str, list[Tensor]] = {}
    for start in range(0, len(waves), batch_size):
        chunk = waves[start:start + batch_size]
        lengths = torch.tensor([w.numel() for w in chunk])
        wave = torch.zeros(len(chunk), int(lengths.max()))
        for i, w in enumerate(chunk):
            wave[i, : w.numel()] = w
        feats, fl = front_end(wave, lengths)
        for i, g in enumerate(groups[start:start + batch_size]):
            f = feats[i, : int(fl[i])].double()
            s, s2, n = sums.get(g, (0.0, 0.0, 0))
            sums[g] = [s + f.sum(0), s2 + (f ** 2).sum(0), n + f.size(0)]
    stats = {}
    for g, (s, s2, n) in sums.items():
        mean = s / n
        var = (s2 / n - mean ** 2).clamp(min=0)
        stats[g] = (mean.float(), torch.sqrt(var + eps).float())
    return stats


def group_name(mode: str, corpus: str, speaker: str) -> str:
    return f"{corpus}:{speaker}" if mode == "speaker" else corpus


class SpeakerNormCallback(L.Callback):
    """Installs :class:`SpeakerNormFrontEnd` on the model and feeds it each batch's row groups."""

    def __init__(self, mode: str = "speaker") -> None:
        if mode not in ("speaker", "corpus"):
            raise ValueError(f"mode must be 'speaker' or 'corpus', got {mode!r}")
        self.mode = mode
        self.key_groups: dict[str, dict[str, str]] = {}

    def _group(self, corpus: str, speaker: str) -> str:
        return group_name(self.mode, corpus, speaker)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if isinstance(pl_module.front_end, SpeakerNormFrontEnd) and self.key_groups:
            return  # fit then test in one process: the statistics cover every split already
        dm = trainer.datamodule
        hp = dm.hparams
        corpus_of = {"train": hp.corpus, "val": hp.corpus, "test": hp.test_corpus or hp.corpus,
                     "unlabelled": hp.unlabelled_corpus}
        waves, groups = [], []
        for split, ds in dm.datasets.items():
            self.key_groups[split] = {}
            for i, it in enumerate(ds.items):
                g = self._group(corpus_of[split], it.speaker)
                self.key_groups[split][it.key] = g
                waves.append(torch.as_tensor(ds.wave(i)))
                groups.append(g)
        front = pl_module.front_end
        base = front.base if isinstance(front, SpeakerNormFrontEnd) else front
        base.normalize = "none"
        stats = group_stats(base, waves, groups)
        if isinstance(front, SpeakerNormFrontEnd):
            front.stats.update(stats)
        else:
            pl_module.front_end = SpeakerNormFrontEnd(base, stats)

    def _set(self, pl_module, parts: Sequence[tuple[str, dict | None]]) -> None:
        groups = []
        for split, batch in parts:
            if batch is not None:
                groups += [self.key_groups[split][k] for k in batch["key"]]
        pl_module.front_end.row_groups = groups

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if "wave" in batch:
            self._set(pl_module, [("train", batch)])
        else:
            self._set(pl_module, [("train", batch["labelled"]), ("unlabelled", batch.get("unlabelled"))])

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._set(pl_module, [("val", batch)])

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._set(pl_module, [("test", batch)])

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._set(pl_module, [("test", batch)])

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        front = pl_module.front_end
        if isinstance(front, SpeakerNormFrontEnd):
            checkpoint["speaker_norm"] = {"mode": self.mode, "stats": {g: [m.tolist(), s.tolist()]
                                                                       for g, (m, s) in front.stats.items()}}


class EvalGroupNorm:
    """Group normalisation for re-evaluating a group-normalised checkpoint on perturbed test audio
    (``noise``, ``adversarial``), where no trainer (and so no callback) runs.

    ``state`` is the checkpoint's ``speaker_norm`` entry. :meth:`use` chooses the statistics of the test
    groups: the stored ones (clean audio: exactly what ``cv`` tested with), or recomputed from the perturbed
    test audio — a speaker enrolled in the same noise it is then heard in. :meth:`install` sets a batch's row
    groups; call it before the model sees the batch (and before an attack differentiates through it).
    """

    def __init__(self, model: nn.Module, dm, state: dict) -> None:
        self.mode = state["mode"]
        self.corpus = dm.hparams.test_corpus or dm.hparams.corpus
        self.stored = {g: (torch.tensor(m), torch.tensor(s)) for g, (m, s) in state["stats"].items()}
        front = model.front_end
        self.base = front.base if isinstance(front, SpeakerNormFrontEnd) else front
        self.front = SpeakerNormFrontEnd(self.base, self.stored)
        model.front_end = self.front
        self.dm = dm

    def groups(self, batch: dict) -> list[str]:
        return [group_name(self.mode, self.corpus, str(s)) for s in batch["speaker"]]

    def install(self, batch: dict) -> None:
        self.front.row_groups = self.groups(batch)

    def use(self, perturb=None) -> None:
        """Stored statistics (``perturb=None``), or each test group's statistics over ``perturb(batch)``."""
        self.front.stats = dict(self.stored)
        if perturb is None:
            return
        waves, groups = [], []
        for batch in self.dm.eval_loader(self.dm.datasets["test"]):
            wave = perturb(batch)
            waves += [wave[i, :n].detach() for i, n in enumerate(batch["lengths"].tolist())]
            groups += self.groups(batch)
        self.front.stats.update(group_stats(self.base, waves, groups))
