"""Sweep specs: a TOML file naming a base config, grid axes and seeds, validated on load.

    name = "quick"
    seeds = 10              # a count (seeds 0..9) or an explicit list: [0, 1, 2]; or crossed sources:
                            # { data = 10, init = 5, masks = 2 } = every combination (100 trials per cell)
    arms = ["plain", "dropout", "early_stop", "weight_decay"]   # default: the first two
    plugins = ["mypkg.arms"]   # optional: modules that add arms or tasks (bench.plugins), by import path
    [base]                  # any TrialConfig field except seed and device
    width = 300
    [grid]                  # the Cartesian product of these axes
    dropout = [0.1, 0.3, 0.5, 0.7]
    n_train = [10, 20, 50]
    [families]              # instead of dropout in [grid]: each arm's own settings, zipped, not crossed:
    dropout = [0.2, 0.5, 0.7]          # config i of every grid cell takes the i-th value of each list,
    weight_decay = [1e-4, 1e-3, 1e-2]  # so each family gets as many settings as dropout and the plain
    patience = [3, 5, 10]              # arm (which reads none of them) is trained once per seed
    [execution]             # defaults for how to run; flags override them
    workers = 2             # (n_jobs, its older name, is accepted too)
    device = "cpu"
    engine = "auto"
    [report]                # how the report judges the results
    smallest_effect = 0.009 # the smallest change in test MSE worth finding (default 10% of sigma^2)
    outcome = "test_mse"    # or "excess_risk" (noise-free), "new_mse", "new_excess_risk" (fresh inputs)

Every problem is one line naming the file, the key and what is wrong.
"""
from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from analysis.records.outcomes import OUTCOMES
from bench import ENGINES, ConfigError, TrialConfig
from bench.arms import settings
from bench.config import field_names
from bench.plugins import PluginError, load_plugins

TOP_KEYS = ("name", "description", "seeds", "arms", "plugins", "base", "grid", "families", "execution", "report")
REPORT_KEYS = ("smallest_effect", "outcome")
EXECUTION_KEYS = ("workers", "n_jobs", "device", "engine", "group_size")   # n_jobs: the older name of workers
RESERVED = {"seed": "use the top-level 'seeds'", "device": "set it under [execution]",
            "data_seed": "use the top-level 'seeds = { data = ..., init = ..., masks = ... }'",
            "init_seed": "use the top-level 'seeds = { data = ..., init = ..., masks = ... }'",
            "mask_seed": "use the top-level 'seeds = { data = ..., init = ..., masks = ... }'"}
CROSSED = ("data", "init", "masks")   # the sources a crossed design varies, outer to inner


class SpecError(ConfigError):
    """A bad sweep spec; the message names the file and the key."""


