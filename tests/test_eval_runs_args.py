"""runs.retarget_args: a finished run's recorded args become exactly the args cv would give another fold x seed."""
from pathlib import Path

import pytest

from mtl_aug.evaluation import runs


def test_retarget_args_gives_the_args_cv_makes_for_the_other_run(tmp_path: Path):
    extra = ["--model.w_aug=0.5", "--trainer.max_epochs=3"]
    first = runs.training_args("synthetic", "mtl_aug", "F01", 0, tmp_path / "runs" / "F01_s0", extra=extra,
                               manifest_dir="m")
    other = runs.training_args("synthetic", "mtl_aug", "M02", 2, tmp_path / "runs" / "M02_s2", extra=extra,
                               manifest_dir="m")
    assert first != other
    assert runs.retarget_args(first, "M02", 2, tmp_path / "runs" / "M02_s2") == other


def test_retarget_args_refuses_args_that_are_not_a_cv_runs():
    with pytest.raises(ValueError, match=r"no --data\.fold, --seed_everything"):
        runs.retarget_args(["--config", "x.yaml", "--model.seed=1", "--data.seed=1"], "F01", 0, Path("r"))
