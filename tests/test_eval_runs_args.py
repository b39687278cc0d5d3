"""recipes.retarget_args: a finished run's recorded args become exactly the args cv would give another fold x seed."""
from pathlib import Path

import pytest

from mtl_aug import recipes
from mtl_aug.evaluation import runs


def test_retarget_args_gives_the_args_cv_makes_for_the_other_run(tmp_path: Path):
    extra = ["--model.w_aug=0.5", "--trainer.max_epochs=3"]
    first = recipes.training_args("synthetic", "mtl_aug", "F01", 0, tmp_path / "runs" / "F01_s0", extra=extra,
                                  manifest_dir="m")
    other = recipes.training_args("synthetic", "mtl_aug", "M02", 2, tmp_path / "runs" / "M02_s2", extra=extra,
                                  manifest_dir="m")
    assert first != other
    assert recipes.retarget_args(first, "M02", 2, tmp_path / "runs" / "M02_s2") == other


def test_retarget_args_refuses_args_that_are_not_a_cv_runs():
    with pytest.raises(ValueError, match=r"no --data\.fold, --seed_everything"):
        recipes.retarget_args(["--config", "x.yaml", "--model.seed=1", "--data.seed=1"], "F01", 0, Path("r"))


def test_retarget_args_reads_the_seed_under_either_spelling(tmp_path: Path):
    """The policy's seed is ``--model.seed`` (shorthand) or ``--model.augment.init_args.seed``: one setting."""
    args = [a.replace("--model.seed=", "--model.augment.init_args.seed=")
            for a in recipes.training_args("synthetic", "stl", "F01", 0, tmp_path / "F01_s0")]
    out = recipes.retarget_args(args, "M02", 3, tmp_path / "M02_s3")
    assert "--model.augment.init_args.seed=3" in out and "--data.fold=M02" in out


def test_normalization_of_recorded_args_does_not_repeat_the_front_end_flag(tmp_path: Path):
    """A speaker-normalised cv run's recorded args already hold the flag: retargeted, they get it once."""
    flag = recipes.normalization_args("speaker")[0]
    fresh = recipes.training_args("synthetic", "stl", "F01", 0, tmp_path / "F01_s0")
    runs.apply_normalization([r := runs.Run("F01", 0, tmp_path / "F01_s0", fresh)], "speaker")
    assert r.args.count(flag) == 1
    again = runs.Run("M02", 1, tmp_path / "M02_s1", recipes.retarget_args(r.args, "M02", 1, tmp_path / "M02_s1"))
    runs.apply_normalization([again], "speaker")
    assert again.args.count(flag) == 1


def test_the_protocol_says_when_runs_trained_on_their_validation_speakers():
    from mtl_aug.evaluation.runs import trained_on_val_note

    held_out, seen = {"fold_info": {"val": ["09"]}}, {"fold_info": {"val": ["09"], "train_on_val": True}}
    assert trained_on_val_note([held_out, held_out]) == ""
    assert trained_on_val_note([seen, seen]).startswith("; every run also trained on its validation speakers")
    assert "1 of 2 runs also" in trained_on_val_note([seen, held_out])
