"""Per-corpus tuned settings (``experiments/tuned/<corpus>/<system>.yaml``, docs/sweeps.md "From a search to a
default"): values searched for a system on a corpus's own dev folds become part of that system's recipe on that
corpus, and only there. The tests write such a file into a scratch working directory (config files resolve there
first, then in the repository)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mtl_aug import recipes
from mtl_aug.provenance import REPO_ROOT
from mtl_aug.training import make_cli, recipe_argv

TUNED = "experiments/tuned/emodb/mtl_aug.yaml"
SEARCHED = REPO_ROOT / "experiments/recipes/searched_weights.yaml"


@pytest.fixture
def tuned_emodb(tmp_path, monkeypatch) -> Path:
    path = tmp_path / TUNED
    path.parent.mkdir(parents=True)
    path.write_text(SEARCHED.read_text())  # the weights of EMODB's dev-fold search, as a user would adopt them
    monkeypatch.chdir(tmp_path)
    return path


def _weights(args: list[str]) -> tuple[float, float, float]:
    model = make_cli(args + ["--trainer.logger=false"], run=False).model
    return (model.tasks["reconstruction"].weight, model.tasks["aug_classification"].weight,
            model.emotion.center_lambda)


def test_no_corpus_has_tuned_settings_in_the_repository():
    """EMODB's search tied the paper's weights and RAVDESS's trailed them on its dev folds' test actors (results
    README, "Recipe search"): every system runs as its file says."""
    assert not list((REPO_ROOT / "experiments").glob("tuned/*/*.yaml"))
    assert _weights(recipes.recipe_args("emodb", "mtl_aug")) == (1.0, 1.0, 0.01)


def test_a_tuned_file_follows_the_system_config_on_its_corpus_and_system_only(tuned_emodb):
    args = recipes.recipe_args("emodb", "mtl_aug")
    assert recipes.config_files(args)[-2:] == [str(REPO_ROOT / "experiments/systems/mtl_aug.yaml"), TUNED]
    assert _weights(args) == (0.14, 0.19, 0.0001)
    assert _weights(args + ["--model.w_aug=0.5"])[1] == 0.5  # flags after it still override it
    for corpus, system in [("ravdess", "mtl_aug"), ("emodb", "stl"), ("emodb", "mtl_aug_unlabelled"),
                           ("emodb", "compare_svm")]:
        assert not any("experiments/tuned" in f for f in recipes.config_files(recipes.recipe_args(corpus, system)))
    train = recipes.training_args("emodb", "mtl_aug", "03", 0, Path("run"), test_corpus="ravdess")
    assert TUNED in recipes.config_files(train)  # cross-corpus: the training corpus's tuned settings


def test_runs_of_the_same_settings_by_a_recipe_file_are_the_tuned_recipe(tuned_emodb):
    """cv reuses finished runs by recipe fingerprint: the searched_weights.yaml runs are the tuned system's runs,
    the untuned system's are not."""
    untuned = []
    for f in ("experiments/base.yaml", "experiments/corpora/emodb.yaml", "experiments/systems/mtl_aug.yaml"):
        untuned += ["--config", recipes.config_path(f)]
    tuned = recipes.recipe_args("emodb", "mtl_aug")
    assert recipes.recipe_fingerprint(tuned) == recipes.recipe_fingerprint(untuned + ["--config", str(SEARCHED)])
    assert recipes.recipe_fingerprint(tuned) != recipes.recipe_fingerprint(untuned)


def test_train_with_corpus_and_system_composes_what_cv_composes(tuned_emodb):
    argv = recipe_argv(["--corpus", "emodb", "--system", "mtl_aug", "--data.fold=03", "--model.w_aug=0.5"])
    assert argv == recipes.recipe_args("emodb", "mtl_aug") + ["--data.fold=03", "--model.w_aug=0.5"]
    assert recipes.config_files(argv)[-1] == TUNED  # the tuned file after the system's, flags after both
    assert "experiments/tuned" not in " ".join(recipe_argv(["--corpus", "ravdess", "--system", "mtl_aug"]))
    plain = ["--config", "x.yaml", "--data.fold=03"]
    assert recipe_argv(plain) == plain  # a LightningCLI line stays as it is


def test_train_with_corpus_and_system_rejects_what_it_cannot_train(tuned_emodb):
    with pytest.raises(SystemExit, match="needs --corpus"):
        recipe_argv(["--system", "stl"])
    with pytest.raises(SystemExit, match="SVM baseline.*cv --corpus emodb --system compare_svm"):
        recipe_argv(["--corpus", "emodb", "--system", "compare_svm"])
    with pytest.raises(SystemExit, match="unknown system 'nope'"):
        recipe_argv(["--corpus", "emodb", "--system", "nope"])
    with pytest.raises(SystemExit, match="no corpus config experiments/corpora/nowhere.yaml"):
        recipe_argv(["--corpus", "nowhere", "--system", "stl"])


def test_make_train_is_train_with_corpus_and_system():
    out = subprocess.run(["make", "-f", str(REPO_ROOT / "Makefile"), "-n", "-s", "train", "CORPUS=emodb",
                          "SYSTEM=stl", "FOLD=03"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m mtl_aug train --corpus emodb --system stl --data.fold=03" in out


def test_train_finds_a_user_corpus_under_the_given_manifest_dir(tmp_path):
    """A user's corpus prepared into another manifest folder: train looks for its config.yaml where the flag says, as
    cv does, and keeps the flag for LightningCLI."""
    config = tmp_path / "manifests" / "mine" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("data:\n  corpus: mine\n")
    for flag in ([f"--data.manifest_dir={tmp_path / 'manifests'}"], ["--data.manifest_dir", str(tmp_path / "manifests")]):
        argv = recipe_argv(["--corpus", "mine", "--system", "stl", *flag])
        assert recipes.config_files(argv)[1] == str(config)
        assert argv[-len(flag):] == flag
    with pytest.raises(SystemExit, match="data_manifests/mine/config.yaml of your own corpus"):
        recipe_argv(["--corpus", "mine", "--system", "stl"])
