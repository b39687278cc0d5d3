"""Sweep parameters: W&B's distributions restated (keys, defaults, inference, checks), their draws, grid
values and corners. See :mod:`mtl_aug.sweep.config` for the rules and the sweep file itself."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # W&B's propertyNames pattern


class SweepConfigError(ValueError):
    """A sweep YAML that W&B would reject or that cannot run here; ``violations`` lists every problem."""

    def __init__(self, path: str | Path | None, violations: list[str]) -> None:
        self.violations = violations
        where = f"{path}: " if path else ""
        super().__init__(where + "invalid sweep config:\n" + "\n".join(f"  - {v}" for v in violations))


# distribution -> (required keys, optional keys with defaults), as in W&B's schema
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")
BOUNDED = ("int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values", "q_log_uniform",
           "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values")


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass
class Parameter:
    """One sweep parameter with its distribution's keys filled in (defaults as in W&B's schema)."""

    name: str
    distribution: str
    spec: dict[str, Any]

    @classmethod
    def from_config(cls, name: str, config: Any) -> "Parameter":
        problems = []
        if not PARAM_NAME.match(str(name)):
            problems.append(f"parameter '{name}': W&B parameter names match {PARAM_NAME.pattern}")
        if not isinstance(config, dict):
            raise SweepConfigError(None, problems + [f"parameter '{name}': expected a mapping, got {config!r}"])
        if "parameters" in config:
            raise SweepConfigError(None, problems + [
                f"parameter '{name}': nested parameters are not supported here: name the flag in full "
                f"(e.g. `model.w_recon`), it reaches LightningCLI as `--model.w_recon=value`"])
        dist = config.get("distribution") or _infer_distribution(config)
        if dist is None:
            raise SweepConfigError(None, problems + [
                f"parameter '{name}': give `value`, `values`, `min`/`max` or a `distribution` ({config})"])
        if dist not in DISTRIBUTIONS:
            raise SweepConfigError(None, problems + [
                f"parameter '{name}': unknown distribution '{dist}' (W&B has {', '.join(DISTRIBUTIONS)})"])
        required, defaults = DISTRIBUTIONS[dist]
        allowed = set(required) | set(defaults) | {"distribution"}
        missing = [k for k in required if k not in config]
        extra = sorted(set(config) - allowed)
        if missing:
            problems.append(f"parameter '{name}' ({dist}): missing {', '.join(missing)}")
        if extra:
            problems.append(f"parameter '{name}' ({dist}): unexpected key(s) {', '.join(extra)}")
        spec = {**defaults, **{k: v for k, v in config.items() if k != "distribution"}}
        nulls = ([spec["value"]] if "value" in spec else []) + list(spec.get("values") or [])
        if any(v is None for v in nulls):
            problems.append(f"parameter '{name}': a null value renders as `--{name}=None`, which LightningCLI "
                            f"rejects; write the string \"null\" instead")
        if not missing:
            problems += _check_values(name, dist, spec)
        if problems:
            raise SweepConfigError(None, problems)
        return cls(str(name), dist, spec)

    # -- drawing -----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Any:
        d, s = self.distribution, self.spec
        if d == "constant":
            return s["value"]
        if d == "categorical":
            return s["values"][rng.randrange(len(s["values"]))]
        if d == "categorical_w_probabilities":
            return rng.choices(s["values"], weights=s["probabilities"])[0]
        if d == "int_uniform":
            return rng.randint(s["min"], s["max"])
        if d == "uniform":
            return rng.uniform(s["min"], s["max"])
        if d == "q_uniform":
            return _quantize(rng.uniform(s["min"], s["max"]), s["q"])
        if d == "log_uniform":
            return math.exp(rng.uniform(s["min"], s["max"]))
        if d == "log_uniform_values":
            return math.exp(rng.uniform(math.log(s["min"]), math.log(s["max"])))
        if d == "q_log_uniform":
            return _quantize(math.exp(rng.uniform(s["min"], s["max"])), s["q"])
        if d == "q_log_uniform_values":
            return _quantize(math.exp(rng.uniform(math.log(s["min"]), math.log(s["max"]))), s["q"])
        if d == "inv_log_uniform":
            return math.exp(-rng.uniform(s["min"], s["max"]))
        if d == "inv_log_uniform_values":
            return 1.0 / math.exp(rng.uniform(math.log(1 / s["max"]), math.log(1 / s["min"])))
        if d == "normal":
            return rng.gauss(s["mu"], s["sigma"])
        if d == "q_normal":
            return _quantize(rng.gauss(s["mu"], s["sigma"]), s["q"])
        if d == "log_normal":
            return rng.lognormvariate(s["mu"], s["sigma"])
        if d == "q_log_normal":
            return _quantize(rng.lognormvariate(s["mu"], s["sigma"]), s["q"])
        if d == "beta":
            return rng.betavariate(s["a"], s["b"])
        if d == "q_beta":
            return _quantize(rng.betavariate(s["a"], s["b"]), s["q"])
        raise AssertionError(d)

    def grid_values(self) -> list[Any]:
        d, s = self.distribution, self.spec
        if d == "constant":
            return [s["value"]]
        if d == "categorical":
            return list(s["values"])
        if d == "int_uniform":
            return list(range(s["min"], s["max"] + 1))
        if d == "q_uniform":  # numpy.arange(min, max, q) as W&B does: max itself is left out
            n = math.ceil((s["max"] - s["min"]) / s["q"] - 1e-12)
            return [_clean(s["min"] + k * s["q"], s["q"], s["min"]) for k in range(n)]
        raise SweepConfigError(None, [
            f"parameter '{self.name}': grid search takes only constant, categorical (values), int_uniform or "
            f"q_uniform parameters, not {d}"])

    def corners(self) -> list[Any]:
        """Values that exercise the parameter's range: every categorical value, or the bounds."""
        d, s = self.distribution, self.spec
        if d in ("constant", "categorical", "categorical_w_probabilities"):
            return self.grid_values() if d != "categorical_w_probabilities" else list(s["values"])
        if d in ("int_uniform", "uniform"):
            return [s["min"], s["max"]]
        if d == "q_uniform":
            return [_quantize(s["min"], s["q"]), _quantize(s["max"], s["q"])]
        if d == "log_uniform":
            return [math.exp(s["min"]), math.exp(s["max"])]
        if d in ("log_uniform_values", "inv_log_uniform_values"):
            return [s["min"], s["max"]]
        if d in ("q_log_uniform_values",):
            return [_quantize(s["min"], s["q"]), _quantize(s["max"], s["q"])]
        if d == "q_log_uniform":
            return [_quantize(math.exp(s["min"]), s["q"]), _quantize(math.exp(s["max"]), s["q"])]
        if d == "inv_log_uniform":
            return [math.exp(-s["max"]), math.exp(-s["min"])]
        return [self.sample(random.Random(k)) for k in range(2)]  # unbounded: two draws

    def in_range(self, value: Any) -> bool:
        """Whether ``value`` can come out of this distribution (used by the tests and the resume check)."""
        d, s = self.distribution, self.spec
        if d == "constant":
            return value == s["value"]
        if d in ("categorical", "categorical_w_probabilities"):
            return value in s["values"]
        if d == "int_uniform":
            return _is_int(value) and s["min"] <= value <= s["max"]
        if d in BOUNDED:
            if d in ("log_uniform", "q_log_uniform"):
                lo, hi = math.exp(s["min"]), math.exp(s["max"])
            elif d == "inv_log_uniform":
                lo, hi = math.exp(-s["max"]), math.exp(-s["min"])
            else:
                lo, hi = s["min"], s["max"]
            slack = s.get("q", 0) / 2 + 1e-9 * max(1.0, abs(hi))
            return lo - slack <= value <= hi + slack
        if d in ("beta", "q_beta"):
            return -1e-12 <= value <= 1 + s.get("q", 0)
        if d in ("log_normal", "q_log_normal"):
            return value >= 0
        return is_number(value)


