"""The unit of work: one frozen, validated trial configuration.

Defaults reproduce the seed experiment exactly (20 noisy points of y = x, a
1-300-300-1 ReLU MLP, Dropout(0.5), Adam(lr=0.01), 500 full-batch steps).
The canonical JSON of a config, hashed, is the stable identity of a trial.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .arms import ARMS, PAIR, RESERVED, Setting, arm_kind, settings
from .task import TASKS, task_of   # every task, one object each: its inputs, test rows and data

DEFAULT_ARMS = PAIR
INIT_MODES = ("shared", "separate")
ENGINES = ("auto", "single", "batched")   # how arms are trained: bench.trial.run_trials
STREAM_SEEDS = {"data": "data_seed", "init": "init_seed", "masks": "mask_seed"}  # source -> field


class ConfigError(ValueError):
    """Bad user input; the message is one line naming the field, value and what is allowed."""


@dataclass(frozen=True)
class TrialConfig:
    # data: y = x + noise_std * N(0, 1) at x = linspace(-1, 1, n_train); test at the same x, fresh noise
    task: str = "toy1d"
    n_train: int = 20           # number of training points (also test points)
    noise_std: float = 0.3      # sigma of the label noise; sigma^2 = 0.09 is the floor of test MSE
    # network: 1 -> width x depth hidden ReLU layers -> 1
    width: int = 300            # hidden units per layer
    depth: int = 2              # number of hidden layers
    dropout: float = 0.5        # PyTorch's p: probability of DROPPING a unit (dropout arm only)
    # optimisation: full-batch Adam on MSE
    lr: float = 0.01            # Adam learning rate
    steps: int = 500            # optimizer steps
    eval_every: int = 10        # eval-mode train/test MSE recorded every this many steps
    # randomness: every stream derives from this seed (see bench/rng.py)
    seed: int = 0
    init: str = "shared"        # "shared": both arms start from the same weights (common random numbers)
    device: str = "cpu"         # "cpu", "cuda" or "cuda:N"
    # crossed designs only: the seed of one source of randomness; -1 (the default): ``seed``
    data_seed: int = -1         # the data draws (train, test and new-input noise)
    init_seed: int = -1         # the initial weights
    mask_seed: int = -1         # the dropout masks
    # comparators (bench/arms.py): arms beyond the plain net and the dropout net, same seed
    arms: tuple = DEFAULT_ARMS  # which arms a trial trains: the pair, plus any other kind in bench.arms.ARMS
    # the built-in comparators' settings (each declared, with its rule, by its arm in bench/arms.py)
    weight_decay: float = 1e-2  # the weight_decay arm's L2 coefficient (Adam's coupled weight_decay)
    patience: int = 5           # early_stop: validation checks (every eval_every steps) without improvement
    val_fraction: float = 0.25  # early_stop: share of the n_train points held out for validation
    # task settings; 0 means the task's own
    n_features: int = 0         # inputs, within the task's range (bench.task.TASKS; default its own)
    test_size: int = 0          # held-out test rows of a data-set task (default the task's own)
    # the settings of arms added later (bench.arms.register_arm): sorted (name, value) pairs, only
    # those off their default; read as attributes (cfg.l1), given through from_dict or replace
    extra: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _extra(self.extra))
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            _check_type(f.name, value, f.type)
            if f.type == "float":  # ints are accepted for float fields; store them as float
                object.__setattr__(self, f.name, float(value))
            if f.type == "tuple":  # lists (JSON, TOML) are accepted; arms are kept in report order
                object.__setattr__(self, f.name, _arms(value))
        _normalise_task_settings(self)
        _check_ranges(self)

    def __getattr__(self, name: str) -> Any:
        """An added arm's setting: its value here, else its default."""
        if name.startswith("_") or name not in _added():
            raise AttributeError(f"'TrialConfig' object has no attribute {name!r}")
        return dict(self.__dict__.get("extra", ())).get(name, _added()[name].default)

    # ---- construction from plain data -------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> "TrialConfig":
        """Build from a mapping, refusing unknown keys with a message that lists the valid ones."""
        known = field_names()
        unknown = sorted(set(data) - set(known))
        if unknown:
            prefix = f"{where}: " if where else ""
            raise ConfigError(
                f"{prefix}unknown config field {unknown[0]!r}; valid fields: {', '.join(known)}"
            )
        try:
            return cls(**data)
        except ConfigError as exc:
            if where:
                raise ConfigError(f"{where}: {exc}") from None
            raise

    def to_dict(self) -> dict[str, Any]:
        """Every field; the stream seeds and later fields only where set, so older trials keep their identity."""
        d = dataclasses.asdict(self)
        d.update(d.pop("extra"))
        for name in OMITTED_AT_DEFAULT:
            if d[name] == _DEFAULTS[name]:
                del d[name]
        if "arms" in d:
            d["arms"] = list(d["arms"])
        return d

    @property
    def input_dim(self) -> int:
        """Inputs of the task: n_features, or (0) the task's own (bench.task.TASKS)."""
        return TASKS[self.task].input_dim(self.n_features)

    @property
    def n_val(self) -> int:
        """Training points the early_stop arm holds out for validation: round(val_fraction * n_train), in [1, n_train - 1]."""
        return min(self.n_train - 1, max(1, round(self.val_fraction * self.n_train)))

    def stream_seed(self, source: str) -> int:
        """The seed of one source of randomness ("data", "init" or "masks"): its own, else ``seed``."""
        own = getattr(self, STREAM_SEEDS[source])
        return own if own >= 0 else self.seed

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace: the same config always gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> "TrialConfig":
        return dataclasses.replace(self, **changes)


