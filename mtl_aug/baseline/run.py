"""One fold x seed of a classical baseline system: the evaluation drivers' ``Run`` for ``family: baseline``.

A baseline run takes the same arguments as a neural run (``--config`` files, ``--data.*``, ``--model.*``,
``--seed_everything``), so ``cv``, ``cross`` and ``noise`` build, resume and report it exactly as a neural
one; ``--trainer.*`` flags (run folder, epochs, progress bar) have no meaning here and are ignored. The data
come from the same :class:`~mtl_aug.data.datamodule.SERDataModule` (same manifest, fold, label set, test
corpus, decoded-waveform cache), so both families see the same utterances of the same speakers.

Protocol of one fold: the SVM trains on the fold's training **and** validation speakers (it has no epochs to
stop early; ``train_on_val: false`` trains on the training speakers alone), kernel and C are chosen by a
speaker-grouped inner cross-validation over those speakers only (:mod:`.svm`), the test speakers are
predicted once. The "model checkpoint" is ``<run dir>/model.pkl``: the fitted scaler and SVM, the feature
set, the normalisation and the data settings to rebuild the test set (``noise`` reuses it).
"""

from __future__ import annotations

import argparse

import pickle
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Sequence

import numpy as np

from mtl_aug.data.functionals import FEATURE_SETS, FunctionalsCache, make_extractor
from mtl_aug.io import atomic_write_bytes
from mtl_aug.metrics import confusion_from_labels, metrics_from_confusion
from mtl_aug.recipes import BASELINE_FAMILY as FAMILY, FAMILY_KEY
from .svm import KERNELS, FunctionalsSVM, group_normalize, group_stats, softmax

MODEL_FILE = "model.pkl"
FORMAT = 1
NORMALIZE = ("utterance", "speaker", "corpus")


class BaselineConfig:
    """The ``model:`` section of a baseline system's YAML (``experiments/systems/compare_svm.yaml``)."""

    def __init__(
        self,
        feature_set: str = "compare",
        kernels: list[str] = ["linear", "rbf"],
        C: list[float] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0],
        inner_folds: int | None = None,
        normalize: str = "utterance",
        train_on_val: bool = True,
        feature_cache_dir: str | None = ".cache/functionals",
        seed: int = 0,
    ) -> None:
        """
        Args:
            feature_set: ``egemaps`` (eGeMAPSv02, 88 functionals), ``compare`` (ComParE_2016, 6373) or ``voice``
                (the frozen pre-trained voice encoder's utterance statistics, 1792; ``data/voice_encoder.py``).
            kernels / C: the inner search's grid (SVC, ``class_weight="balanced"``, rbf with ``gamma="scale"``).
            inner_folds: speaker-grouped inner folds; None = one per training speaker (leave-one-speaker-out).
            normalize: ``utterance`` = the training-set scaler only (inductive); ``speaker`` / ``corpus`` =
                every feature z-normalised per speaker / corpus first (each group's own utterances).
            train_on_val: fit on the fold's training + validation speakers (the SVM needs no early stopping).
            feature_cache_dir: where functionals are cached per file; None extracts every time.
        """
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {sorted(FEATURE_SETS)}, got {feature_set!r}")
        if normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
        if not kernels or any(k not in KERNELS for k in kernels):
            raise ValueError(f"kernels must be a non-empty subset of {KERNELS}, got {kernels}")
        if not C or min(C) <= 0:
            raise ValueError(f"C must be a non-empty list of positive numbers, got {C}")
        self.feature_set, self.kernels, self.C = feature_set, list(kernels), [float(c) for c in C]
        self.inner_folds, self.normalize, self.train_on_val = inner_folds, normalize, train_on_val
        self.feature_cache_dir, self.seed = feature_cache_dir, seed


# -- arguments -----------------------------------------------------------------------------------------
def parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    from mtl_aug.data.datamodule import SERDataModule

    p = ArgumentParser(prog="baseline run", exit_on_error=False)
    p.add_argument("--config", action=ActionConfigFile)
    p.add_argument(f"--{FAMILY_KEY}", type=str, default=FAMILY)
    p.add_argument("--seed_everything", type=int, default=0)
    p.add_class_arguments(SERDataModule, "data")
    p.add_class_arguments(BaselineConfig, "model")
    return p


class BaselineArgsError(ValueError):
    """Config files or flags that a baseline system does not have."""


