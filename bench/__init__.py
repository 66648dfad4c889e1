"""dropout-bench's experiment and its clock: configs, the trial core, engines and timing.

    >>> from bench import TrialConfig, run_trial
    >>> result = run_trial(TrialConfig(seed=3))
    >>> result.delta_test_mse  # test MSE(plain) - test MSE(dropout); > 0: dropout helped
"""
from .config import ConfigError, TrialConfig, field_names
from .reference import run_reference_trial
from .results import RESULT_SCHEMA_VERSION, Arm, ArmResult, TrialResult, dropout_arm, plain_arm
from .task import fit_grid, make_data
from .trial import ENGINES, run_trial, run_trials, train_arms

__all__ = [
    "ConfigError", "TrialConfig", "field_names", "run_reference_trial", "RESULT_SCHEMA_VERSION",
    "Arm", "ArmResult", "TrialResult", "dropout_arm", "plain_arm", "fit_grid", "make_data",
    "ENGINES", "run_trial", "run_trials", "train_arms",
]