_dataclass_init = TrialConfig.__init__


def _init(self: TrialConfig, *args: Any, **kwargs: Any) -> None:
    """The dataclass's own __init__, taking an added arm's setting as a keyword too (into ``extra``)."""
    _dataclass_init(self, *args, **_split(kwargs))


TrialConfig.__init__ = _init   # type: ignore[method-assign]
_OWN = [f.name for f in fields(TrialConfig) if f.name != "extra"]
RESERVED.update(_OWN, ["extra"])
# fields added after the first stores: left out of a config's dict (and hash) at their defaults
OMITTED_AT_DEFAULT = (*STREAM_SEEDS.values(), "arms", *[n for n in _OWN if n in settings()],
                      "n_features", "test_size")
_DEFAULTS = {f.name: f.default for f in fields(TrialConfig)}


def _added() -> dict[str, Setting]:
    """The settings of arms added after the built-in ones (not fields of TrialConfig), by name."""
    return {name: s for name, (s, _) in settings().items() if name not in _DEFAULTS}


def field_names() -> list[str]:
    """Every setting a config has: its fields, then the added arms' settings."""
    return [*_OWN, *_added()]


def field_types() -> dict[str, str]:
    return {**{f.name: f.type for f in fields(TrialConfig) if f.name != "extra"},
            **{n: s.type for n, s in _added().items()}}


def _split(data: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the dataclass: the added arms' settings gathered into ``extra``."""
    added = _added()
    mine = {k: data.pop(k) for k in list(data) if k in added}
    if not mine:
        return data
    return {**data, "extra": tuple({**dict(data.pop("extra", ())), **mine}.items())}


def _extra(pairs: Any) -> tuple:
    """Added settings checked, those at their default dropped, sorted: one trial, one identity."""
    added, out = _added(), {}
    for name, value in dict(pairs).items():
        if name not in added:
            raise ConfigError(f"unknown config field {name!r}; valid fields: {', '.join(field_names())}")
        s = added[name]
        _check_type(name, value, s.type)
        value = float(value) if s.type == "float" else value
        if value != s.default:
            out[name] = value
    return tuple(sorted(out.items()))


def _check_type(name: str, value: Any, typ: str) -> None:
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "tuple": isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
    }[typ]
    if not ok:
        expected = "a list of arm names, e.g. [\"plain\", \"dropout\", \"early_stop\"]" if typ == "tuple" else typ
        raise ConfigError(f"{name}={value!r}: expected {expected}, got {type(value).__name__}")
    if typ == "float" and not math.isfinite(value):
        raise ConfigError(f"{name}={value!r}: must be a finite number")


