"""Search specs: a TOML file naming an objective, a search space, seeds and a sampler, validated on load.

    name = "where-dropout-helps"
    objective = "dropout_benefit"    # dropout_test_mse | dropout_benefit | dropout_test_mse+step_time
    seeds = 8                        # seeds per evaluated configuration (a count or a list)
    n_trials = 200                   # and/or timeout = 3600 (seconds of this invocation)
    sampler = "tpe"                  # tpe (default) | gp | cmaes | random
    sampler_seed = 0
    pruner = "wilcoxon"              # wilcoxon | none, or { name = "wilcoxon", p_threshold = 0.1 }
    [confirm]                        # re-evaluate the best configurations on fresh seeds
    top = 3
    seeds = 16
    [base]                           # fixed TrialConfig fields (not seed, not device)
    steps = 500
    [space]                          # TrialConfig fields searched: int or float from the field's type
    dropout = { low = 0.0, high = 0.9 }
    width = { low = 16, high = 1024, log = true }
    [execution]
    workers = 2
    device = "cpu"

Every problem is one line naming the file, the key and what is wrong.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from analysis.records.objectives import OBJECTIVES
from bench import ConfigError, TrialConfig
from bench.config import field_types

from ..spec import SpecError, check_base, check_varied, name_and_description, parse_seeds, parse_toml, read_toml

SAMPLERS = ("tpe", "gp", "cmaes", "random")
PRUNERS = ("wilcoxon", "none")
TOP_KEYS = ("name", "description", "objective", "seeds", "n_trials", "timeout", "sampler",
            "sampler_seed", "pruner", "confirm", "base", "space", "execution")
SPACE_KEYS = ("low", "high", "log")
CONFIRM_KEYS = ("top", "seeds")
PRUNER_KEYS = ("name", "p_threshold", "n_startup_seeds")
EXECUTION_KEYS = ("workers", "device")


@dataclass(frozen=True)
class Param:
    """One searched TrialConfig field: ``low`` and ``high`` inclusive; int or float from the field."""
    name: str
    kind: str             # "int" or "float"
    low: float
    high: float
    log: bool = False

    def clip(self, value: Any) -> Any:
        v = min(max(value, self.low), self.high)
        return int(v) if self.kind == "int" else float(v)

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class SearchSpec:
    name: str
    objective: str
    seeds: tuple[int, ...]
    space: tuple[Param, ...]
    base: dict[str, Any] = field(default_factory=dict)
    n_trials: int | None = None
    timeout: float | None = None        # seconds of one invocation's search stage
    sampler: str = "tpe"
    sampler_seed: int = 0
    pruner: str = "none"
    p_threshold: float = 0.1
    n_startup_seeds: int = 4            # seeds in the first batch; Wilcoxon cannot reach p < 0.1 on fewer
    confirm_top: int = 3
    confirm_seeds: tuple[int, ...] = ()
    execution: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "<spec>"

    @property
    def directions(self) -> tuple[str, ...]:
        return OBJECTIVES[self.objective].directions

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.space]

    def config(self, params: Mapping[str, Any], seed: int = 0, device: str = "cpu") -> TrialConfig:
        return TrialConfig(**self.base, **params, seed=seed, device=device)

    def seed_experiment_params(self) -> dict[str, Any]:
        """The seed experiment's own configuration (TrialConfig defaults), clipped to the space."""
        defaults = TrialConfig()
        return {p.name: p.clip(getattr(defaults, p.name)) for p in self.space}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "objective": self.objective,
                "seeds": list(self.seeds), "space": {p.name: p.to_dict() for p in self.space},
                "base": self.base, "grid": {}, "n_trials": self.n_trials, "timeout": self.timeout,
                "sampler": self.sampler, "sampler_seed": self.sampler_seed, "pruner": self.pruner,
                "p_threshold": self.p_threshold, "n_startup_seeds": self.n_startup_seeds,
                "confirm": {"top": self.confirm_top, "seeds": list(self.confirm_seeds)},
                "execution": self.execution}

    def shared_settings(self) -> str:
        """What must not change between a search and its resumption: it defines the study's objective."""
        base = TrialConfig(**self.base).to_dict()
        for name in (*self.param_names, "seed", "device"):
            base.pop(name, None)   # fields at their defaults are not in the dict at all
        return json.dumps({"objective": self.objective, "seeds": list(self.seeds), "base": base,
                           "space": {p.name: p.to_dict() for p in self.space}}, sort_keys=True)


