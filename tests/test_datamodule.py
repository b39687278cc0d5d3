"""DataModule: speaker-disjoint splits, seeded crops, unlabelled mixing, eval sharding, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_aug.data.cache import WaveformCache
from mtl_aug.data.collate import collate_utterances
from mtl_aug.data.datamodule import SERDataModule
from mtl_aug.data.dataset import crop_bounds
from mtl_aug.data.samplers import EpochSampler, UnpaddedDistributedSampler, class_balanced_weights


def make_dm(corpus: dict, **kw) -> SERDataModule:
    args = dict(corpus="synthetic", root=str(corpus["root"]), manifest_dir=str(corpus["manifest_dir"]),
                cache_dir=str(corpus["cache_dir"]), batch_size=4, segment_seconds=1.0,
                unlabelled_corpus="synthetic_unlabelled", unlabelled_root=str(corpus["root"]))
    args.update(kw)
    dm = SERDataModule(**args)
    dm.setup("fit")
    return dm


def test_splits_are_speaker_disjoint_and_match_the_fold(synthetic_corpus):
    dm = make_dm(synthetic_corpus, fold="M02")
    spk = {name: {it.speaker for it in dm.datasets[name].items} for name in ("train", "val", "test")}
    assert spk["test"] == {"M02"}
    assert not (spk["train"] & spk["val"]) and not (spk["train"] & spk["test"]) and not (spk["val"] & spk["test"])
    assert dm.fold_info["n_test"] == 32  # 8 per emotion x 4 emotions


def test_all_fold_trains_on_everyone_but_validation(synthetic_corpus):
    dm = make_dm(synthetic_corpus, fold="all")
    assert "test" not in dm.datasets
    val = {it.speaker for it in dm.datasets["val"].items}
    train = {it.speaker for it in dm.datasets["train"].items}
    assert val and not (val & train) and len(train) == 3


def test_unknown_fold_names_the_available_ones(synthetic_corpus):
    with pytest.raises((KeyError, ValueError), match="F01"):
        make_dm(synthetic_corpus, fold="nope")


def test_missing_manifest_says_how_to_prepare(synthetic_corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="make prepare CORPUS=synthetic"):
        make_dm(synthetic_corpus, manifest_dir=str(tmp_path))


def test_training_crops_are_seeded_and_change_per_epoch(synthetic_corpus):
    dm = make_dm(synthetic_corpus)
    ds = dm.datasets["train"]
    long_index = max(range(len(ds)), key=lambda i: len(ds.wave(i)))
    a, b, c = ds[(long_index, 0)]["wave"], ds[(long_index, 0)]["wave"], ds[(long_index, 1)]["wave"]
    assert a.numel() == 16000 and torch.equal(a, b)
    assert not torch.equal(a, c)
    assert crop_bounds(100, 10, None) == (45, 55)
    assert crop_bounds(5, 10, np.random.default_rng(0)) == (0, 5)


def test_unlabelled_batches_match_labelled_ones(synthetic_corpus):
    dm = make_dm(synthetic_corpus, use_unlabelled=True, unlabelled_batch_size=3)
    loader = dm.train_dataloader()
    n = 0
    for batch, _, _ in loader:
        assert set(batch) == {"labelled", "unlabelled"}
        assert (batch["labelled"]["label"] >= 0).all() and (batch["unlabelled"]["label"] == -1).all()
        assert batch["unlabelled"]["wave"].shape[0] == 3
        n += 1
    assert n == len(dm.datasets["train"]) // 4 + bool(len(dm.datasets["train"]) % 4)


def test_epoch_sampler_repeats_and_balances():
    s1, s2 = EpochSampler(10, seed=3), EpochSampler(10, seed=3)
    e0, e1 = list(s1), list(s1)
    assert e0 == list(s2) and sorted(i for i, _ in e0) == list(range(10))
    assert [e for _, e in e1] == [1] * 10 and e0 != e1
    labels = [0] * 90 + [1] * 10
    drawn = [i for i, _ in EpochSampler(100, seed=0, num_samples=4000, weights=class_balanced_weights(labels))]
    share_minority = np.mean([labels[i] for i in drawn])
    assert 0.45 < share_minority < 0.55


def test_eval_sampler_shards_without_padding():
    data = list(range(7))
    shards = []
    for rank in range(2):
        s = UnpaddedDistributedSampler.__new__(UnpaddedDistributedSampler)
        s.dataset, s.rank, s.num_replicas = data, rank, 2
        shards.append(list(iter(s)))
    assert sorted(shards[0] + shards[1]) == data and len(shards[0]) == 4 and len(shards[1]) == 3


def test_collate_pads_and_keeps_lengths():
    rows = [{"wave": torch.ones(5), "label": 1, "key": "a", "speaker": "s"},
            {"wave": torch.ones(3), "label": -1, "key": "b", "speaker": "t"}]
    b = collate_utterances(rows)
    assert b["wave"].shape == (2, 5) and b["lengths"].tolist() == [5, 3]
    assert b["wave"][1, 3:].abs().sum() == 0 and b["label"].tolist() == [1, -1]


def test_waveform_cache_decodes_once_and_invalidates_on_change(tmp_path, make_audio):
    wav = make_audio(tmp_path / "a.wav", seconds=0.5, sr=22050)
    cache = WaveformCache(tmp_path / "cache", 16000)
    first = cache.get(wav)
    again = cache.get(wav)
    assert (cache.misses, cache.hits) == (1, 1) and np.array_equal(first, again) and len(first) == 8000
    make_audio(wav, seconds=0.25, sr=22050)  # rewritten file: new size/mtime -> new key
    assert len(cache.get(wav)) == 4000 and cache.misses == 2


def test_train_on_val_adds_the_validation_speakers_but_never_the_test_speaker(synthetic_corpus):
    held_out = make_dm(synthetic_corpus, fold="M02")
    dm = make_dm(synthetic_corpus, fold="M02", train_on_val=True)
    train = {it.speaker for it in dm.datasets["train"].items}
    val = {it.speaker for it in dm.datasets["val"].items}
    assert val and val <= train and "M02" not in train
    assert len(dm.datasets["train"]) == len(held_out.datasets["train"]) + len(held_out.datasets["val"])
    assert dm.fold_info["train_on_val"] and not held_out.fold_info["train_on_val"]