def _infer_distribution(config: dict) -> str | None:
    """W&B's rule when ``distribution`` is left out (the first schema that matches)."""
    if "value" in config:
        return "constant"
    if "values" in config:
        return "categorical_w_probabilities" if "probabilities" in config else "categorical"
    if "min" in config and "max" in config:
        return "int_uniform" if _is_int(config["min"]) and _is_int(config["max"]) else "uniform"
    return None


def _check_values(name: str, dist: str, s: dict) -> list[str]:
    p = f"parameter '{name}' ({dist})"
    out = []
    if "values" in s and (not isinstance(s["values"], list) or not s["values"]):
        out.append(f"{p}: `values` must be a non-empty list")
    if dist == "categorical_w_probabilities" and not out:
        probs = s["probabilities"]
        if not isinstance(probs, list) or len(probs) != len(s["values"]) or not all(
                is_number(x) and x >= 0 for x in probs):
            out.append(f"{p}: `probabilities` must be one non-negative number per value")
        elif abs(sum(probs) - 1.0) > 1e-6:
            out.append(f"{p}: `probabilities` must sum to 1 (they sum to {sum(probs)})")
    if "min" in s and "max" in s:
        lo, hi = s["min"], s["max"]
        if dist == "int_uniform" and not (_is_int(lo) and _is_int(hi)):
            out.append(f"{p}: min and max must be integers")
        elif not (is_number(lo) and is_number(hi)):
            out.append(f"{p}: min and max must be numbers")
        elif lo >= hi:
            out.append(f"{p}: min {lo} is not less than max {hi}")
        elif dist.endswith("_values") and lo <= 0:
            out.append(f"{p}: min must be > 0 (the values are taken in log space)")
    for key in ("q", "sigma", "a", "b"):
        if key in s and (not is_number(s[key]) or s[key] < 0 or (key == "q" and s[key] == 0)):
            out.append(f"{p}: `{key}` must be a {'positive' if key == 'q' else 'non-negative'} number")
    return out


def _quantize(x: float, q: float) -> float | int:
    r = round(x / q) * q
    return int(r) if _is_int(q) else _clean(r, q, 0.0)


def _clean(x: float, q: float, start: float) -> float | int:
    """Round away float noise (0.30000000000000004 -> 0.3) at the precision of ``q`` and ``start``."""
    if _is_int(q) and _is_int(start):
        return int(round(x))
    digits = max(_decimals(q), _decimals(start)) + 2
    return round(float(x), digits)


def _decimals(x: float) -> int:
    text = repr(float(x))
    if "e" in text:
        return max(0, -int(text.split("e")[1])) + 2
    return len(text.split(".")[1]) if "." in text else 0


