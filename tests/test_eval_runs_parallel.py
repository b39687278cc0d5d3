"""runs._run_parallel reports each run as soon as it finishes (the per-fold summary line), not at the end."""
import time
from pathlib import Path

import pytest

from mtl_aug.evaluation import runs


def _fast_or_waiting(run: runs.Run) -> dict:
    """The fast run returns at once; the other waits (at most 60 s) for the flag its report writes."""
    if run.fold == "fast":
        return {"fold": run.fold}
    flag = run.run_dir / "fast_reported"
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"fold": run.fold, "saw_report": flag.exists()}


def _fails(run: runs.Run) -> dict:
    raise RuntimeError(f"run {run.name} broke")


def test_parallel_runs_are_reported_as_they_finish(tmp_path: Path):
    todo = [runs.Run("waiting", 0, tmp_path), runs.Run("fast", 0, tmp_path)]
    reported = []

    def report(run: runs.Run, result: dict) -> None:
        reported.append(run.fold)
        if run.fold == "fast":
            (tmp_path / "fast_reported").touch()
        else:
            assert result["saw_report"], "the finished run was only reported after the slow one ended"

    runs._run_parallel(todo, 2, report, fn=_fast_or_waiting)
    assert reported == ["fast", "waiting"]


def test_a_failed_parallel_run_raises(tmp_path: Path):
    with pytest.raises(RuntimeError, match="run x_s0 broke"):
        runs._run_parallel([runs.Run("x", 0, tmp_path)], 2, lambda run, result: None, fn=_fails)
