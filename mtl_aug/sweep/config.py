"""W&B sweep YAML, read and checked offline: parameters, draws, grid, and the rendered command.

The file format is W&B's own (``wandb sweep FILE`` accepts the same file). W&B validates a sweep
against the JSON schema of its ``sweeps`` package, which is not installable next to pandas 3 (it pins
numpy < 2) and whose local controller still needs a server; so the rules of that schema that matter
here are restated below (distribution names, their keys and defaults, how a distribution is inferred
when ``distribution`` is left out, ``min < max``), and the draws follow the same definitions
(``int_uniform`` includes ``max``; ``q_*`` rounds to a multiple of ``q``, an int when ``q`` is an int;
``log_uniform`` takes ``min``/``max`` in log space, ``log_uniform_values`` as values; a grid turns
``int_uniform`` into ``min..max`` and ``q_uniform`` into ``arange(min, max, q)``, parameters in name
order, the last one varying fastest).

The command is rendered with wandb's own helpers (``wandb.sdk.launch.sweeps.utils``, the ones the
agent calls), so ``${args}`` becomes exactly the ``--name=value`` flags an agent passes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtl_aug.sweep.params import Parameter, SweepConfigError

METHODS = ("grid", "random", "bayes")
GOALS = ("maximize", "minimize")
DEFAULT_GOAL = "minimize"  # W&B's default: a UAR metric must say `goal: maximize`
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
ARGS_MACROS = ("${args}", "${args_no_equals}", "${args_no_hyphens}", "${args_no_boolean_flags}", "${args_json}",
               "${args_json_file}", "${args_append_hydra}", "${args_override_hydra}")
KNOWN_MACROS = ("${env}", "${interpreter}", "${program}") + ARGS_MACROS
TOP_LEVEL_KEYS = {"apiVersion", "kind", "program", "command", "method", "metric", "parameters", "name", "description",
                  "project", "entity", "early_terminate", "run_cap", "controller", "job", "image_uri", "scheduler"}
METRIC_KEYS = {"name", "goal", "target", "impute", "impute_while_running"}

@dataclass
class Sweep:
    """A parsed, checked W&B sweep YAML."""

    path: Path | None
    config: dict[str, Any]
    parameters: list[Parameter] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.config.get("name") or (self.path.stem if self.path else "sweep"))

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def metric(self) -> str:
        return self.config["metric"]["name"]

    @property
    def goal(self) -> str:
        return self.config["metric"].get("goal", DEFAULT_GOAL)

    @property
    def command(self) -> list[str]:
        return list(self.config.get("command") or DEFAULT_COMMAND)

    @property
    def program(self) -> str | None:
        return self.config.get("program")

    def fingerprint(self) -> str:
        """Hash of what decides the trials and their commands (not the name or description)."""
        keys = ("method", "metric", "parameters", "command", "program")
        blob = json.dumps({k: self.config.get(k) for k in keys}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # -- trials ------------------------------------------------------------------------------------
    def grid(self) -> list[dict[str, Any]]:
        """Every combination, parameters in name order, the last one varying fastest (W&B's order)."""
        params = sorted(self.parameters, key=lambda p: p.name)
        values = [p.grid_values() for p in params]
        return [dict(zip([p.name for p in params], combo)) for combo in itertools.product(*values)]

    def draw(self, index: int, seed: int) -> dict[str, Any]:
        """Trial ``index``'s random draw: depends only on (seed, index), so a resumed sweep gets the same
        trials whatever ``--count`` was, and trial 5 is trial 5 in every rerun."""
        rng = random.Random(f"mtl-aug-sweep/{seed}/{index}")
        return {p.name: p.sample(rng) for p in sorted(self.parameters, key=lambda p: p.name)}

    def trials(self, count: int | None, seed: int) -> list[dict[str, Any]]:
        if self.method == "grid":
            grid = self.grid()
            return grid if count is None else grid[:count]
        if count is None:
            raise ValueError(f"a {self.method} sweep has no end: give --count N")
        return [self.draw(i, seed) for i in range(count)]

    def corner_trials(self) -> list[dict[str, Any]]:
        """A few trials that together use every parameter's bounds (or every categorical value)."""
        corners = {p.name: p.corners() for p in self.parameters}
        n = max((len(v) for v in corners.values()), default=1)
        return [{name: vals[i % len(vals)] for name, vals in corners.items()} for i in range(n)]

    # -- command -----------------------------------------------------------------------------------
    def render(self, params: dict[str, Any], interpreter: str, json_file: str | Path | None = None) -> list[str]:
        """The argv a W&B agent would run for ``params``, with ``${interpreter}`` = ``interpreter``."""
        return render_command(self.command, params, program=self.program, interpreter=interpreter,
                              json_file=json_file)


def render_command(command: list[str], params: dict[str, Any], *, program: str | None, interpreter: str,
                   json_file: str | Path | None = None) -> list[str]:
    """Expand W&B's macros the way ``wandb agent`` does (its ``_command_run``), with wandb's own helpers."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils  # wandb's agent helpers; no server needed

    expanded = sweep_utils.create_sweep_command([str(c) for c in command])  # ${envvar:NAME}
    sweep_vars: dict[str, list[str]] = dict(sweep_utils.create_sweep_command_args(
        {"args": {k: {"value": v} for k, v in params.items()}}))
    sweep_vars["interpreter"] = [interpreter]
    sweep_vars["program"] = [program] if program else []
    sweep_vars["env"] = ["/usr/bin/env"] if os.name != "nt" else []
    if "${args_json_file}" in expanded:
        if json_file is None:
            raise ValueError("${args_json_file} needs a file to write the parameters to")
        Path(json_file).write_text(sweep_vars["args_json"][0])
        sweep_vars["args_json_file"] = [str(json_file)]
    out: list[str] = []
    for c in expanded:
        c = str(c)
        if c.startswith("${") and c.endswith("}"):
            out += list(sweep_vars.get(c[2:-1]) or [])
        else:
            out.append(c)
    return out


def check_config(config: Any) -> list[str]:
    """Problems of a sweep config (empty = fine): what W&B's schema rejects, and what cannot run here."""
    if not isinstance(config, dict):
        return [f"a sweep config is a mapping, got {type(config).__name__}"]
    out = []
    unknown = sorted(set(config) - TOP_LEVEL_KEYS)
    if unknown:
        out.append(f"unknown top-level key(s) {', '.join(unknown)} (W&B knows {', '.join(sorted(TOP_LEVEL_KEYS))})")
    if config.get("method") not in METHODS:
        out.append(f"method must be one of {', '.join(METHODS)}, got {config.get('method')!r}")
    metric = config.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or not metric.get("name"):
        out.append("metric: give `name` (the logged key to optimise) and `goal`")
    else:
        if set(metric) - METRIC_KEYS:
            out.append(f"metric: unexpected key(s) {', '.join(sorted(set(metric) - METRIC_KEYS))}")
        if metric.get("goal", DEFAULT_GOAL) not in GOALS:
            out.append(f"metric.goal must be maximize or minimize, got {metric.get('goal')!r}")
    command = config.get("command", DEFAULT_COMMAND)
    if not isinstance(command, list) or not command:
        out.append("command must be a non-empty list of tokens")
    else:
        for item in command:
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                out.append(f"command item {item!r} is not a string")
            elif re.search(r"\s", str(item)):
                out.append(f"command item {item!r} holds whitespace: W&B passes every item as ONE argument; "
                           f"split it into one item per token")
            elif str(item).startswith("${") and str(item).endswith("}") and str(item) not in KNOWN_MACROS:
                out.append(f"command item {item!r} is not a W&B macro ({', '.join(KNOWN_MACROS)})")
        if not any(str(c) in ARGS_MACROS for c in command):
            out.append("command has no ${args}: the parameters would never reach the program")
        if "${program}" in [str(c) for c in command] and not config.get("program"):
            out.append("command uses ${program} but there is no `program`")
    params = config.get("parameters")
    if not isinstance(params, dict) or not params:
        out.append("parameters: give at least one parameter")
    else:
        for name, spec in params.items():
            try:
                p = Parameter.from_config(name, spec)
                if config.get("method") == "grid":
                    p.grid_values()
            except SweepConfigError as e:
                out += e.violations
    return out


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SweepConfigError(path, [f"not valid YAML: {e}"]) from e
    return sweep_from_config(config, path)


def sweep_from_config(config: Any, path: str | Path | None = None) -> Sweep:
    problems = check_config(config)
    if problems:
        raise SweepConfigError(path, problems)
    params = [Parameter.from_config(n, s) for n, s in config["parameters"].items()]
    return Sweep(Path(path) if path else None, config, params)


def flags(params: dict[str, Any]) -> list[str]:
    """``--name=value`` flags exactly as ``${args}`` renders them."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    return list(sweep_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})["args"])
