"""dropout-bench's experiment and its clock: configs, the trial core, engines and timing.

    >>> from bench import TrialConfig, run_trial
    >>> result = run_trial(TrialConfig(seed=3))
    >>> result.delta_test_mse  # test MSE(plain) - test MSE(dropout); > 0: dropout helped

Configs and results are plain data and import no torch, so reading a store, a status or
``--help`` costs no ``import torch`` (about 1.5 s); the training names below load it on
first use.
"""
from importlib import import_module
from typing import Any

from .config import ENGINES, ConfigError, TrialConfig, field_names
from .results import RESULT_SCHEMA_VERSION, Arm, ArmResult, TrialResult, dropout_arm, plain_arm
from .task import TASKS, Task, fit_grid, make_data   # torch is imported when they draw, not here

_LAZY = {
    "run_reference_trial": ".reference",
    "run_trial": ".trial", "run_trials": ".trial", "train_arms": ".trial",
}

__all__ = [
    "ConfigError", "TrialConfig", "field_names", "run_reference_trial", "RESULT_SCHEMA_VERSION",
    "Arm", "ArmResult", "TrialResult", "dropout_arm", "plain_arm", "fit_grid", "make_data",
    "ENGINES", "TASKS", "Task", "run_trial", "run_trials", "train_arms",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