def parse_args(args: Sequence[str]) -> tuple[dict, BaselineConfig, int]:
    """(data kwargs, model config, seed); ``--trainer.*`` flags are dropped (no trainer)."""
    kept = [a for a in args if not a.startswith("--trainer.") and not a.startswith("--trainer=")]
    try:
        cfg = parser().parse_args(kept)
    except argparse.ArgumentError as err:  # e.g. a neural recipe file or flag given to an SVM system
        raise BaselineArgsError(f"a baseline system's configuration: {err} (the options of a baseline are "
                                "listed in docs/baselines.md; neural recipe files and flags do not apply)") from None
    if cfg.get(FAMILY_KEY) != FAMILY:
        raise ValueError(f"not a baseline configuration ({FAMILY_KEY}: {cfg.get(FAMILY_KEY)!r})")
    data = {k: v for k, v in dict(cfg.data).items()}
    model = BaselineConfig(**dict(cfg.model))
    return data, model, int(cfg.seed_everything)


# -- one fold ------------------------------------------------------------------------------------------
def split_groups(items, corpus: str, mode: str) -> list[str]:
    """The normalisation group of each item: ``<corpus>:<speaker>`` or ``<corpus>`` (as speaker_norm names them)."""
    return [f"{corpus}:{it.speaker}" if mode == "speaker" else corpus for it in items]


def train_and_test(args: Sequence[str], run_dir: Path, progress: bool = True) -> dict:
    """Fit on the fold's training speakers, predict its test set; the result dict of a neural run's format."""
    from mtl_aug.data.datamodule import SERDataModule

    data, cfg, seed = parse_args(args)
    dm = SERDataModule(**(data | {"use_unlabelled": False}))
    dm.setup("fit")
    hp = dm.hparams
    class_names = list(hp.class_names)
    extractor = make_extractor(cfg.feature_set)
    cache = FunctionalsCache(extractor, dm._cache(), cfg.feature_cache_dir)
    t0 = time.perf_counter()
    feats = {name: cache.matrix([it.path for it in ds.items], ds.waves, desc=f"{cfg.feature_set} {name}")
             for name, ds in dm.datasets.items()}
    extract_s = time.perf_counter() - t0
    test_corpus = hp.test_corpus or hp.corpus
    corpus_of = {"train": hp.corpus, "val": hp.corpus, "test": test_corpus}
    items = {name: ds.items for name, ds in dm.datasets.items()}
    if cfg.normalize != "utterance":
        groups = {n: split_groups(items[n], corpus_of[n], cfg.normalize) for n in feats}
        all_x = np.concatenate([feats[n] for n in feats])
        stats = group_stats(all_x, [g for n in feats for g in groups[n]])
        feats = {n: group_normalize(feats[n], groups[n], stats) for n in feats}
    fit_parts = ["train", "val"] if cfg.train_on_val else ["train"]
    x = np.concatenate([feats[n] for n in fit_parts])
    y = np.array([it.label for n in fit_parts for it in items[n]])
    spk = [it.speaker for n in fit_parts for it in items[n]]
    t1 = time.perf_counter()
    model = FunctionalsSVM(len(class_names), cfg.kernels, cfg.C, cfg.inner_folds, cfg.seed).fit(x, y, spk)
    fit_s = time.perf_counter() - t1
    result = {"fold": dm.fold_info.get("name"), "epochs": None, "best_val_uar": model.search_result.score,
              "fold_info": dm.fold_info, "class_names": class_names,
              "baseline": {"feature_set": cfg.feature_set, "n_features": int(x.shape[1]), "normalize": cfg.normalize,
                           "kernel": model.search_result.kernel, "C": model.search_result.C,
                           "inner_uar": model.search_result.score, "grid": model.search_result.grid,
                           "fit_speakers": sorted(set(spk)), "n_fit": int(len(y)),
                           "feature_cache": {"hits": cache.hits, "misses": cache.misses},
                           "extract_seconds": round(extract_s, 2), "fit_seconds": round(fit_s, 2)}}
    if "test" in feats:
        scores = model.decision_scores(feats["test"])
        probs, pred = softmax(scores), np.argmax(scores, 1)
        labels = [it.label for it in items["test"]]
        conf = confusion_from_labels(labels, pred, len(class_names))
        result.update(metrics_from_confusion(conf))
        result["confusion"] = conf.tolist()
        result["predictions"] = sorted(
            ({"key": it.key, "speaker": it.speaker, "label": int(it.label), "pred": int(p), "probs": pr.tolist()}
             for it, p, pr in zip(items["test"], pred, probs)), key=lambda r: r["key"])
    path = save(run_dir / MODEL_FILE, model, cfg, data, class_names)
    result["best_checkpoint"] = str(path)
    return result


# -- the fitted model on disk, and as the robustness commands use it -----------------------------------
class ModelFileError(RuntimeError):
    """A baseline model file that cannot be used; the message names it."""


def save(path: Path, model: FunctionalsSVM, cfg: BaselineConfig, data: dict, class_names: list[str]) -> Path:
    blob = pickle.dumps({"mtl_aug_baseline_format": FORMAT, "model": model, "config": vars(cfg), "data": data,
                         "class_names": class_names})
    return atomic_write_bytes(path, blob)


