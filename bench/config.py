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

TASKS = ("toy1d",)
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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            _check_type(f.name, value, f.type)
            if f.type == "float":  # ints are accepted for float fields; store them as float
                object.__setattr__(self, f.name, float(value))
        _check_ranges(self)

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
            return cls(**dict(data))
        except ConfigError as exc:
            if where:
                raise ConfigError(f"{where}: {exc}") from None
            raise

    def to_dict(self) -> dict[str, Any]:
        """Every field; the stream seeds only where set, so a trial without them keeps its identity."""
        d = dataclasses.asdict(self)
        for name in STREAM_SEEDS.values():
            if d[name] < 0:
                del d[name]
        return d

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


def field_names() -> list[str]:
    return [f.name for f in fields(TrialConfig)]


def field_types() -> dict[str, str]:
    return {f.name: f.type for f in fields(TrialConfig)}


def _check_type(name: str, value: Any, typ: str) -> None:
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
    }[typ]
    if not ok:
        raise ConfigError(f"{name}={value!r}: expected {typ}, got {type(value).__name__}")
    if typ == "float" and not math.isfinite(value):
        raise ConfigError(f"{name}={value!r}: must be a finite number")


def _check_ranges(c: TrialConfig) -> None:
    def bad(name: str, allowed: str) -> ConfigError:
        return ConfigError(f"{name}={getattr(c, name)!r}: {allowed}")

    if c.task not in TASKS:
        raise bad("task", f"must be one of {', '.join(TASKS)}")
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