@dataclass(frozen=True)
class SweepSpec:
    name: str
    seeds: tuple[int, ...]
    base: dict[str, Any] = field(default_factory=dict)
    crossed: dict[str, int] = field(default_factory=dict)      # {"data": D, "init": I, "masks": M}, or {}
    grid: dict[str, list[Any]] = field(default_factory=dict)    # axis -> values, in file order
    families: dict[str, list[Any]] = field(default_factory=dict)  # arm setting -> values, zipped (equal lengths)
    execution: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)        # [report]: how the report judges results
    description: str = ""
    source: str = "<spec>"                                       # file path, for messages
    plugins: tuple[str, ...] = ()                                # modules adding arms or tasks (bench.plugins)

    @property
    def axes(self) -> list[str]:
        """The settings that vary between configs: the grid's axes, then the families' settings."""
        return [*self.grid, *self.families]

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of grid values, each with the i-th value of every family list (i inner),
        as {setting: value}; one dict when nothing varies."""
        return expand(self.grid, self.families)

    def configs(self, device: str = "cpu") -> list[TrialConfig]:
        """All (cell x seed) trial configs, cells in grid order, seeds inner.

        In a crossed design seed k is the k-th combination of (data, init, masks) seeds, masks
        varying fastest: every cell has the same combinations under the same k (paired).
        """
        return [TrialConfig(**self.base, **cell, seed=s, device=device, **self.streams(s))
                for cell in self.cells() for s in self.seeds]

    def streams(self, k: int) -> dict[str, int]:
        """The stream seeds of seed k in a crossed design ({} otherwise)."""
        if not self.crossed:
            return {}
        d, i, m = (self.crossed[c] for c in CROSSED)
        return {"data_seed": k // (i * m), "init_seed": (k // m) % i, "mask_seed": k % m}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seeds": list(self.seeds),
                **({"crossed": dict(self.crossed)} if self.crossed else {}),
                **({"plugins": list(self.plugins)} if self.plugins else {}),
                "base": self.base, "grid": self.grid, **({"families": self.families} if self.families else {}),
                "execution": self.execution, "report": self.report}

    def shared_settings(self) -> str:
        """What must not change between a sweep and its resumption: the base config and the axes."""
        resolved = TrialConfig(**self.base).to_dict()
        for axis in self.axes:
            resolved.pop(axis, None)   # fields at their defaults are not in the dict at all
        resolved.pop("seed")
        resolved.pop("device")
        return json.dumps({"base": resolved, "axes": sorted(self.axes),
                           **({"crossed": self.crossed} if self.crossed else {})}, sort_keys=True)


def load_spec(path: str | Path) -> SweepSpec:
    return spec_from_dict(read_toml(path), source=str(path))


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    return spec_from_dict(parse_toml(text, source), source=source)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A spec file's TOML as a dict; a missing, unreadable or malformed file is one SpecError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a text spec: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} "
                        "is not UTF-8; a spec is a UTF-8 TOML file") from None
    if not text.strip():
        raise SpecError(f"{path}: empty spec file: nothing to run")
    if "\x00" in text:
        raise SpecError(f"{path}: not a text spec: it holds a NUL byte; a spec is a UTF-8 TOML file")
    return parse_toml(text, str(path))


def parse_toml(text: str, source: str = "<spec>") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None


def spec_from_dict(data: Mapping[str, Any], source: str = "<spec>") -> SweepSpec:
    def fail(key: str, problem: str) -> SpecError:
        return SpecError(f"{source}: {key}: {problem}")

    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key; valid keys: {', '.join(TOP_KEYS)}")
    plugins = check_plugins(data.get("plugins", []), fail)   # first: they add arms, tasks and settings
    name, description = name_and_description(data, fail)
    seeds, crossed = parse_seeds(data.get("seeds"), fail)
    base = _table(data, "base", fail)
    if "arms" in data:   # the arms every trial trains: a setting of the base config
        if "arms" in base:
            raise fail("arms", "also set in [base]; give it once")
        base = {**base, "arms": data["arms"]}
    grid_in = _table(data, "grid", fail)
    execution = _table(data, "execution", fail)

    check_base(base, fail)

    grid: dict[str, list[Any]] = {}
    for axis, values in grid_in.items():
        key = f"grid.{axis}"
        check_varied(key, axis, base, fail, "swept")
        if not isinstance(values, list):
            raise fail(key, f"must be a list of values, got {type(values).__name__}")
        if not values:
            raise fail(key, "empty axis; give at least one value")
        grid[axis] = _distinct_values(key, axis, values, base, fail, "")
    families = check_families(_table(data, "families", fail), base, grid, fail)
    if families and crossed:   # seeds 2j and 2j+1 would share data and init: the halves would not be apart
        raise fail("families", "not with crossed seeds: the best of each family is chosen on the even seeds and "
                               "judged on the odd ones, which a crossed design pairs on the same data")
    _check_cells(base, grid, fail, families)

    for key, value in execution.items():
        if key not in EXECUTION_KEYS:
            raise fail(f"execution.{key}", f"unknown key; valid keys: {', '.join(EXECUTION_KEYS)}")
    _check_execution(execution, fail)
    report = check_report(_table(data, "report", fail), fail)
    return SweepSpec(name=name, seeds=seeds, base=dict(base), grid=grid, families=families, crossed=crossed,
                     execution=dict(execution), report=report, description=description, source=source,
                     plugins=plugins)


def check_plugins(value: Any, fail) -> tuple[str, ...]:
    """The ``plugins`` list: module names, each imported here (bench.plugins)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail("plugins", f"must be a list of module names, e.g. [\"mypkg.arms\"], got {value!r}")
    try:
        load_plugins(value)
    except PluginError as exc:
        raise fail("plugins", str(exc)) from None
    return tuple(value)