def load_search_spec(path: str | Path) -> SearchSpec:
    return search_spec_from_dict(read_toml(path), source=str(path))


def parse_search_spec(text: str, source: str = "<spec>") -> SearchSpec:
    return search_spec_from_dict(parse_toml(text, source), source=source)


def search_spec_from_dict(data: Mapping[str, Any], source: str = "<spec>") -> SearchSpec:
    def fail(key: str, problem: str) -> SpecError:
        return SpecError(f"{source}: {key}: {problem}")

    _known_keys(data, TOP_KEYS, "", fail)
    name, description = name_and_description(data, fail, "the output folder and the study")
    objective = data.get("objective")
    if objective not in OBJECTIVES:
        raise fail("objective", f"{objective!r} is not an objective; choose one of {', '.join(OBJECTIVES)}")
    seeds, crossed = parse_seeds(data.get("seeds"), fail)
    if crossed:
        raise fail("seeds", "a search takes a count or a list of seeds; crossed designs are for sweeps")
    n_trials, timeout = _budget(data, fail)
    sampler = data.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise fail("sampler", f"{sampler!r} is not a sampler; choose one of {', '.join(SAMPLERS)}")
    sampler_seed = data.get("sampler_seed", 0)
    if isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int) or sampler_seed < 0:
        raise fail("sampler_seed", f"{sampler_seed!r} must be a non-negative integer")
    multi = len(OBJECTIVES[objective].directions) > 1
    if multi and sampler == "cmaes":
        raise fail("sampler", "cmaes optimises one objective; use tpe, gp or random for two objectives")
    pruner, p_threshold, n_startup = _pruner(data.get("pruner", "none"), len(seeds), fail)
    if multi and pruner != "none":
        raise fail("pruner", "pruning needs one objective; use pruner = \"none\" with two objectives")

    base = _table(data, "base", fail)
    check_base(base, fail)
    space = tuple(_param(axis, value, base, fail) for axis, value in _table(data, "space", fail).items())
    if not space:
        raise fail("space", "empty; give at least one parameter, e.g. dropout = { low = 0.0, high = 0.9 }")
    confirm_top, confirm_seeds = _confirm(_table(data, "confirm", fail), seeds, fail)
    execution = _table(data, "execution", fail)
    _known_keys(execution, EXECUTION_KEYS, "execution.", fail)
    if "workers" in execution:
        w = execution["workers"]
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise fail("execution.workers", f"{w!r} must be an integer >= 1")
    if "device" in execution:
        try:
            TrialConfig(device=execution["device"])
        except ConfigError as exc:
            raise fail("execution.device", str(exc)) from None
    return SearchSpec(name=name, objective=objective, seeds=seeds, space=space, base=dict(base),
                      n_trials=n_trials, timeout=timeout, sampler=sampler, sampler_seed=sampler_seed,
                      pruner=pruner, p_threshold=p_threshold, n_startup_seeds=n_startup,
                      confirm_top=confirm_top, confirm_seeds=confirm_seeds, execution=dict(execution),
                      description=description, source=source)


def _known_keys(data: Mapping[str, Any], valid: tuple[str, ...], prefix: str, fail) -> None:
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise fail(f"{prefix}{unknown[0]}", f"unknown key; valid keys: {', '.join(valid)}")


def _table(data: Mapping[str, Any], key: str, fail) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise fail(key, f"must be a table ([{key}]), got {type(value).__name__}")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _budget(data: Mapping[str, Any], fail) -> tuple[int | None, float | None]:
    n_trials, timeout = data.get("n_trials"), data.get("timeout")
    if n_trials is None and timeout is None:
        raise fail("n_trials", "required: a number of trials (n_trials) or seconds (timeout), or both")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise fail("n_trials", f"{n_trials!r} must be an integer >= 1")
    if timeout is not None and (not _number(timeout) or timeout <= 0):
        raise fail("timeout", f"{timeout!r} must be a number of seconds > 0")
    return n_trials, None if timeout is None else float(timeout)


