"""`python -m mtl_aug pretrained`: release model on all speakers + model card (tiny, 1 epoch of 2 batches)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from mtl_aug.checkpoints import load_model
from mtl_aug.inference import pretrained

pytestmark = pytest.mark.slow

TINY_MODEL = ["--model.enc_channels=[4,8]", "--model.enc_time_pool=[1,2]", "--model.enc_freq_pool=[2,2]",
              "--model.enc_out_dim=16", "--model.lstm_hidden=8", "--model.attn_dim=8", "--model.embed_dim=8",
              "--model.dec_hidden=16", "--model.aug_hidden=8"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from mtl_aug.data import prepare, synthetic

    tmp = tmp_path_factory.mktemp("pre")
    synth, manifests = tmp / "synth", tmp / "manifests"
    assert synthetic.main(["--root", str(synth), "--n-speakers", "4", "--utts-per-emotion", "2",
                           "--n-unlabelled", "4", "--min-seconds", "1.0", "--max-seconds", "1.2"]) == 0
    mp = pytest.MonkeyPatch()
    mp.setenv("SYNTHETIC_ROOT", str(synth))
    for name in ("synthetic", "synthetic_unlabelled"):
        assert prepare.main([name, "--root", str(synth), "--out-dir", str(manifests), "--no-progress"]) == 0
    yield {"tmp": tmp, "manifests": manifests}
    mp.undo()


def test_release_model_and_model_card(corpus, capsys):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = corpus["tmp"]
    results = tmp / "results"
    summary = results / "synthetic" / "mtl_aug" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"uar": {"mean": 0.6123, "std": 0.021}, "pooled_uar": {"mean": 0.6, "std": 0.02},
                                   "seeds": [0, 1, 2], "n_runs": 12, "protocol": "synthetic, LOSO (4 folds)"}))
    out = tmp / "release"
    try:
        rc = pretrained.main(["--corpus", "synthetic", "--max-epochs", "1", "--out", str(out),
                              "--manifest-dir", str(corpus["manifests"]), "--results-dir", str(results), "--",
                              "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false",
                              f"--data.cache_dir={tmp / 'cache'}", *TINY_MODEL])
    finally:
        torch.set_num_threads(n)
    assert rc == 0
    for name in ("model.ckpt", "config.yaml", "MODEL_CARD.md", "model_card.json"):
        assert (out / name).is_file(), name
    model = load_model(out / "model.ckpt", "cpu")  # loads through the inference path
    assert "optimizer_states" not in torch.load(out / "model.ckpt", weights_only=True)
    card = json.loads((out / "model_card.json").read_text())
    assert card["corpus"] == "synthetic" and card["system"] == "mtl_aug"
    assert card["class_names"] == list(model.hparams.class_names)
    assert len(card["data"]["manifest_sha256"]) == 64 and len(card["checkpoint"]["sha256"]) == 64
    assert card["data"]["val_speakers"] and set(card["data"]["val_speakers"]).isdisjoint(card["data"]["train_speakers"])
    assert len(card["data"]["train_speakers"]) + len(card["data"]["val_speakers"]) == 4  # all speakers used
    assert "--data.fold=all" in card["training"]["lightning_args"]
    assert card["cross_validated"]["measured"] and "61.2 ± 2.1 %" in card["cross_validated"]["text"]
    for key in ("date", "git_commit", "mtl_aug_version", "torch_version", "config", "protocol"):
        assert card[key], key
    config = yaml.safe_load(card["config"])  # the resolved config: the flat flags at their nested keys
    assert config["data"]["fold"] == "all" and config["model"]["encoder"]["init_args"]["out_dim"] == 16
    md = (out / "MODEL_CARD.md").read_text()
    assert "61.2 ± 2.1 %" in md and card["git_commit"] in md and card["data"]["manifest_sha256"] in md
    # the default recipe ships the final averaged weights: the card says the validation speakers chose nothing
    assert "no epoch chosen" in card["protocol"] and "the validation speaker chose nothing" in md


def test_seed_ensemble_release(corpus, capsys):
    """``--seeds 2``: two members differing only in the seed, one card; a previous release's files do not survive."""
    from mtl_aug.inference.loading import SeedEnsemble, load_models

    tmp = corpus["tmp"]
    results = tmp / "results_ens"
    folder = results / "synthetic" / "mtl_aug"
    (folder / "ensemble").mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"uar": {"mean": 0.6, "std": 0.02}, "seeds": [0, 1]}))
    (folder / "ensemble" / "summary.json").write_text(json.dumps({"uar": {"mean": 0.655, "std": 0.0},
                                                                  "pooled_uar": {"mean": 0.671, "std": 0.0},
                                                                  "members": [0, 1]}))
    out = tmp / "release_ens"
    (out / "run").mkdir(parents=True)
    (out / "model.ckpt").write_text("a previous single-model release")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = pretrained.main(["--corpus", "synthetic", "--max-epochs", "1", "--seeds", "2", "--seed", "3",
                              "--out", str(out), "--manifest-dir", str(corpus["manifests"]), "--results-dir",
                              str(results), "--", "--trainer.limit_train_batches=2",
                              "--trainer.enable_progress_bar=false", f"--data.cache_dir={tmp / 'cache'}", *TINY_MODEL])
    finally:
        torch.set_num_threads(n)
    assert rc == 0
    assert not (out / "model.ckpt").exists() and not (out / "run").exists()
    files = [out / "model_s3.ckpt", out / "model_s4.ckpt"]
    assert all(f.is_file() for f in files) and (out / "run_s3").is_dir() and (out / "run_s4").is_dir()
    a, b = (torch.load(f, weights_only=True)["state_dict"] for f in files)
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two seeds, two models
    assert isinstance(load_models([str(f) for f in files], "cpu"), SeedEnsemble)
    card = json.loads((out / "model_card.json").read_text())
    assert [m["seed"] for m in card["ensemble"]] == [3, 4] and all(len(m["sha256"]) == 64 for m in card["ensemble"])
    assert "--seeds 2" in card["training"]["command"] and "--seed 3" in card["training"]["command"]
    assert "ensemble of its 2 seeds (as this release of 2): UAR 65.5 %, pooled 67.1 %" in card["cross_validated"]["text"]
    md = (out / "MODEL_CARD.md").read_text()
    assert "--ckpt model_s3.ckpt --ckpt model_s4.ckpt" in md and "seeds 3, 4" in md and "ensemble of 2 seeds" in md
    assert "release ensemble of 2" in capsys.readouterr().out
    assert pretrained.main(["--corpus", "synthetic", "--seeds", "0", "--manifest-dir", str(corpus["manifests"]),
                            "--out", str(tmp / "o")]) == 1
    assert "--seeds must be >= 1" in capsys.readouterr().err


