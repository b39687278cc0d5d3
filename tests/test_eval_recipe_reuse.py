"""A results folder never mixes recipes: cv reuses a finished run only if the same config content and flags trained it."""
import itertools
from pathlib import Path

import pytest

from mtl_aug import recipes
from mtl_aug.evaluation import runs
from mtl_aug.io import atomic_write_json


def _run(tmp_path: Path, config: Path, out: str = "out") -> runs.Run:
    run_dir = tmp_path / out / "runs" / "F01_s0"
    return runs.Run("F01", 0, run_dir, ["--config", str(config), "--data.fold=F01", "--seed_everything=0",
                                        f"--trainer.default_root_dir={run_dir}"])


def _finished(tmp_path: Path, fingerprint: bool = True) -> tuple[runs.Run, Path]:
    """A finished run of ``base.yaml`` (lr 0.002), with or without its recipe fingerprint; and that config file."""
    config = tmp_path / "base.yaml"
    config.write_text("model:\n  lr: 0.002\n")
    run = _run(tmp_path, config)
    result = {"finished": "2026-01-01T00:00:00", "test": {"uar": 0.5}}
    if fingerprint:
        result["recipe"] = recipes.recipe_fingerprint(run.args)
    atomic_write_json(run.result_path, result)
    return run, config


def _fresh(run: runs.Run) -> dict:
    return {"fresh": True}


def test_a_finished_run_of_the_same_recipe_is_reused_even_after_a_comment_or_a_move(tmp_path: Path):
    run, config = _finished(tmp_path)
    config.write_text("# a comment changes nothing\nmodel:\n  lr: 0.002   # nor here\n")
    assert runs.run_all([run], "cv", executor=_fresh)[0]["test"]["uar"] == 0.5
    moved = _run(tmp_path, config, out="elsewhere")
    assert recipes.recipe_fingerprint(moved.args) == recipes.recipe_fingerprint(run.args)


def test_a_finished_run_of_another_recipe_is_refused_with_a_clear_error(tmp_path: Path):
    run, config = _finished(tmp_path)
    config.write_text("model:\n  lr: 0.001\n")
    with pytest.raises(runs.OtherRecipeError, match=r"out: 1 finished run\(s\) \(F01_s0\).*new --out, or --force"):
        runs.run_all([run], "cv", executor=_fresh)
    run.args.append("--model.lr=0.002")  # a flag counts as much as a file
    assert recipes.other_recipe(run.args, run.load())
    assert runs.run_all([run], "cv", executor=_fresh, force=True) == [{"fresh": True}]


def test_the_fingerprint_is_of_the_merged_settings_not_of_which_file_holds_them(tmp_path: Path):
    """base + a recipe file == a base that took the recipe's settings in (the list replaced, ``key+`` appending);
    a run recorded with the per-file digest of before still counts as the same recipe."""
    files = itertools.count()

    def args(*texts: str) -> list[str]:
        out = []
        for text in texts:
            path = tmp_path / f"config{next(files)}.yaml"
            path.write_text(text)
            out += ["--config", str(path)]
        return out

    old_base = "trainer:\n  max_epochs: 60\n  callbacks: [{class_path: A}]\nmodel: {lr: 0.002, dropout: 0.3}\n"
    recipe = "trainer:\n  callbacks: [{class_path: B}]\n  callbacks+: [{class_path: C}]\nmodel: {dropout: 0.5}\n"
    new_base = "trainer:\n  max_epochs: 60\n  callbacks: [{class_path: B}, {class_path: C}]\nmodel: {lr: 0.002, dropout: 0.5}\n"
    assert recipes.recipe_fingerprint(args(old_base, recipe)) == recipes.recipe_fingerprint(args(new_base))
    assert recipes.recipe_fingerprint(args(old_base, recipe)) != recipes.recipe_fingerprint(args(old_base))
    assert recipes.recipe_fingerprint(args(new_base.replace("0.5", "0.4"))) != recipes.recipe_fingerprint(args(new_base))
    legacy = recipes.recipe_fingerprints(args(old_base, recipe)) - {recipes.recipe_fingerprint(args(old_base, recipe))}
    assert len(legacy) == 1 and not recipes.other_recipe(args(old_base, recipe), {"recipe": legacy.pop()})


def test_results_without_a_fingerprint_are_taken_as_they_are(tmp_path: Path):
    run, _ = _finished(tmp_path, fingerprint=False)
    assert runs.run_all([run], "cv", executor=_fresh)[0]["test"]["uar"] == 0.5


def test_cv_and_cross_report_the_mix_as_a_usage_error():
    from mtl_aug.evaluation import cross, cv

    assert runs.OtherRecipeError in cv.SETTING.user_errors()
    assert runs.OtherRecipeError in cross.SETTING.user_errors()


def test_a_neural_recipe_given_to_a_baseline_system_is_a_clear_error():
    from mtl_aug.baseline.run import BaselineArgsError, parse_args

    args = recipes.training_args("synthetic", "compare_svm", "F01", 0, Path("r"))
    with pytest.raises(BaselineArgsError, match=r"does not accept option 'encoder.*neural recipe files"):
        parse_args(args + ["--config", "experiments/recipes/recipe1.yaml"])