def _distinct_values(key: str, field: str, values: list, base: Mapping[str, Any], fail, why: str) -> list[Any]:
    """Each value as TrialConfig validates it (one-line errors naming ``key[i]``), no value twice."""
    seen: list[Any] = []
    for i, value in enumerate(values):
        try:
            checked = getattr(TrialConfig(**base, **{field: value}), field)
        except ConfigError as exc:
            raise fail(f"{key}[{i}]", str(exc)) from None
        if checked in seen:
            raise fail(key, f"duplicate value {value!r}{why}")
        seen.append(checked)
    return seen


def expand(grid: Mapping[str, list], families: Mapping[str, list]) -> list[dict[str, Any]]:
    """The grid's product; within each grid cell, setting i of every family (the lists zipped)."""
    names = list(grid)
    combos = [dict(zip(names, combo)) for combo in itertools.product(*(grid[a] for a in names))]
    if not families:
        return combos
    zipped = [dict(zip(families, values)) for values in zip(*families.values())]
    return [{**combo, **one} for combo in combos for one in zipped]


def check_families(families: Mapping[str, Any], base: Mapping[str, Any], grid: Mapping[str, list],
                   fail) -> dict[str, list[Any]]:
    """The [families] table: per arm setting a list of distinct valid values, all lists of one length."""
    out: dict[str, list[Any]] = {}
    arm_settings = ["dropout", *settings()]   # the dropout arm reads the rate; each other arm its own
    for name, values in families.items():
        key = f"families.{name}"
        if name not in arm_settings:
            raise fail(key, f"not an arm's setting; families take {', '.join(arm_settings)}")
        check_varied(key, name, base, fail, "given per family")
        if name in grid:
            raise fail(key, "also a [grid] axis; a setting is either crossed ([grid]) or zipped ([families])")
        if not isinstance(values, list) or not values:
            raise fail(key, f"must be a non-empty list of values, got {values!r}")
        out[name] = _distinct_values(key, name, values, base, fail, ": each setting of a family once")
    lengths = {name: len(v) for name, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise fail("families", "lists of unequal length (" + ", ".join(f"{k}: {n}" for k, n in lengths.items())
                   + "): config i takes the i-th value of every list, so give each family the same number")
    return out


def _check_cells(base: Mapping[str, Any], grid: Mapping[str, list], fail,
                 families: Mapping[str, list] | None = None) -> None:
    """Every combination of axis values is a valid config (task=diabetes with n_train=400 is not)."""
    for cell in expand(grid, families or {}):
        try:
            TrialConfig(**base, **cell)
        except ConfigError as exc:
            raise fail("grid", f"the cell {cell_label(cell)}: {exc}") from None


def check_report(report: Mapping[str, Any], fail) -> dict[str, Any]:
    """The [report] table: ``smallest_effect`` (a positive change in the outcome), ``outcome``."""
    for key in report:
        if key not in REPORT_KEYS:
            raise fail(f"report.{key}", f"unknown key; valid keys: {', '.join(REPORT_KEYS)}")
    if "smallest_effect" in report:
        value = report["smallest_effect"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise fail("report.smallest_effect", f"{value!r} must be a positive number (a change in test MSE, "
                                                 "e.g. 0.009 for 10% of sigma^2 = 0.09)")
    if "outcome" in report and not (isinstance(report["outcome"], str) and report["outcome"] in OUTCOMES):
        raise fail("report.outcome", f"{report['outcome']!r} must be one of {', '.join(OUTCOMES)}")
    return dict(report)


def name_and_description(data: Mapping[str, Any], fail, names: str = "the output folder") -> tuple[str, str]:
    """A spec's ``name`` (required; it becomes a folder name) and optional ``description``."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", f"required: a non-empty string (it names {names})")
    if any(ch in name for ch in "/\\") or name in (".", ".."):
        raise fail("name", f"{name!r} must not contain path separators")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")
    return name, description


def check_field(key: str, name: str, fail) -> None:
    """A config field a spec names (at ``key``): known, and not one the harness sets itself."""
    if name in RESERVED:
        raise fail(key, f"not allowed here; {RESERVED[name]}")
    known = field_names()
    if name not in known:
        raise fail(key, f"unknown config field; valid fields: {', '.join(known)}")


def check_varied(key: str, name: str, base: Mapping[str, Any], fail, verb: str) -> None:
    """A field a spec varies (grid axis, search parameter): a valid field, and not also fixed in [base]."""
    check_field(key, name, fail)
    if name in base:
        raise fail(key, f"also set in [base]; a field is either fixed or {verb}, not both")


def check_base(base: Mapping[str, Any], fail) -> None:
    """The fixed config fields of a spec: known, not reserved, and valid together."""
    for key in base:
        check_field(f"base.{key}", key, fail)
    try:
        TrialConfig(**base)
    except ConfigError as exc:
        raise fail("base", str(exc)) from None


def parse_seeds(value: Any, fail) -> tuple[tuple[int, ...], dict[str, int]]:
    """``seeds`` as a count (0..n-1), an explicit list of distinct non-negative integers, or a
    crossed design ``{data = D, init = I, masks = M}`` (seeds 0..D*I*M-1, see ``SweepSpec.streams``).

    Returns (seeds, crossed); crossed is {} unless the design is crossed.
    """
    if isinstance(value, dict):
        return _crossed(value, fail)
    if value is None:
        raise fail("seeds", "required: a count (e.g. 10) or a list of seeds (e.g. [0, 1, 2])")
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise fail("seeds", f"must be a count or a list of integers, got {type(value).__name__}")
    if isinstance(value, int):
        if value < 1:
            raise fail("seeds", f"count must be >= 1, got {value}")
        return tuple(range(value)), {}
    if not value:
        raise fail("seeds", "empty list; give at least one seed")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise fail("seeds", f"{s!r} is not a non-negative integer")
    if len(set(value)) != len(value):
        dup = next(s for s in value if value.count(s) > 1)
        raise fail("seeds", f"duplicate seed {dup}")
    return tuple(value), {}


def _crossed(value: dict, fail) -> tuple[tuple[int, ...], dict[str, int]]:
    unknown = sorted(set(value) - set(CROSSED))
    if unknown:
        raise fail(f"seeds.{unknown[0]}", f"unknown source; a crossed design names {', '.join(CROSSED)}")
    crossed = {}
    for source in CROSSED:
        n = value.get(source, 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise fail(f"seeds.{source}", f"{n!r} must be a count >= 1")
        crossed[source] = n
    return tuple(range(crossed["data"] * crossed["init"] * crossed["masks"])), crossed


def _table(data: Mapping[str, Any], key: str, fail) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise fail(key, f"must be a table ([{key}]), got {type(value).__name__}")
    return value


def _check_execution(execution: Mapping[str, Any], fail) -> None:
    for key in ("workers", "n_jobs"):
        if key in execution:
            check_n_jobs(execution[key], lambda msg, key=key: fail(f"execution.{key}", msg))
    if "workers" in execution and "n_jobs" in execution:
        raise fail("execution.n_jobs", "the older name of 'workers': give one of them")
    if "device" in execution:
        try:
            TrialConfig(device=execution["device"])
        except ConfigError as exc:
            raise fail("execution.device", str(exc)) from None
    if "engine" in execution and execution["engine"] not in ENGINES:
        raise fail("execution.engine", f"{execution['engine']!r} must be one of {', '.join(ENGINES)}")
    if "group_size" in execution:
        g = execution["group_size"]
        if g != "auto" and (isinstance(g, bool) or not isinstance(g, int) or g < 1):
            raise fail("execution.group_size", f"{g!r} must be \"auto\" or an integer >= 1")


def check_n_jobs(value: Any, fail) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise fail(f"{value!r} must be a positive integer (or -1 for all cores)")


def cell_label(cell: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in cell.items()) or "all"