def test_svm_release_for_late_fusion(corpus, capsys):
    """``--system egemaps_svm``: the baseline fitted on every speaker, ``model.pkl`` + card; it loads for predict."""
    from mtl_aug.baseline.run import load_baseline

    tmp = corpus["tmp"]
    out = tmp / "release_svm"
    rc = pretrained.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--out", str(out), "--manifest-dir",
                          str(corpus["manifests"]), "--results-dir", str(tmp / "no_results"), "--",
                          f"--data.cache_dir={tmp / 'cache'}", f"--model.feature_cache_dir={tmp / 'fcache'}"])
    assert rc == 0 and "release SVM" in capsys.readouterr().out
    svm = load_baseline(out / "model.pkl")
    card = json.loads((out / "model_card.json").read_text())
    assert card["family"] == "baseline" and card["class_names"] == list(svm.hparams.class_names)
    assert len(card["checkpoint"]["sha256"]) == 64 and card["training"]["epochs"] is None
    assert "every speaker" in card["protocol"] and "inner cross-validation" in card["training"]["best_val_uar_note"]
    fitted = svm.model.search_result
    assert fitted is not None and card["protocol"].count(fitted.kernel) == 1
    md = (out / "MODEL_CARD.md").read_text()
    assert "--svm model.pkl" in md and "export" not in md and "openSMILE functionals + SVM" in md
    assert pretrained.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--seeds", "2", "--out", str(out),
                            "--manifest-dir", str(corpus["manifests"])]) == 1
    assert "an SVM is deterministic" in capsys.readouterr().err
    assert (out / "model.pkl").is_file()  # refused before the previous release was cleared away


def test_an_svm_release_does_not_replace_the_network_by_default():
    assert pretrained.default_out("emodb", "mtl_aug") == pretrained.Path("pretrained/emodb")
    assert pretrained.default_out("emodb", "compare_svm") == pretrained.Path("pretrained/emodb_compare_svm")


