"""``python -m mtl_aug sweep SWEEP.yaml``: run a W&B sweep YAML offline, resumable, with a leaderboard.

    python -m mtl_aug sweep experiments/sweeps/smoke.yaml --count 2
    python -m mtl_aug sweep experiments/sweeps/loss_weights.yaml --count 20 --seed 0 --out runs/sweeps/lw
    python -m mtl_aug sweep experiments/sweeps/loss_weights.yaml --check      # YAML + every flag, no training
    python -m mtl_aug sweep experiments/sweeps/loss_weights.yaml --dry-run --count 3   # print the commands
    python -m mtl_aug sweep experiments/sweeps/loss_weights.yaml --online     # `wandb sweep` (needs a server)

Trials: ``grid`` = every combination in order (``--count`` caps); ``random`` = seeded draws from the
YAML's distributions (trial i depends only on ``--seed`` and i); ``bayes`` needs W&B's server-side
search, so offline it falls back to ``random`` (with a warning). Each trial runs the YAML's command,
rendered as a W&B agent renders it (``${interpreter}`` = this Python), as its own process, with
``WANDB_MODE=offline`` and ``WANDB_RUN_GROUP=<sweep name>``; its metric is read back from the JSON file
the program writes at ``$MTL_AUG_SWEEP_RESULT`` (``mtl_aug.sweep.objective`` does).

``<out>/state.json`` lists finished trials (params, metric, time); a rerun skips them and goes on with
the next ones, so an interrupted sweep resumes where it stopped, and a larger ``--count`` extends it.
``<out>/leaderboard.csv`` and ``leaderboard.md`` are rewritten after every trial, best first, with
``leaderboard.png`` (the metric against each numeric parameter).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

from mtl_aug.sweep.checks import check
from mtl_aug.sweep.config import Sweep, SweepConfigError, flags, load_sweep
from mtl_aug.sweep.leaderboard import _fmt, cv_command, ranked, write_leaderboard
from mtl_aug.sweep.trials import _stopping, run_trial, stop_running_trials, tail

STATE_VERSION = 1


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m mtl_aug sweep", description=__doc__.split("\n\n")[0],
                       default_env=False, exit_on_error=True)
    p.add_argument("sweep", type=str, help="W&B sweep YAML (e.g. experiments/sweeps/loss_weights.yaml)")
    p.add_argument("--count", type=int | None, default=None,
                   help="number of trials in the sweep, finished ones included (default: the YAML's run_cap; "
                        "grid: all combinations)")
    p.add_argument("--out", type=str | None, default=None, help="output dir (default: runs/sweeps/<sweep name>)")
    p.add_argument("--seed", type=int | None, default=None,
                   help="seed of the random draws (default: the one in <out>/state.json, else 0)")
    p.add_argument("--retry-failed", action="store_true", help="rerun trials that failed before")
    p.add_argument("--timeout", type=float | None, default=None, help="seconds before a trial is killed")
    p.add_argument("--threads", type=int | None, default=None,
                   help="OMP/MKL threads per trial (1 is much faster on a small shared CPU; default: torch's, "
                        "or an equal share of torch's thread budget with --jobs > 1, as cv's workers)")
    p.add_argument("--jobs", type=str, default="1",
                   help="run this many trials at once, each its own process ('auto': 1 on a GPU, else one per core, "
                        "at most 4); finished trials are recorded as they end, so an interrupted sweep resumes")
    p.add_argument("--verbose", action="store_true", help="show the trials' output (default: <trial>/log.txt)")
    p.add_argument("--check", action="store_true",
                   help="check the YAML and that LightningCLI accepts every parameter's range, then exit")
    p.add_argument("--dry-run", action="store_true", help="print the trials' commands, run nothing")
    p.add_argument("--online", action="store_true",
                   help="create the sweep on the W&B server with `wandb sweep` and print the agent command")
    return p


# -- state + leaderboard ---------------------------------------------------------------------------
def load_state(path: Path) -> dict | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())


def save_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def create_online(sweep_path: Path, sweep: Sweep, count: int | None) -> int:
    """``wandb sweep FILE`` (needs a W&B server and API key), then the agent command to run."""
    wandb_exe = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    if not wandb_exe:
        print("sweep: the `wandb` command is not installed", file=sys.stderr)
        return 2
    proc = subprocess.run([wandb_exe, "sweep", str(sweep_path)], capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    print(text.rstrip())
    m = re.search(r"wandb agent (\S+)", text)
    if proc.returncode != 0 or not m:
        print("sweep: `wandb sweep` failed (it needs a reachable W&B server and `wandb login`); "
              f"run it offline instead: python -m mtl_aug sweep {sweep_path} --count N", file=sys.stderr)
        return proc.returncode or 1
    venv_bin = Path(sys.executable).parent
    print(f"\nStart agents from the repository root, with this Python first on PATH (W&B runs `python`):\n"
          f"  PATH={venv_bin}:$PATH wandb agent {'--count ' + str(count) + ' ' if count else ''}{m.group(1)}")
    return 0


# -- main ------------------------------------------------------------------------------------------
def _terminate(signum, frame):  # SIGTERM (a killed job) stops the running trial too, like Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    _stopping.clear()
    sweep_path = Path(args.sweep)
    try:
        sweep = load_sweep(sweep_path)
    except (SweepConfigError, OSError) as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2
    if sweep.metric.startswith(("test/", "test_")):
        print(f"sweep: metric '{sweep.metric}' is a test-speaker metric: tuning on it leaks the test speakers; "
              f"use the validation UAR (val/uar or val_uar_mean)", file=sys.stderr)
        return 2

    if args.check or args.online:
        try:
            corners = check(sweep)
        except (ValueError, KeyError, SweepConfigError) as e:
            print(f"sweep: {sweep_path}: {e}", file=sys.stderr)
            return 1
        print(f"sweep {sweep.name}: YAML valid; LightningCLI accepts every parameter "
              f"({len(corners)} corner trial(s) parsed)")
        if args.check:
            return 0
        return create_online(sweep_path, sweep, args.count)

    out = Path(args.out) if args.out else Path("runs") / "sweeps" / sweep.name
    state_path = out / "state.json"
    state = load_state(state_path)
    seed = args.seed if args.seed is not None else (state or {}).get("seed", 0)
    if state is not None:
        problems = []
        if state.get("fingerprint") != sweep.fingerprint():
            problems.append("the sweep YAML's method/metric/parameters/command changed")
        if state.get("seed") != seed and sweep.method != "grid":
            problems.append(f"it was drawn with --seed {state.get('seed')}, not {seed}")
        if problems:
            print(f"sweep: cannot resume {state_path}: {'; '.join(problems)}. Use another --out "
                  f"(or delete {out}).", file=sys.stderr)
            return 2
    method = sweep.method
    if method == "bayes":
        print("sweep: warning: bayes search runs on the W&B server only; offline, the trials are random draws "
              "from the same distributions (run it online with `make sweep` for Bayesian search)", file=sys.stderr)
    count = args.count if args.count is not None else sweep.config.get("run_cap")
    try:
        plan = sweep.trials(count, seed)
    except (ValueError, SweepConfigError) as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2

    from mtl_aug.evaluation.runs import parse_jobs, worker_threads  # torch is imported only for --jobs auto or > 1

    try:
        jobs = parse_jobs(args.jobs)
    except (ValueError, SystemExit):
        print(f"sweep: --jobs needs 'auto' or a count >= 1, not {args.jobs!r}", file=sys.stderr)
        return 2
    if args.dry_run:
        for i, params in enumerate(plan, 1):
            print(f"trial {i}: " + " ".join(sweep.render(params, interpreter=sys.executable, json_file=os.devnull)))
        return 0

    state = state or {"version": STATE_VERSION, "sweep": sweep.name, "yaml": str(sweep_path),
                      "fingerprint": sweep.fingerprint(), "method": sweep.method, "seed": seed,
                      "metric": sweep.metric, "goal": sweep.goal, "trials": []}
    done = {t["trial"]: t for t in state["trials"]}
    kind = {"grid": "grid", "random": f"random, seed {seed}", "bayes": f"random draws for bayes, seed {seed}"}[method]
    print(f"sweep {sweep.name}: {len(plan)} trial(s) ({kind}), "
          f"metric {sweep.metric} ({sweep.goal}), out {out}")
    failures = 0
    pending: list[tuple[int, dict, str]] = []
    for i, params in enumerate(plan, 1):
        prev = done.get(i)
        label = " ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        if prev is not None:
            if prev["params"] != params:
                print(f"sweep: trial {i} in {state_path} has other params ({prev['params']}) than this plan "
                      f"({params}); use another --out", file=sys.stderr)
                return 2
            if prev["status"] == "ok" or not args.retry_failed:
                metric = "–" if prev["metric"] is None else f"{prev['metric']:.4f}"
                print(f"[{i}/{len(plan)}] {label} -> {sweep.metric}={metric} ({prev['status']}, done before: skipped)")
                failures += prev["status"] != "ok"
                continue
        pending.append((i, params, label))

    def finish(i: int, record: dict, prefix: str) -> bool:
        done[i] = record
        state["trials"] = [done[k] for k in sorted(done)]
        save_json(state_path, state)
        write_leaderboard(out, sweep, state["trials"])
        if record["status"] == "ok":
            print(f"{prefix} {sweep.metric}={record['metric']:.4f} ({record['time_s']:.1f} s)\n", end="", flush=True)
            return True
        print(f"{prefix} {record['status']} (exit {record['returncode']}, {record['time_s']:.1f} s); "
              f"log: {record['log']}\n{tail(record['log'])}\n", end="", flush=True)
        return False

    jobs = min(jobs, max(1, len(pending)))
    if jobs == 1:
        for i, params, label in pending:
            print(f"[{i}/{len(plan)}] {label} ...", end="", flush=True)
            try:
                record = run_trial(sweep, out, i, params, args.timeout, args.verbose, args.threads)
            except KeyboardInterrupt:
                print(f"\nsweep: interrupted during trial {i}; rerun the same command to resume from it")
                return 130
            failures += not finish(i, record, "")
    else:
        threads = args.threads or worker_threads(jobs)  # cv's share: the torch thread budget split evenly
        print(f"sweep: {len(pending)} trial(s) to run, {jobs} at a time, {threads} thread(s) each", flush=True)

        def job(i: int, params: dict, label: str) -> dict:
            print(f"[{i}/{len(plan)}] {label} started\n", end="", flush=True)  # one write: threads print too
            return run_trial(sweep, out, i, params, args.timeout, args.verbose, threads)

        pool = ThreadPoolExecutor(jobs, thread_name_prefix="trial")
        futures = {pool.submit(job, *p): p for p in pending}
        try:
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: futures[f][0]):
                    i, _, label = futures[fut]
                    failures += not finish(i, fut.result(), f"[{i}/{len(plan)}] {label} ->")
        except KeyboardInterrupt:
            running = sorted(futures[f][0] for f in futures if f.running())
            pool.shutdown(wait=False, cancel_futures=True)
            stop_running_trials()
            print(f"\nsweep: interrupted during trial(s) {', '.join(map(str, running)) or '–'}; "
                  f"rerun the same command to resume from them")
            return 130
        pool.shutdown()
    if not done:
        print("sweep: no trials")
        return 0
    csv_path, md_path = write_leaderboard(out, sweep, state["trials"])
    best = ranked(state["trials"], sweep.goal)[0]
    print(f"leaderboard: {md_path} and {csv_path}")
    if best["status"] == "ok":
        print(f"best: trial {best['trial']} {sweep.metric}={best['metric']:.4f}  " + " ".join(flags(best["params"])))
        if cv_command(sweep, best["params"]):
            print(f"report it over every fold: {cv_command(sweep, best['params'])}")
    if any(t.get("wandb_dir") for t in state["trials"]):
        print(f"W&B offline runs (group '{sweep.name}'): upload later with "
              f"`wandb sync {out}/trials/*/wandb/offline-run-*`")
    return 1 if failures else 0