def _pruner(value: Any, n_seeds: int, fail) -> tuple[str, float, int]:
    table = value if isinstance(value, dict) else {"name": value}
    _known_keys(table, PRUNER_KEYS, "pruner.", fail)
    name = table.get("name")
    if name not in PRUNERS:
        raise fail("pruner", f"{name!r} is not a pruner; choose one of {', '.join(PRUNERS)}")
    p = table.get("p_threshold", 0.1)
    if not _number(p) or not 0 < p < 1:
        raise fail("pruner.p_threshold", f"{p!r} must be a number in (0, 1)")
    startup = table.get("n_startup_seeds", 4)
    if isinstance(startup, bool) or not isinstance(startup, int) or startup < 2:
        raise fail("pruner.n_startup_seeds", f"{startup!r} must be an integer >= 2")
    if name == "wilcoxon" and n_seeds < 3:
        raise fail("pruner", f"wilcoxon needs at least 3 seeds per configuration; seeds gives {n_seeds}")
    return name, float(p), min(startup, n_seeds)


def _param(axis: str, value: Any, base: Mapping[str, Any], fail) -> Param:
    key = f"space.{axis}"
    check_varied(key, axis, base, fail, "searched")
    kind = field_types()[axis]
    if kind not in ("int", "float"):
        raise fail(key, f"a {kind} field cannot be searched; only int and float fields can")
    if not isinstance(value, dict):
        raise fail(key, f"must be a table {{ low = ..., high = ... }}, got {type(value).__name__}")
    _known_keys(value, SPACE_KEYS, f"{key}.", fail)
    for end in ("low", "high"):
        v = value.get(end)
        if v is None:
            raise fail(f"{key}.{end}", "required")
        if kind == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            raise fail(f"{key}.{end}", f"{v!r}: {axis} is an integer field; give an integer")
        if not _number(v):
            raise fail(f"{key}.{end}", f"{v!r} must be a finite number")
    low, high, log = value["low"], value["high"], value.get("log", False)
    if not isinstance(log, bool):
        raise fail(f"{key}.log", f"{log!r} must be true or false")
    if low > high:
        raise fail(key, f"low > high ({low!r} > {high!r})")
    if low == high:
        raise fail(key, f"empty range (low = high = {low!r}); fix the field in [base] instead")
    if log and low <= 0:
        raise fail(key, f"log scale needs low > 0, got low = {low!r}")
    for end, v in (("low", low), ("high", high)):
        try:
            TrialConfig(**base, **{axis: v})
        except ConfigError as exc:
            raise fail(f"{key}.{end}", str(exc)) from None
    return Param(axis, kind, low if kind == "int" else float(low), high if kind == "int" else float(high), log)


def _confirm(table: Mapping[str, Any], seeds: tuple[int, ...], fail) -> tuple[int, tuple[int, ...]]:
    _known_keys(table, CONFIRM_KEYS, "confirm.", fail)
    top = table.get("top", 3)
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise fail("confirm.top", f"{top!r} must be an integer >= 0 (0: no confirmation stage)")
    value = table.get("seeds", max(2 * len(seeds), 8))
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 2:
            raise fail("confirm.seeds", f"count must be >= 2 to give an interval, got {value}")
        start = max(seeds) + 1             # fresh: never used by the search
        return top, tuple(range(start, start + value))
    fresh, crossed = parse_seeds(value, lambda k, p: fail(f"confirm.{k}", p))
    if crossed:
        raise fail("confirm.seeds", "a count or a list of seeds")
    reused = sorted(set(fresh) & set(seeds))
    if reused:
        raise fail("confirm.seeds", f"seed {reused[0]} is also a search seed; confirmation needs fresh seeds")
    if len(fresh) < 2:
        raise fail("confirm.seeds", "give at least 2 seeds to give an interval")
    return top, fresh