def test_cv_result_of_an_ensemble_release_asks_for_the_cv_ensemble(tmp_path):
    p = tmp_path / "emodb" / "mtl_aug" / "summary.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"uar": {"mean": 0.8, "std": 0.01}, "seeds": [0, 1, 2]}))
    got = pretrained.cv_result("emodb", "mtl_aug", tmp_path, members=3)
    assert got["ensemble"] is None and f"run `python -m mtl_aug ensemble {p.parent}`" in got["text"]
    assert "ensemble" not in pretrained.cv_result("emodb", "mtl_aug", tmp_path)["text"]  # one model: not mentioned


def test_cv_result_missing_and_present(tmp_path):
    missing = pretrained.cv_result("emodb", "mtl_aug", tmp_path)
    assert not missing["measured"] and "not yet measured: run `make cv CORPUS=emodb SYSTEM=mtl_aug`" in missing["text"]
    p = tmp_path / "emodb" / "mtl_aug" / "summary.json"
    p.parent.mkdir(parents=True)
    p.write_text("{torn")
    assert not pretrained.cv_result("emodb", "mtl_aug", tmp_path)["measured"]
    p.write_text(json.dumps({"uar": {"mean": 0.8, "std": 0.0}, "seeds": [0], "protocol": "emodb, LOSO"}))
    got = pretrained.cv_result("emodb", "mtl_aug", tmp_path)
    assert got["measured"] and got["text"].startswith("UAR 80.0 ± 0.0 %") and "emodb, LOSO" in got["text"]


def test_the_card_says_whether_the_cv_runs_had_the_models_recipe(tmp_path):
    from mtl_aug import recipes

    folder = tmp_path / "emodb" / "mtl_aug"
    (folder / "runs" / "03_s0").mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"uar": {"mean": 0.8, "std": 0.0}, "seeds": [0]}))
    release = pretrained.training_args("emodb", "mtl_aug", tmp_path / "release")
    cv_run = recipes.training_args("emodb", "mtl_aug", "03", 0, folder / "runs" / "03_s0")
    result = folder / "runs" / "03_s0" / "result.json"
    result.write_text(json.dumps({"finished": "x"}))  # written before runs recorded their recipe
    got = pretrained.cv_result("emodb", "mtl_aug", tmp_path, release)
    assert got["same_recipe"] is None and "do not record their recipe" in got["text"]
    result.write_text(json.dumps({"finished": "x", "recipe": recipes.recipe_fingerprint(cv_run)}))
    got = pretrained.cv_result("emodb", "mtl_aug", tmp_path, release)  # another fold, seed and folder: same recipe
    assert got["same_recipe"] is True and "WARNING" not in got["text"]
    got = pretrained.cv_result("emodb", "mtl_aug", tmp_path, release + ["--model.label_smoothing=0.0"])
    assert got["same_recipe"] is False and "WARNING: these cv runs had another recipe" in got["text"]
    # a sibling cv folder that recorded exactly the model's recipe is quoted instead, and named
    sibling = tmp_path / "emodb" / "mtl_aug_ls0"
    (sibling / "runs" / "03_s0").mkdir(parents=True)
    (sibling / "summary.json").write_text(json.dumps({"uar": {"mean": 0.7, "std": 0.0}, "seeds": [0]}))
    (sibling / "runs" / "03_s0" / "result.json").write_text(json.dumps({"finished": "x", "recipe": recipes.recipe_fingerprint(
        cv_run + ["--model.label_smoothing=0.0"])}))
    got = pretrained.cv_result("emodb", "mtl_aug", tmp_path, release + ["--model.label_smoothing=0.0"])
    assert got["same_recipe"] is True and got["uar"]["mean"] == 0.7 and "mtl_aug_ls0, the cv folder" in got["text"]
    assert pretrained.cv_result("emodb", "mtl_aug", tmp_path, release)["uar"]["mean"] == 0.8  # its own folder first


def test_unprepared_corpus_fails_with_a_hint(tmp_path, capsys):
    assert pretrained.main(["--corpus", "synthetic", "--manifest-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "make prepare" in capsys.readouterr().err


def test_the_card_says_when_the_validation_speakers_were_trained_on():
    from mtl_aug.inference.model_card import protocol_text

    held_out = {"val": ["09"], "train": ["03", "08"], "n_train": 60, "n_val": 30}
    assert "except the validation speakers" in protocol_text("emodb", held_out, epoch_chosen=False)
    text = protocol_text("emodb", {**held_out, "train": ["03", "08", "09"], "n_train": 90, "train_on_val": True},
                         epoch_chosen=False)
    assert "(09) included" in text and "90 training utterances from 3 speakers" in text and "except" not in text
