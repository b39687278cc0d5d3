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

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

from mtl_aug.sweep import wandb_offline
from mtl_aug.sweep.config import Sweep, SweepConfigError, flags, is_number, load_sweep

RESULT_ENV = "MTL_AUG_SWEEP_RESULT"  # same names as mtl_aug.sweep.objective (not imported: it is a program)
TRIAL_DIR_ENV = "MTL_AUG_SWEEP_TRIAL_DIR"
STATE_VERSION = 1
OBJECTIVE_MODULE = "mtl_aug.sweep.objective"

# Trials running in worker threads (--jobs > 1): the main thread gets Ctrl-C / SIGTERM and stops them.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


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


def ranked(trials: list[dict], goal: str) -> list[dict]:
    """Finished trials best first (goal-aware), then failed ones in trial order."""
    ok = [t for t in trials if t["status"] == "ok"]
    bad = sorted((t for t in trials if t["status"] != "ok"), key=lambda t: t["trial"])
    ok.sort(key=lambda t: (-t["metric"] if goal == "maximize" else t["metric"], t["trial"]))
    return ok + bad


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e4:
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.4g}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def write_leaderboard(out: Path, sweep: Sweep, trials: list[dict]) -> tuple[Path, Path]:
    rows = ranked(trials, sweep.goal)
    names = sorted({k for t in trials for k in t["params"]})
    extra = sorted({k for t in trials for k in t.get("extra", {})})
    header = ["rank", "trial", sweep.metric, *names, *extra, "status", "time_s", "wandb_run"]
    csv_path, md_path = out / "leaderboard.csv", out / "leaderboard.md"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for rank, t in enumerate(rows, 1):
            w.writerow([rank if t["status"] == "ok" else "", t["trial"], "" if t["metric"] is None else t["metric"],
                        *[_cell(t["params"].get(k, "")) for k in names], *[t.get("extra", {}).get(k, "") for k in extra],
                        t["status"], t["time_s"], t.get("wandb_run") or ""])
    n_ok = sum(t["status"] == "ok" for t in trials)
    # offline, bayes is random draws (see _main); the leaderboard says what actually ran
    method_label = "random draws (the YAML asks for bayes, which needs W&B's server)" if sweep.method == "bayes" else sweep.method
    lines = [f"# Sweep `{sweep.name}`", "",
             f"{method_label} over {', '.join(f'`{n}`' for n in names)}; metric `{sweep.metric}` "
             f"({sweep.goal}); {n_ok} of {len(trials)} trials finished.", ""]
    if sweep.metric.startswith("val"):
        lines += ["Validation metric over the sweep's dev folds (no test speaker is evaluated): pick values "
                  "here, then report `make cv` with them over every fold."]
        seen = sorted({s for t in trials for spk in (t.get("val_speakers") or {}).values() for s in spk})
        if seen:
            lines += [f"The tuning saw the validation speakers {', '.join(seen)}: in `make cv`, the folds that "
                      f"test on them are not blind to this choice (the usual bias of tuning inside CV)."]
        lines += [""]
    md_header = ["rank", "trial", f"`{sweep.metric}`", *[f"`{k}`" for k in names], *[f"`{k}`" for k in extra],
                 "status", "time (s)"]
    lines += ["| " + " | ".join(md_header) + " |", "|" + "---|" * len(md_header)]
    for rank, t in enumerate(rows, 1):
        cells = [str(rank) if t["status"] == "ok" else "–", str(t["trial"]),
                 "–" if t["metric"] is None else f"{t['metric']:.4f}",
                 *[_fmt(t["params"].get(k, "")) for k in names], *[_fmt(t.get("extra", {}).get(k, "")) for k in extra],
                 t["status"], f"{t['time_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if rows and rows[0]["status"] == "ok":
        lines += ["", "Best flags: `" + " ".join(flags(rows[0]["params"])) + "`"]
        report = cv_command(sweep, rows[0]["params"])
        if report:
            lines += ["", f"Final numbers, every fold: `{report}`"]
    points = plot_points(rows)
    if points:
        from mtl_aug.evaluation.plots import sweep_png  # matplotlib costs ~0.4 s: not for --check / --dry-run

        png = sweep_png(points, out / "leaderboard.png", sweep.metric,
                        log_x=[p.name for p in sweep.parameters if "log" in p.distribution],
                        best=(rows[0]["params"], rows[0]["metric"]),
                        title=f"sweep {sweep.name}: {n_ok} finished trials, best ringed")
        lines += ["", f"Figure: `{png.name}` ({sweep.metric} against each parameter, one dot per finished trial)."]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def plot_points(rows: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """``name -> [(value, metric), ...]`` over the finished trials, for every parameter that is a number in
    all of them and takes more than one value (constants and categorical flags say nothing on a scatter)."""
    ok = [t for t in rows if t["status"] == "ok" and t["metric"] is not None]
    names = sorted({k for t in ok for k in t["params"]})
    points = {}
    for name in names:
        values = [t["params"].get(name) for t in ok]
        if all(is_number(v) for v in values) and len(set(values)) > 1:
            points[name] = [(float(v), float(t["metric"])) for v, t in zip(values, ok)]
    return points


def cv_command(sweep: Sweep, params: dict) -> str | None:
    """The cross-validation command that reports ``params`` (when the sweep's command names the corpus and
    system configs), into its own results folder so the untuned results stay."""
    cmd = [str(c) for c in sweep.command]
    found = {}
    for kind in ("corpora", "systems"):
        for c in cmd:
            m = re.search(rf"experiments/{kind}/([\w-]+)\.yaml$", c)
            if m:
                found[kind] = m.group(1)
    if len(found) < 2:
        return None
    corpus, system = found["corpora"], found["systems"]
    return (f"python -m mtl_aug cv --corpus {corpus} --system {system} "
            f"--out experiments/results/{corpus}/{system}_{sweep.name} -- " + " ".join(flags(params)))


# -- one trial -------------------------------------------------------------------------------------
def trial_env(sweep: Sweep, out: Path, trial_dir: Path, index: int, threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["WANDB_MODE"] = "offline"
    env["WANDB_RUN_GROUP"] = sweep.name
    env["WANDB_NAME"] = f"{sweep.name}-{index:03d}"
    env.setdefault("WANDB_PROJECT", str(sweep.config.get("project") or "mtl-aug"))
    env["WANDB_DIR"] = str(trial_dir.resolve())  # the trial's offline run: <trial>/wandb/offline-run-*
    env.setdefault("WANDB_SILENT", "true")
    env.pop("WANDB_SWEEP_ID", None)  # not an agent's run
    env[RESULT_ENV] = str((trial_dir / "result.json").resolve())
    env[TRIAL_DIR_ENV] = str(trial_dir.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_trial(sweep: Sweep, out: Path, index: int, params: dict, timeout: float | None = None, verbose: bool = False,
              threads: int | None = None) -> dict:
    trial_dir = out / "trials" / f"{index:03d}"
    if trial_dir.exists():  # an interrupted or retried trial: start clean (no stale result or offline run)
        shutil.rmtree(trial_dir)
    trial_dir.mkdir(parents=True)
    result_file = trial_dir / "result.json"
    cmd = sweep.render(params, interpreter=sys.executable, json_file=trial_dir / "args.json")
    env = trial_env(sweep, out, trial_dir, index, threads)
    record: dict[str, Any] = {"trial": index, "params": params, "metric": None, "status": "failed",
                              "returncode": None, "time_s": 0.0, "command": cmd,
                              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "log": str(trial_dir / "log.txt")}
    t0 = time.time()
    with (trial_dir / "log.txt").open("w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        with _running_lock:
            if _stopping.is_set():  # the sweep was interrupted while this trial was being set up
                raise KeyboardInterrupt
            proc = subprocess.Popen(cmd, env=env, stdout=None if verbose else log,
                                    stderr=None if verbose else subprocess.STDOUT)
            _running.add(proc)
        try:
            record["returncode"] = proc.wait(timeout=timeout)
            if _stopping.is_set():  # stopped by an interrupted sweep (--jobs > 1): not a result
                raise KeyboardInterrupt
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            record["status"] = "timeout"
        except BaseException:  # Ctrl-C / kill: stop the trial too, record nothing
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
    record["time_s"] = round(time.time() - t0, 1)
    runs = wandb_offline.offline_runs(trial_dir / "wandb")
    if runs:
        record["wandb_dir"] = str(runs[-1])
        record["wandb_run"] = runs[-1].name.rsplit("-", 1)[-1]
    if record["returncode"] == 0:
        result: dict = json.loads(result_file.read_text()) if result_file.exists() else {}
        value = result.get(sweep.metric)
        source = str(result_file)
        if value is None and runs:  # no result file: what the trial logged to W&B (last value, as W&B does)
            wandb_offline.wait_complete(runs[-1])
            value, source = wandb_offline.last_value(runs[-1], sweep.metric), str(runs[-1])
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            record.update(metric=float(value), status="ok", metric_source=source)
        else:
            record.update(status="no-metric", error=f"'{sweep.metric}' is missing or not finite in the result file "
                                                    f"(${RESULT_ENV}) and in the trial's offline W&B run")
        record["extra"] = {k: v for k, v in result.items()
                           if k not in (sweep.metric, "time_s") and isinstance(v, (int, float))
                           and not isinstance(v, bool)}
        record["extra"].update({f"fold_{k}": v for k, v in (result.get("folds") or {}).items()})
        record["val_speakers"] = result.get("val_speakers") or {}
    return record


def tail(path: str | Path, n: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# -- checks ----------------------------------------------------------------------------------------
def check_trial_flags(sweep: Sweep, params: dict) -> None:
    """Parse one trial's command with LightningCLI in this process (objective programs only)."""
    import yaml

    from mtl_aug.sweep import objective

    cmd = sweep.render(params, interpreter=sys.executable, json_file=os.devnull)
    if OBJECTIVE_MODULE not in cmd:
        raise ValueError(f"--check knows the `-m {OBJECTIVE_MODULE}` program only; this command is {cmd}")
    argv = cmd[cmd.index(OBJECTIVE_MODULE) + 1:]
    opts, common = objective.parse(argv)
    resolved = objective.check_cli_args(objective.fold_args(common, opts.folds[0], Path("runs/sweeps/_check")))
    objective.check_dev_folds(resolved, opts.folds)
    for name, want in params.items():
        if name == "config":  # a config file: its settings were parsed above, it is not itself a setting
            continue
        got = objective.lookup(resolved, name)
        if isinstance(want, str) and not isinstance(got, str):  # e.g. "null" -> None, "[1,2]" -> [1, 2]
            want = yaml.safe_load(want)
        if isinstance(got, float) or isinstance(want, float):
            same = isinstance(got, (int, float)) and math.isclose(float(got), float(want), rel_tol=1e-9)
        else:
            same = got == want
        if not same:
            raise ValueError(f"--{name}={want} reached LightningCLI as {got!r}")


def check(sweep: Sweep) -> list[dict]:
    """Every parameter at its bounds (or each of its values) parses and lands where it should."""
    corners = sweep.corner_trials()
    for params in corners:
        check_trial_flags(sweep, params)
    return corners


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
def stop_running_trials() -> None:
    """Terminate every trial still running (then kill after 20 s); no new trial starts afterwards."""
    with _running_lock:
        _stopping.set()
        procs = list(_running)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


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
