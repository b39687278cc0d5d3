"""Your own corpus end to end (issue 34), with commands alone: the synthetic corpus's audio laid out as a user's
CSV (German labels, 3 of them kept) and as one folder per label (speaker ids in the file names); each is
prepared, cross-validated over 2 speaker-grouped folds, tested on by a model of another corpus (``cross``),
trains the model of a ``cross`` into a registered corpus, and goes through ``train``, ``noise`` and
``pretrained`` by name.

Tiny: 4 speakers x 4 emotions x 2 utterances of ~1 s, a small encoder, 1 epoch of at most 2 batches, 1 seed.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from e2e_corpus import TINY_MODEL, synthetic_corpus_with_noise
from mtl_aug.data.folds import check_folds, read_folds
from mtl_aug.data.manifest import read_manifest
from mtl_aug.evaluation import cross, cv, noise, runs

pytestmark = pytest.mark.slow

GERMAN = {"angry": "Wut", "happy": "Freude", "neutral": "Neutral", "sad": "Trauer"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mtl_aug.data import prepare

    tmp = tmp_path_factory.mktemp("own")
    mp = pytest.MonkeyPatch()
    torch.set_num_threads(1)
    synth, manifests = synthetic_corpus_with_noise(tmp, mp, ("running_tap",), ("synthetic", "speech_commands"))

    # the user's corpora, from the same audio: a CSV ...
    csv_root, folders = tmp / "csv_corpus", tmp / "folder_corpus"
    rows = []
    for wav in sorted((synth / "labelled").rglob("*.wav")):
        speaker, emotion, n = wav.stem.split("_")
        rel = Path("recordings") / speaker / f"{emotion}_{n}.wav"
        (csv_root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, csv_root / rel)
        rows.append({"path": rel.as_posix(), "label": GERMAN[emotion], "speaker": speaker, "gender": speaker[0]})
        # ... and Angry/ Happy/ Neutral/ Sad/ with the speaker id in the file name
        (folders / emotion.capitalize()).mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, folders / emotion.capitalize() / f"{speaker}_{n}.wav")
    with open(tmp / "my.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "speaker", "gender"])
        w.writeheader()
        w.writerows(rows)
    assert prepare.main(["--csv", str(tmp / "my.csv"), "--name", "mycsv", "--root", str(csv_root),
                         "--classes", "wut,freude,trauer", "--n-folds", "2", "--out-dir", str(manifests),
                         "--no-progress"]) == 0
    assert prepare.main(["--folders", str(folders), "--name", "myfolders", "--speaker-regex", r"^([FM]\d\d)_",
                         "--n-folds", "2", "--out-dir", str(manifests), "--no-progress"]) == 0
    yield {"tmp": tmp, "manifests": str(manifests), "results": tmp / "results",
           "extra": ["--", "--trainer.limit_train_batches=2", f"--data.cache_dir={tmp / 'cache'}", *TINY_MODEL]}
    mp.undo()


def common(env):
    return ["--seeds", "1", "--max-epochs", "1", "--manifest-dir", env["manifests"], "--jobs", "1"]


def test_prepared_folds_are_speaker_independent(env):
    for name, n_rows in (("mycsv", 24), ("myfolders", 32)):
        d = Path(env["manifests"]) / name
        df, doc = read_manifest(d / "manifest.csv"), read_folds(d / "folds.json")
        assert len(df) == n_rows and doc["protocol"] == "grouped_kfold" and len(doc["folds"]) == 2
        check_folds(doc, df, label_column=doc["label_column"])
        for fold in doc["folds"]:
            parts = [set(fold[p]) for p in ("train", "val", "test")]
            assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


@pytest.fixture(scope="module")
def cv_csv(env):
    out = env["results"] / "mycsv" / "stl"
    assert cv.main(["--corpus", "mycsv", "--system", "stl", "--out", str(out), *common(env), *env["extra"]]) == 0
    return out


def test_cv_on_a_csv_corpus_reports_its_own_classes(cv_csv):
    s = json.loads((cv_csv / "summary.json").read_text())
    assert s["class_names"] == ["wut", "freude", "trauer"] and s["folds"] == ["F01-F03", "M02-M04"]
    assert np.asarray(s["confusion"]).shape == (3, 3) and np.asarray(s["confusion"]).sum() == 24
    md = (cv_csv / "summary.md").read_text()
    assert "mycsv, speaker-grouped k-fold (2 folds), one validation speaker per fold, 3 classes (wut, freude, trauer)" in md
    assert "| true \\ pred | wut | freude | trauer |" in md
    preds = list(csv.DictReader(open(cv_csv / "predictions.csv")))
    assert len(preds) == 24 and {p["label_name"] for p in preds} == {"wut", "freude", "trauer"}
    assert {"prob_wut", "prob_freude", "prob_trauer"} <= set(preds[0])
    assert (cv_csv / "confusion.png").exists()


def test_cv_on_a_folder_corpus_then_noise(env):
    out = env["results"] / "myfolders" / "stl"
    assert cv.main(["--corpus", "myfolders", "--system", "stl", "--out", str(out), *common(env), *env["extra"]]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["class_names"] == ["angry", "happy", "neutral", "sad"] and np.asarray(s["confusion"]).sum() == 32
    assert "myfolders, speaker-grouped k-fold (2 folds), one validation speaker per fold, 4-class" in s["protocol"]
    # noise by name, on the cv models just trained (evaluation only)
    before = len(runs.EXECUTED)
    assert noise.main(["--corpus", "myfolders", "--system", str(out), "--snrs", "10", "--seeds", "1"]) == 0
    assert all(":" in n for n in runs.EXECUTED[before:])  # nothing retrained
    ns = json.loads((out / "noise" / "summary.json").read_text())
    assert set(ns["conditions"]) == {"clean", "10 dB"} and ns["class_names"] == s["class_names"]


def test_cross_into_a_folder_corpus(env):
    """A model of a registered corpus tested on the user's folders: Angry/.. read as the 4-class labels."""
    out = env["results"] / "cross" / "synthetic_to_myfolders" / "stl"
    assert cross.main(["--train", "synthetic", "--test", "myfolders", "--system", "stl", "--out", str(out),
                       *common(env), *env["extra"]]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert np.asarray(s["confusion"]).sum() == 32 and s["test"] == "myfolders"
    assert "tested on every 4-class utterance of myfolders" in s["protocol"]


def test_cross_into_a_csv_corpus_refuses_unmapped_labels_then_maps_them(env, capsys):
    out = env["results"] / "cross" / "synthetic_to_mycsv" / "stl"
    argv = ["--train", "synthetic", "--test", "mycsv", "--system", "stl", "--out", str(out), *common(env)]
    before = len(runs.EXECUTED)
    assert cross.main([*argv, *env["extra"]]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("cross: error: test corpus 'mycsv': labels 'freude' (8), 'trauer' (8), 'wut' (8) of its "
                          "column 'emotion' map onto none of the trained classes (angry, happy, neutral, sad)")
    assert "--label-map freude=angry" in err and len(runs.EXECUTED) == before  # refused before any training
    assert cross.main([*argv, "--label-map", "wut=angry,freude=happy,trauer=sad", *env["extra"]]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["label_map"] == {"wut": "angry", "freude": "happy", "trauer": "sad"}
    conf = np.asarray(s["confusion"])
    assert conf.sum() == 24 and conf[2].sum() == 0  # no neutral utterance in this test set
    assert "labels mapped wut → angry, freude → happy, trauer → sad" in s["protocol"]
    preds = list(csv.DictReader(open(out / "predictions.csv")))
    assert {p["label_name"] for p in preds} == {"angry", "happy", "sad"}


def test_cross_from_a_csv_corpus_into_a_registered_one(env, capsys):
    """--train mycsv: its 3 classes are the model's; the registered test corpus's labels must map onto them."""
    out = env["results"] / "cross" / "mycsv_to_synthetic" / "stl"
    argv = ["--train", "mycsv", "--test", "synthetic", "--system", "stl", "--out", str(out), *common(env)]
    assert cross.main([*argv, "--label-map", "angry=wut,happy=freude,sad=trauer", *env["extra"]]) == 2
    assert "label 'neutral' (8) of its column 'label'" in capsys.readouterr().err  # not mapped, not dropped
    assert cross.main([*argv, "--label-map", "angry=wut,happy=freude,sad=trauer,neutral=", *env["extra"]]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["class_names"] == ["wut", "freude", "trauer"] and np.asarray(s["confusion"]).sum() == 24
    assert "neutral → (dropped)" in s["protocol"]


def test_train_and_pretrained_by_name(env, capsys):
    from mtl_aug import training
    from mtl_aug.inference import pretrained

    config = Path(env["manifests"]) / "mycsv" / "config.yaml"
    run_dir = env["tmp"] / "train"
    flags = ["--trainer.max_epochs=1", *env["extra"][1:], f"--trainer.default_root_dir={run_dir}",
             f"--trainer.logger.init_args.save_dir={run_dir}", "--trainer.enable_progress_bar=false"]
    assert training.main(["--config", "experiments/base.yaml", "--config", str(config),
                          "--config", "experiments/systems/stl.yaml", "--data.fold=M02-M04", *flags]) == 0
    out = capsys.readouterr().out
    assert "fold M02-M04: test UAR" in out and "true \\ pred" in out and "trauer" in out
    card = pretrained.make_pretrained("mycsv", "stl", env["tmp"] / "release", max_epochs=1,
                                      manifest_dir=env["manifests"], extra=env["extra"][1:])
    assert card["class_names"] == ["wut", "freude", "trauer"] and card["data"]["val_speakers"] == ["M02"]
    assert "3 classes (wut, freude, trauer)" in (env["tmp"] / "release" / "MODEL_CARD.md").read_text()