def _check_ranges(c: TrialConfig) -> None:
    def bad(name: str, allowed: str) -> ConfigError:
        return ConfigError(f"{name}={getattr(c, name)!r}: {allowed}")

    if task_of(c.task) is None:
        raise bad("task", f"must be one of {', '.join(TASKS)}")
    _check_task(c, bad)
    _check_comparators(c, bad)
    if c.n_train < 2:
        raise bad("n_train", "must be >= 2")
    if c.noise_std < 0:
        raise bad("noise_std", "must be >= 0")
    for name in ("width", "depth", "steps", "eval_every"):
        if getattr(c, name) < 1:
            raise bad(name, "must be >= 1")
    if not 0.0 <= c.dropout < 1.0:
        raise bad("dropout", "must be in [0, 1) (probability of dropping a unit)")
    if c.lr <= 0:
        raise bad("lr", "must be > 0")
    if c.seed < 0:
        raise bad("seed", "must be >= 0")
    for name in STREAM_SEEDS.values():
        if getattr(c, name) < -1:
            raise bad(name, "must be >= 0, or -1 for the trial seed")
    if c.init not in INIT_MODES:
        raise bad("init", f"must be one of {', '.join(INIT_MODES)}")
    if not (c.device == "cpu" or c.device == "cuda" or
            (c.device.startswith("cuda:") and c.device[5:].isdigit())):
        raise bad("device", "must be 'cpu', 'cuda' or 'cuda:N'")


def _arms(value: Any) -> tuple:
    for a in value:
        try:
            arm_kind(a)
        except KeyError:
            raise ConfigError(f"arms: unknown arm {a!r}; arms are {', '.join(ARMS)}") from None
    if len(set(value)) != len(value):
        raise ConfigError(f"arms: {list(value)!r} names an arm twice")
    if not set(DEFAULT_ARMS) <= set(value):
        others = " and/or ".join(repr(k) for k in ARMS if k not in DEFAULT_ARMS)
        raise ConfigError(f"arms: {list(value)!r} must include {' and '.join(map(repr, DEFAULT_ARMS))} (the pair "
                          f"every report compares); add {others} beside them")
    return tuple(a for a in ARMS if a in value)


def _check_task(c: TrialConfig, bad) -> None:
    """The task settings: n_features and test_size, each valid for its task only (its Task says how)."""
    task = TASKS[c.task]
    if c.n_features != 0 and not task.min_inputs <= c.n_features <= task.max_inputs:
        raise bad("n_features", task.inputs_rule)
    if c.n_features < 0:
        raise bad("n_features", "must be >= 0 (0: the task's own)")
    if not task.rows:
        if c.test_size != 0:
            held_out = " and ".join(t.name for t in TASKS.values() if t.rows)
            raise bad("test_size", f"only the {held_out} task has held-out rows; leave it 0 for {c.task}")
        return
    test = c.test_size or task.test_rows
    if c.test_size < 0:
        raise bad("test_size", f"must be >= 0 (0: {task.test_rows} held-out rows)")
    if c.n_train + test > task.rows:
        raise bad("n_train", f"n_train + test rows ({test}) must be at most the {task.rows} rows of the "
                             f"{task.name} data: lower n_train (at most {task.rows - test}) or test_size")


def _check_comparators(c: TrialConfig, bad) -> None:
    """Each arm setting by its arm's rule; set off its default only where the trial trains that arm."""
    for name, (s, arm) in settings().items():
        value = getattr(c, name)
        if not s.valid(value):
            raise bad(name, s.allowed)
        if value != s.default and arm not in c.arms:   # a setting of an arm not trained would change nothing
            raise bad(name, f"changes only the {arm} arm, which this trial does not train: add {arm!r} to arms")


def _normalise_task_settings(c: TrialConfig) -> None:
    """A task setting given as the task's own default is stored as 0: one trial, one identity."""
    task = task_of(c.task)   # an unknown task is refused by _check_ranges, just after
    if task is None:
        return
    if c.n_features == task.inputs:
        object.__setattr__(c, "n_features", 0)
    if task.rows and c.test_size == task.test_rows:
        object.__setattr__(c, "test_size", 0)
