"""The offline runner with a fake, instant trial program: trials as subprocesses with W&B's rendering,
offline W&B env, metric read back, resume after interruption, goal-aware leaderboard."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from mtl_aug.sweep import leaderboard, runner

REPO = Path(__file__).resolve().parents[1]

FAKE = textwrap.dedent('''
    import json, os, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    with open(os.environ["FAKE_CALLS"], "a") as f:
        f.write(json.dumps(args) + "\\n")
    t_start = time.time()
    time.sleep(30 if os.environ.get("SLOW_X") == args["x"] else float(os.environ.get("SLEEP_S", 0)))
    x = float(args["x"])
    if x == 13:
        sys.exit(3)
    if args.get("mode") != "silent":
        out = {"score": 0.0 - (x - 3) ** 2, "argv": sys.argv[1:], "t_start": t_start, "t_end": time.time(),
               "env": {k: os.environ.get(k) for k in ("WANDB_MODE", "WANDB_RUN_GROUP", "WANDB_NAME", "WANDB_DIR",
                                                       "MTL_AUG_SWEEP_TRIAL_DIR", "OMP_NUM_THREADS")}}
        with open(os.environ["MTL_AUG_SWEEP_RESULT"], "w") as f:
            json.dump(out, f)
''')


@pytest.fixture
def fake(tmp_path, monkeypatch):
    prog = tmp_path / "fake.py"
    prog.write_text(FAKE)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_CALLS", str(calls))

    def make(parameters: dict, method: str = "grid", goal: str = "maximize", name: str = "fk", extra=None) -> Path:
        cfg = {"name": name, "program": str(prog), "method": method, "metric": {"name": "score", "goal": goal},
               "command": ["${env}", "${interpreter}", "${program}", *(extra or []), "${args}"],
               "parameters": parameters}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def n_calls() -> list[dict]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    make.calls = n_calls
    return make


def _leaderboard(out: Path) -> list[dict]:
    with (out / "leaderboard.csv").open() as f:
        return list(csv.DictReader(f))


def _start_runner(cmd: list[str], env: dict) -> subprocess.Popen:
    # a shell's background job (`make test &`, nohup) starts with SIGINT ignored, and Python keeps it ignored:
    # give the runner the disposition of a terminal, where Ctrl-C exists
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _assert_group_gone(pgid: int) -> None:
    """The runner was stopped with its trials: nothing left in its process group."""
    for _ in range(50):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail("the interrupted trial kept running")


def test_grid_runs_every_trial_and_ranks_them(fake, tmp_path, capsys):
    path = fake({"x": {"values": [1, 3, 4, 6]}, "tag": {"value": "a b"}})
    out = tmp_path / "out"
    assert runner.main([str(path), "--out", str(out), "--threads", "1"]) == 0
    board = _leaderboard(out)
    assert [r["x"] for r in board] == ["3", "4", "1", "6"]  # -(x-3)^2, maximised
    assert [r["rank"] for r in board] == ["1", "2", "3", "4"]
    assert float(board[0]["score"]) == 0.0
    md = (out / "leaderboard.md").read_text()
    assert "| 1 | 2 | 0.0000 |" in md and "Best flags: `--tag=a b --x=3`" in md
    assert "Figure: `leaderboard.png`" in md
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "[1/4] tag=a b x=1 ..." in printed and "score=-4.0000" in printed  # one line per trial
    # the trial saw W&B's rendering and the offline W&B environment
    result = json.loads((out / "trials" / "001" / "result.json").read_text())
    assert result["argv"] == ["--tag=a b", "--x=1"]
    env = result["env"]
    assert env["WANDB_MODE"] == "offline" and env["WANDB_RUN_GROUP"] == "fk" and env["WANDB_NAME"] == "fk-001"
    assert env["WANDB_DIR"] == str((out / "trials" / "001").resolve()) and env["OMP_NUM_THREADS"] == "1"
    state = json.loads((out / "state.json").read_text())
    assert [t["params"]["x"] for t in state["trials"]] == [1, 3, 4, 6]
    assert all(t["status"] == "ok" and t["time_s"] >= 0 for t in state["trials"])


def test_minimize_goal_reverses_the_order(fake, tmp_path):
    path = fake({"x": {"values": [1, 3, 6]}}, goal="minimize")
    out = tmp_path / "out"
    assert runner.main([str(path), "--out", str(out)]) == 0
    assert [r["x"] for r in _leaderboard(out)] == ["6", "1", "3"]


def test_resume_skips_finished_trials(fake, tmp_path, capsys):
    path = fake({"x": {"distribution": "uniform", "min": 0.0, "max": 6.0}}, method="random")
    out = tmp_path / "out"
    assert runner.main([str(path), "--out", str(out), "--count", "2", "--seed", "7"]) == 0
    assert len(fake.calls()) == 2
    assert runner.main([str(path), "--out", str(out), "--count", "3"]) == 0  # seed comes from the state
    calls = fake.calls()
    assert len(calls) == 3  # only the third trial ran
    assert "done before: skipped" in capsys.readouterr().out
    state = json.loads((out / "state.json").read_text())
    from mtl_aug.sweep.config import load_sweep

    drawn = load_sweep(path).trials(3, seed=7)
    assert [t["params"] for t in state["trials"]] == drawn  # same draws as a fresh seeded sweep
    assert float(calls[2]["x"]) == drawn[2]["x"]
    # another seed would draw other trials: refused, not mixed
    assert runner.main([str(path), "--out", str(out), "--count", "3", "--seed", "8"]) == 2


def test_changed_yaml_is_not_resumed(fake, tmp_path):
    out = tmp_path / "out"
    assert runner.main([str(fake({"x": {"values": [1]}}, name="s")), "--out", str(out)]) == 0
    assert runner.main([str(fake({"x": {"values": [1, 2]}}, name="s")), "--out", str(out)]) == 2


def test_failed_trials_are_recorded_and_retried_on_request(fake, tmp_path, capsys):
    path = fake({"x": {"values": [13, 2]}})
    out = tmp_path / "out"
    assert runner.main([str(path), "--out", str(out)]) == 1
    board = _leaderboard(out)
    assert [(r["x"], r["status"], r["rank"]) for r in board] == [("2", "ok", "1"), ("13", "failed", "")]
    assert "failed (exit 3" in capsys.readouterr().out
    assert runner.main([str(path), "--out", str(out)]) == 1
    assert len(fake.calls()) == 2  # not retried
    assert runner.main([str(path), "--out", str(out), "--retry-failed"]) == 1
    assert len(fake.calls()) == 3


def test_a_trial_without_result_fails_cleanly(fake, tmp_path):
    path = fake({"x": {"values": [1]}, "mode": {"value": "silent"}})
    out = tmp_path / "out"
    assert runner.main([str(path), "--out", str(out)]) == 1
    state = json.loads((out / "state.json").read_text())
    assert state["trials"][0]["status"] == "no-metric"


def test_bayes_falls_back_to_random_with_a_warning(fake, tmp_path, capsys):
    path = fake({"x": {"distribution": "uniform", "min": 0.0, "max": 6.0}}, method="bayes")
    assert runner.main([str(path), "--out", str(tmp_path / "o"), "--count", "2", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "bayes search runs on the W&B server only" in captured.err
    assert captured.out.count("trial ") == 2


def test_bayes_leaderboard_says_the_trials_were_random_draws(fake, tmp_path):
    path = fake({"x": {"distribution": "uniform", "min": 0.0, "max": 6.0}}, method="bayes")
    out = tmp_path / "o"
    assert runner.main([str(path), "--out", str(out), "--count", "1"]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "random draws (the YAML asks for bayes, which needs W&B's server) over `x`" in md


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_sweep_resumes_with_the_interrupted_trial(fake, tmp_path, how):
    """Interrupt the runner during trial 2 (Ctrl-C to the process group, or SIGTERM to the runner alone):
    trial 1 stays done, trial 2 is stopped and not recorded; the rerun does trial 2 and 3 only."""
    path = fake({"x": {"values": [1, 2, 4]}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mtl_aug", "sweep", str(path), "--out", str(out)]
    env = {**os.environ, "SLOW_X": "2"}  # trial 2 sleeps 30 s
    proc = _start_runner(cmd, env)
    deadline = time.time() + 60
    while time.time() < deadline and len(fake.calls()) < 2:
        time.sleep(0.2)
    assert len(fake.calls()) == 2, "trial 2 did not start"
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the runner and its trial
    else:
        proc.terminate()  # the runner only: it stops its trial itself
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, output
    _assert_group_gone(proc.pid)
    state = json.loads((out / "state.json").read_text())
    assert [t["trial"] for t in state["trials"]] == [1]
    rerun = subprocess.run(cmd, cwd=REPO, env={k: v for k, v in env.items() if k != "SLOW_X"},
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert [c["x"] for c in fake.calls()] == ["1", "2", "2", "4"]
    assert [r["x"] for r in _leaderboard(out)] == ["2", "4", "1"]


def test_parallel_trials_overlap_and_rank_like_sequential(fake, tmp_path, monkeypatch, capsys):
    """--jobs 2: two trials at a time, each with half the thread budget; same records and leaderboard."""
    path = fake({"x": {"values": [1, 3, 4, 6]}})
    monkeypatch.setenv("SLEEP_S", "1.5")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(4)  # the thread budget the share is taken from (torch's, as for cv's workers)
    out = tmp_path / "out"
    t0 = time.time()
    try:
        assert runner.main([str(path), "--out", str(out), "--jobs", "2"]) == 0
    finally:
        torch.set_num_threads(before)
    assert time.time() - t0 < 4 * 1.5 + 4  # not one after another (that takes > 6 s of sleeping alone)
    assert [r["x"] for r in _leaderboard(out)] == ["3", "4", "1", "6"]
    state = json.loads((out / "state.json").read_text())
    assert [t["params"]["x"] for t in state["trials"]] == [1, 3, 4, 6]
    spans = sorted((t["extra"]["t_start"], t["extra"]["t_end"]) for t in state["trials"])
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), f"no two trials overlapped: {spans}"
    threads = {json.loads((out / "trials" / f"{i:03d}" / "result.json").read_text())["env"]["OMP_NUM_THREADS"]
               for i in range(1, 5)}
    assert threads == {"2"}
    printed = capsys.readouterr().out
    assert "4 trial(s) to run, 2 at a time, 2 thread(s) each" in printed
    assert "[2/4] x=3 started" in printed and "[2/4] x=3 -> score=0.0000" in printed
    # resume with --jobs: nothing left to run
    assert runner.main([str(path), "--out", str(out), "--jobs", "2"]) == 0
    assert len(fake.calls()) == 4
    assert runner.main([str(path), "--out", str(out), "--jobs", "0"]) == 2


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_parallel_sweep_keeps_finished_trials_only(fake, tmp_path, how):
    """Ctrl-C or SIGTERM with --jobs 2 while trial 2 sleeps and trials 1 and 3 are done: 1 and 3 are recorded, trial 2
    is stopped (nothing left running) and not recorded as failed; the rerun runs trial 2 only."""
    path = fake({"x": {"values": [1, 2, 4]}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mtl_aug", "sweep", str(path), "--out", str(out), "--jobs", "2"]
    proc = _start_runner(cmd, {**os.environ, "SLOW_X": "2"})
    deadline = time.time() + 60
    state_path = out / "state.json"
    while time.time() < deadline and not (
            state_path.exists() and len(json.loads(state_path.read_text())["trials"]) == 2):
        time.sleep(0.2)
    assert len(fake.calls()) == 3, "trials 1 and 3 did not finish while trial 2 ran"
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.terminate()
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, output
    assert "interrupted during trial(s) 2" in output
    _assert_group_gone(proc.pid)
    assert [t["trial"] for t in json.loads(state_path.read_text())["trials"]] == [1, 3]
    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    xs = [c["x"] for c in fake.calls()]
    assert sorted(xs[:2]) == ["1", "2"] and xs[2:] == ["4", "2"]  # trials 1 and 2 start together
    assert [r["x"] for r in _leaderboard(out)] == ["2", "4", "1"]


def test_online_creates_the_sweep_with_wandb_and_prints_the_agent_command(fake, tmp_path, monkeypatch, capsys):
    path = fake({"x": {"values": [1]}})
    wandb_exe = tmp_path / "wandb"
    wandb_exe.write_text("#!/bin/sh\necho \"wandb: Creating sweep with ID: abc123\"\n"
                         "echo \"wandb: Run sweep agent with: wandb agent me/mtl-aug/abc123\"\necho \"$@\" > "
                         f"{tmp_path}/wandb_args\n")
    wandb_exe.chmod(0o755)
    monkeypatch.setattr(runner, "check", lambda sweep: [{}])  # the fake program is not a LightningCLI one
    monkeypatch.setattr(runner.shutil, "which", lambda *a, **k: str(wandb_exe))
    assert runner.main([str(path), "--online", "--count", "5"]) == 0
    assert (tmp_path / "wandb_args").read_text().split() == ["sweep", str(path)]
    assert "wandb agent --count 5 me/mtl-aug/abc123" in capsys.readouterr().out


def test_metric_read_from_the_offline_wandb_run_when_no_result_file(tmp_path, monkeypatch):
    """A program that only logs to W&B (e.g. `val/uar` through a WandbLogger): the runner reads the last
    value logged under the metric's name from the trial's offline run, as W&B's run summary would."""
    prog = tmp_path / "wb.py"
    prog.write_text(textwrap.dedent('''
        import sys, wandb
        x = float(sys.argv[1].split("=", 1)[1])
        run = wandb.init(project="t")
        for epoch in range(3):
            wandb.log({"val/uar": x / (3 - epoch)})
        wandb.finish()
    '''))
    cfg = {"name": "wb", "program": str(prog), "method": "grid", "metric": {"name": "val/uar", "goal": "maximize"},
           "command": ["${env}", "${interpreter}", "${program}", "${args}"], "parameters": {"x": {"values": [0.3, 0.6]}}}
    path = tmp_path / "wb.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    assert runner.main([str(path), "--out", str(out)]) == 0
    board = _leaderboard(out)
    assert [(r["x"], float(r["val/uar"])) for r in board] == [("0.6", 0.6), ("0.3", 0.3)]
    assert all(r["wandb_run"] for r in board)


def test_plot_points_keep_numeric_parameters_that_vary():
    """The leaderboard figure plots numbers that vary over finished trials: constants, strings and failed
    trials stay out (a failed trial has no metric to place)."""
    rows = [
        {"status": "ok", "metric": 0.9, "params": {"x": 1, "w": 0.5, "tag": "a", "k": 2}},
        {"status": "ok", "metric": 0.7, "params": {"x": 3, "w": 0.05, "tag": "b", "k": 2}},
        {"status": "failed", "metric": None, "params": {"x": 9, "w": 5.0, "tag": "c", "k": 2}},
    ]
    assert leaderboard.plot_points(rows) == {"w": [(0.5, 0.9), (0.05, 0.7)], "x": [(1.0, 0.9), (3.0, 0.7)]}
    assert leaderboard.plot_points(rows[2:]) == {}
