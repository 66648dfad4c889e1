"""Plain-data results: they pickle, and round-trip through JSON.

Definitions (all MSE, eval mode unless stated):
- ``train_mse``: eval-mode MSE on the training points after the last step.
- ``train_loss_last``: the train-mode loss of the last step taken (inflated by dropout noise; for
  early_stop, the step it stopped at).
- ``test_mse``: eval-mode MSE on the test targets (same x, fresh noise).
- ``gap`` = test_mse - train_mse.
- ``excess_risk``: mean((prediction - f(x))^2) at the training x against the known truth f:
  the test MSE without its test noise (E[test_mse] = sigma^2 + E[excess_risk]).
- ``new_mse`` / ``new_excess_risk``: the same at 200 fresh inputs, uniform in the task's
  range (``bench.task.NEW_POINTS``): error at new inputs, with noisy targets / against f.
- ``delta_test_mse`` = test_mse(plain) - test_mse(dropout): > 0 means dropout helped.
- ``comparators``: the trial's other arms by name (bench.arms: ``early_stop``, ...), on the
  same seed: same data, same initial weights as the plain arm. The early_stop arm trains on
  the training points minus its validation points and its metrics are those of its restored
  best weights (``best_step``); its ``train_mse`` is over the points it trained on.
  On a task without a known f (diabetes) the excess risks and fresh-input errors are NaN, and
  ``test_mse`` is the MSE on the held-out rows.

Schema 2 added excess_risk, new_mse and new_excess_risk; schema-1 records load with them None.
Schema 3 added ``comparators`` and the early-stopping fields; older records load with none.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from .arms import PAIR, ArmKind, arm_kind, settings
from .config import TrialConfig
from .machine import gpu, host

RESULT_SCHEMA_VERSION = 3
# The schema in a trial's id (sweeps.identity): the oldest whose records still hold everything this
# code computes for a config that could be written then. Schema 3 only added comparator arms, which
# a config asks for through fields older configs do not have, so ids keep 2 and older stores resume.
IDENTITY_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Arm:
    """One network trained on one seed: the unit the engines train.

    ``cfg`` is normalised (dropout = this arm's rate, init = "shared") so that the
    plain arm of every dropout rate of a cell is the same value and is trained once.
    """
    cfg: TrialConfig
    init_stream: str = "init"   # named RNG stream of the initial weights
    kind: str = ""              # its bench.arms.ARMS name; "" from rate (dropout, else plain)

    @property
    def rate(self) -> float:
        return self.cfg.dropout

    @property
    def spec(self) -> ArmKind:
        """Its kind (bench.arms): what the engine asks of it."""
        return arm_kind(self.kind or PAIR[self.rate > 0])


def _only(cfg: TrialConfig, kind: str, **changes) -> TrialConfig:
    """cfg with every other arm's settings at their defaults: arms that do not read a setting are
    the same value whatever it is, so they are trained once. A comparator stays in ``arms``
    beside the pair (its settings require it)."""
    keep = arm_kind(kind).reads
    reset = {name: s.default for name, (s, _) in settings().items() if name not in keep}
    reset["arms"] = PAIR if kind in PAIR else (*PAIR, kind)
    return cfg.replace(init="shared", **reset, **changes)


def plain_arm(cfg: TrialConfig) -> Arm:
    return Arm(_only(cfg, "plain", dropout=0.0), "init", "plain")


def dropout_arm(cfg: TrialConfig) -> Arm:
    stream = "init" if cfg.init == "shared" else "init-dropout"
    return Arm(_only(cfg, "dropout"), stream, "dropout")


def comparator_arm(cfg: TrialConfig, kind: str) -> Arm:
    """A comparator arm of a trial (bench.arms): the plain net's data and initial weights."""
    return Arm(_only(cfg, kind, dropout=0.0), "init", kind)


def arm_of(cfg: TrialConfig, kind: str) -> Arm:
    """The arm of ``kind`` that a trial of ``cfg`` trains."""
    return {"plain": plain_arm, "dropout": dropout_arm}.get(kind, lambda c: comparator_arm(c, kind))(cfg)


def trial_arms(cfg: TrialConfig) -> dict[str, Arm]:
    """Every arm a trial trains, by name, in ``cfg.arms`` order (plain and dropout first)."""
    return {kind: arm_of(cfg, kind) for kind in (*PAIR, *[k for k in cfg.arms if k not in PAIR])}


@dataclass
class ArmResult:
    rate: float
    status: str                       # "ok" or "diverged"
    diverged_at_step: Optional[int]   # first step whose train loss was NaN/inf
    train_mse: float
    train_loss_last: float
    test_mse: float
    gap: float
    curve_steps: list[int]            # completed steps at each evaluation, 0 included
    curve_train_mse: list[float]      # eval-mode train MSE at curve_steps
    curve_test_mse: list[float]       # test MSE at curve_steps
    step_seconds_median: float        # wall time of one training step of the arm's group (s)
    step_seconds_iqr: float           # its interquartile range (s), warm-up steps excluded
    group_size: int                   # arms trained together in that step
    engine: str
    fit: Optional[list[float]] = None          # final prediction on bench.task.fit_grid()
    fit_history: Optional[list[list[float]]] = None  # prediction at each curve step
    excess_risk: Optional[float] = None        # final, at the training x, against the truth f
    new_mse: Optional[float] = None            # final, at fresh inputs, noisy targets
    new_excess_risk: Optional[float] = None    # final, at fresh inputs, against f
    best_step: Optional[int] = None            # early_stop: the step of the restored weights
    stopped_step: Optional[int] = None         # early_stop: the step at which it stopped
    curve_val_mse: Optional[list[float]] = None  # early_stop: validation MSE at curve_steps (until it stopped)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArmResult":
        return cls(**d)


@dataclass
class TrialResult:
    config: dict[str, Any]
    plain: ArmResult
    dropout: ArmResult
    delta_test_mse: float
    env: dict[str, Any] = field(default_factory=dict)
    schema_version: int = RESULT_SCHEMA_VERSION
    comparators: dict[str, ArmResult] = field(default_factory=dict)   # by arm name (bench.arms)

    @property
    def status(self) -> str:
        """The plain-versus-dropout pair's: a comparator arm has its own status (analysis.numbers.comparisons)."""
        return "diverged" if "diverged" in (self.plain.status, self.dropout.status) else "ok"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialResult":
        d = dict(d)
        d["plain"] = ArmResult.from_dict(d["plain"])
        d["dropout"] = ArmResult.from_dict(d["dropout"])
        d["comparators"] = {k: ArmResult.from_dict(v) for k, v in (d.get("comparators") or {}).items()}
        return cls(**d)


def pair(cfg: TrialConfig, plain: ArmResult, drop: ArmResult, env: dict[str, Any],
         comparators: Optional[dict[str, ArmResult]] = None) -> TrialResult:
    return TrialResult(
        config=cfg.to_dict(), plain=plain, dropout=drop,
        delta_test_mse=plain.test_mse - drop.test_mse, env=env, comparators=dict(comparators or {}),
    )


def environment(device: str) -> dict[str, Any]:
    """What a reader needs to reproduce the numbers: versions, device, threads, determinism."""
    import torch  # here, not at the top: loading and reading results needs no torch

    h, card = host(), gpu(device)
    env: dict[str, Any] = {
        "torch": torch.__version__,
        "python": h["python"],
        "platform": h["platform"],
        "device": device,
        "threads": torch.get_num_threads(),
        "cpu_count": h["cpu_count"],
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if card:
        env["cuda_device"], env["cuda"] = card
    return env
