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
- ``comparators``: the trial's other arms by name (``early_stop``, ``weight_decay``), on the
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

from .config import DEFAULT_ARMS, TrialConfig
from .machine import gpu, host

COMPARATOR_FIELDS = ("arms", "weight_decay", "patience", "val_fraction")   # settings of the other arms
EARLY_STOP_RULE = (
    "The early_stop arm holds out round(val_fraction x n_train) of the training points (its own "
    "random draw per data seed) and trains on the rest. At every curve step (0, eval_every, "
    "2 x eval_every, ...) it measures its validation MSE and keeps a copy of its weights whenever "
    "the MSE is strictly below the best so far; it stops at the first check that is `patience` "
    "checks after the best one, or at `steps`, and its results are those of the kept weights.")

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
    kind: str = ""              # "plain", "dropout", "early_stop" or "weight_decay"; "" from rate

    @property
    def rate(self) -> float:
        return self.cfg.dropout

    @property
    def weight_decay(self) -> float:
        return self.cfg.weight_decay if self.kind == "weight_decay" else 0.0

    @property
    def early_stop(self) -> bool:
        return self.kind == "early_stop"


def _only(cfg: TrialConfig, *keep: str, arm: str = "", **changes) -> TrialConfig:
    """cfg with the other arms' settings at their defaults, except ``keep``: arms that do not use a
    setting are the same value whatever it is, so they are trained once. ``arm``: the comparator
    whose settings are kept (it stays in ``arms``, where its settings require it)."""
    reset = {f: getattr(TrialConfig, f) for f in COMPARATOR_FIELDS if f not in keep}
    reset["arms"] = (*DEFAULT_ARMS, arm) if arm else DEFAULT_ARMS
    return cfg.replace(init="shared", **reset, **changes)


def plain_arm(cfg: TrialConfig) -> Arm:
    return Arm(_only(cfg, dropout=0.0), "init", "plain")


def dropout_arm(cfg: TrialConfig) -> Arm:
    stream = "init" if cfg.init == "shared" else "init-dropout"
    return Arm(_only(cfg), stream, "dropout")


def comparator_arm(cfg: TrialConfig, kind: str) -> Arm:
    """The early_stop or weight_decay arm of a trial: the plain net's data and initial weights."""
    keep = {"early_stop": ("patience", "val_fraction"), "weight_decay": ("weight_decay",)}[kind]
    return Arm(_only(cfg, *keep, arm=kind, dropout=0.0), "init", kind)


def trial_arms(cfg: TrialConfig) -> dict[str, Arm]:
    """Every arm a trial trains, by name, in ``cfg.arms`` order (plain and dropout first)."""
    arms = {"plain": plain_arm(cfg), "dropout": dropout_arm(cfg)}
    for kind in cfg.arms:
        if kind not in arms:
            arms[kind] = comparator_arm(cfg, kind)
    return arms


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
    comparators: dict[str, ArmResult] = field(default_factory=dict)   # early_stop, weight_decay

    @property
    def status(self) -> str:
        """The plain-versus-dropout pair's: a comparator arm has its own status (analysis.comparisons)."""
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
