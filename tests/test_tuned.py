"""Per-corpus tuned settings (``experiments/tuned/<corpus>/<system>.yaml``): MTL-AUG's auxiliary-loss weights searched
on a corpus's own dev folds are part of that system's recipe on that corpus, and only there."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mtl_aug import recipes
from mtl_aug.provenance import REPO_ROOT
from mtl_aug.training import make_cli

TUNED = "experiments/tuned/emodb/mtl_aug.yaml"


def _weights(args: list[str]) -> tuple[float, float, float]:
    model = make_cli(args + ["--trainer.logger=false"], run=False).model
    return (model.tasks["reconstruction"].weight, model.tasks["aug_classification"].weight,
            model.emotion.center_lambda)


def test_the_tuned_file_follows_the_system_config_on_its_corpus_only():
    args = recipes.recipe_args("emodb", "mtl_aug")
    assert recipes.config_files(args)[-2:] == [recipes.config_path("experiments/systems/mtl_aug.yaml"),
                                               recipes.config_path(TUNED)]
    for corpus, system in [("ravdess", "mtl_aug"), ("emodb", "stl"), ("emodb", "mtl_aug_unlabelled"),
                           ("emodb", "compare_svm")]:
        assert not any("experiments/tuned" in f for f in recipes.config_files(recipes.recipe_args(corpus, system)))


def test_emodb_mtl_aug_trains_with_the_searched_weights_and_paper_weights_restores_the_papers():
    args = recipes.recipe_args("emodb", "mtl_aug")
    assert _weights(args) == (0.14, 0.19, 0.0001)
    assert _weights(args + ["--config", "experiments/recipes/paper_weights.yaml"]) == (1.0, 1.0, 0.01)
    assert _weights(recipes.recipe_args("ravdess", "mtl_aug")) == (1.0, 1.0, 0.01)


def test_the_dev_screen_runs_are_the_tuned_recipe():
    """The dev screen ran ``--config recipes/searched_weights.yaml`` on the untuned system: the same settings, so cv
    resumes and reuses those runs under the tuned layout, and refuses to mix in runs of the paper's weights."""
    untuned = []
    for f in ("experiments/base.yaml", "experiments/corpora/emodb.yaml", "experiments/systems/mtl_aug.yaml"):
        untuned += ["--config", recipes.config_path(f)]
    tuned = recipes.recipe_args("emodb", "mtl_aug")
    searched = untuned + ["--config", recipes.config_path("experiments/recipes/searched_weights.yaml")]
    assert recipes.recipe_fingerprint(tuned) == recipes.recipe_fingerprint(searched)
    assert recipes.recipe_fingerprint(tuned) != recipes.recipe_fingerprint(untuned)


def test_make_train_adds_the_tuned_file_on_its_corpus_only():
    def dry(corpus: str) -> str:
        return subprocess.run(["make", "-n", "-s", "train", f"CORPUS={corpus}", "SYSTEM=mtl_aug"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout

    assert f"--config {TUNED}" in dry("emodb") and "experiments/tuned" not in dry("ravdess")
    assert Path(REPO_ROOT / TUNED).is_file()