class BaselineModel:
    """A fitted baseline as the robustness commands use a checkpoint: ``predict_dataset(dm, perturb)``."""

    def __init__(self, state: dict, path: str | Path = "model.pkl") -> None:
        self.model: FunctionalsSVM = state["model"]
        self.cfg = BaselineConfig(**state["config"])
        self.data = dict(state["data"])
        self.path = str(path)
        self.hparams = SimpleNamespace(class_names=list(state["class_names"]),
                                       sample_rate=int(self.data.get("sample_rate") or 16000))
        self.extractor = make_extractor(self.cfg.feature_set)

    def check_scores_one_utterance(self) -> None:
        """Only a per-utterance SVM can score a lone recording: a speaker- or corpus-normalised one needs its
        group's statistics (a :class:`ModelFileError` naming the file)."""
        if self.cfg.normalize != "utterance":
            raise ModelFileError(f"{self.path}: a {self.cfg.normalize}-normalised SVM needs the statistics of the "
                                 "speaker's (or corpus's) other recordings; only a per-utterance SVM predicts one file")

    def utterance_probabilities(self, wave: np.ndarray, sample_rate: int, what: str = "utterance") -> np.ndarray:
        """Class probabilities ``[C]`` of one mono utterance (the softmax of the SVM's decision scores, as cv's
        predictions.csv holds them); see :meth:`check_scores_one_utterance`."""
        self.check_scores_one_utterance()
        if sample_rate != self.hparams.sample_rate:
            raise ValueError(f"{what}: {sample_rate} Hz given, the SVM's features are at {self.hparams.sample_rate} Hz")
        x = self.extractor(wave, sample_rate, what=what)[None]
        return softmax(self.model.decision_scores(x))[0]

    def eval(self) -> "BaselineModel":
        return self

    def emotion_logits(self, *_):
        raise TypeError(f"a {self.cfg.feature_set} + SVM baseline has no differentiable forward pass: it cannot be "
                        "attacked through the waveform (adversarial evaluates neural systems only)")

    def predict_dataset(self, dm, perturb: Callable | None = None) -> list[dict]:
        """Predictions on ``dm``'s test set; ``perturb(batch) -> wave`` is applied first (noise). Clean test
        audio reads the feature cache; perturbed audio is extracted afresh. Group normalisation uses the test
        groups' statistics over the audio as it is evaluated (enrolled in the condition it is heard in)."""
        ds = dm.datasets["test"]
        sr = int(dm.hparams.sample_rate)
        cache = FunctionalsCache(self.extractor, dm._cache(), self.cfg.feature_cache_dir)
        path_of = {it.key: it.path for it in ds.items}
        rows, feats = [], []
        for batch in dm.eval_loader(ds):
            wave = perturb(batch) if perturb is not None else None
            for i, key in enumerate(batch["key"]):
                n = int(batch["lengths"][i])
                if wave is None:
                    feats.append(cache.get(path_of[key], batch["wave"][i, :n].numpy()))
                else:
                    feats.append(self.extractor(wave[i, :n].detach().numpy(), sr, what=key))
                rows.append({"key": key, "speaker": batch["speaker"][i], "label": int(batch["label"][i])})
        x = np.stack(feats)
        if self.cfg.normalize != "utterance":
            corpus = dm.hparams.test_corpus or dm.hparams.corpus
            groups = [f"{corpus}:{r['speaker']}" if self.cfg.normalize == "speaker" else corpus for r in rows]
            x = group_normalize(x, groups, group_stats(x, groups))
        pred = self.model.predict(x)
        return [r | {"pred": int(p)} for r, p in zip(rows, pred)]


def read_state(path: str | Path) -> dict:
    """The saved state of a baseline model file (a :class:`ModelFileError` naming the file when unusable)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: baseline model file not found")
    try:
        state = pickle.loads(p.read_bytes())
    except Exception as err:  # noqa: BLE001 - any unpickling failure is the same user problem
        raise ModelFileError(f"{p}: not a readable baseline model file ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("mtl_aug_baseline_format") != FORMAT:
        raise ModelFileError(f"{p}: not a baseline model of format {FORMAT} (retrain it with cv --force)")
    return state


def load_baseline(path: str | Path) -> BaselineModel:
    """A baseline model file for prediction on audio (no corpus needed)."""
    return BaselineModel(read_state(path), path)


def load(path: str | Path):
    """``(BaselineModel, SERDataModule set up for testing, None)``, like ``checkpoints.load_for_evaluation``."""
    from mtl_aug.data.datamodule import SERDataModule

    state = read_state(path)
    dm = SERDataModule(**(state["data"] | {"use_unlabelled": False}))
    dm.setup("test")
    return BaselineModel(state, path), dm, None
