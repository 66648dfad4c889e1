"""Plain-data results: they pickle, and round-trip through JSON.

Definitions (all MSE, eval mode unless stated):
- ``train_mse``: eval-mode MSE on the training points after the last step.
- ``train_loss_last``: the train-mode loss of the last step (inflated by dropout noise).
- ``test_mse``: eval-mode MSE on the test targets (same x, fresh noise).
- ``gap`` = test_mse - train_mse.
- ``excess_risk``: mean((prediction - f(x))^2) at the training x against the known truth f:
  the test MSE without its test noise (E[test_mse] = sigma^2 + E[excess_risk]).
- ``new_mse`` / ``new_excess_risk``: the same at 200 fresh inputs, uniform in the task's
  range (``bench.task.NEW_POINTS``): error at new inputs, with noisy targets / against f.
- ``delta_test_mse`` = test_mse(plain) - test_mse(dropout): > 0 means dropout helped.

Schema 2 added excess_risk, new_mse and new_excess_risk; schema-1 records load with them None.
"""
from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass, field
from typing import Any, Optional

from .config import TrialConfig

RESULT_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Arm:
    """One network trained on one seed: the unit the engines train.

    ``cfg`` is normalised (dropout = this arm's rate, init = "shared") so that the
    plain arm of every dropout rate of a cell is the same value and is trained once.
    """
    cfg: TrialConfig
    init_stream: str = "init"   # named RNG stream of the initial weights

    @property
    def rate(self) -> float:
        return self.cfg.dropout


def plain_arm(cfg: TrialConfig) -> Arm:
    return Arm(cfg.replace(dropout=0.0, init="shared"), "init")


def dropout_arm(cfg: TrialConfig) -> Arm:
    stream = "init" if cfg.init == "shared" else "init-dropout"
    return Arm(cfg.replace(init="shared"), stream)


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

    @property
    def status(self) -> str:
        return "diverged" if "diverged" in (self.plain.status, self.dropout.status) else "ok"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialResult":
        d = dict(d)
        d["plain"] = ArmResult.from_dict(d["plain"])
        d["dropout"] = ArmResult.from_dict(d["dropout"])
        return cls(**d)


def pair(cfg: TrialConfig, plain: ArmResult, drop: ArmResult, env: dict[str, Any]) -> TrialResult:
    return TrialResult(
        config=cfg.to_dict(), plain=plain, dropout=drop,
        delta_test_mse=plain.test_mse - drop.test_mse, env=env,
    )


def environment(device: str) -> dict[str, Any]:
    """What a reader needs to reproduce the numbers: versions, device, threads, determinism."""
    import torch  # here, not at the top: loading and reading results needs no torch

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name(torch.device(device))
        env["cuda"] = torch.version.cuda
    return env
