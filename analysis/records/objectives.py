"""The search objectives, one registry: for each name, its Optuna direction(s), one seed's
value(s) from a trial result, how seeds are pooled, and how a report names it.

    >>> OBJECTIVES["dropout_benefit"].directions
    ('maximize',)
    >>> OBJECTIVES["dropout_benefit"].seed_value({"result": {"delta_test_mse": 0.02}})
    (0.02,)

The search spec takes its valid names and directions from here, the search its values told
to Optuna, the confirmation stage and the search report which way is better and the labels.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class Objective:
    """One objective; every tuple has one entry per value (two for a multi-objective search)."""
    name: str
    directions: tuple[str, ...]      # Optuna's: "minimize" or "maximize"
    values: Callable[[Mapping[str, Any]], tuple[float, ...]]   # one seed's values from a TrialResult dict
    pooled: tuple[str, ...]          # "mean" or "median" over seeds ("median": robust to a busy machine)
    value_names: tuple[str, ...]     # axis titles of the report's figures
    label: str                       # what the value is and which way is better, for the report

    def seed_value(self, record: Mapping[str, Any]) -> tuple[float, ...]:
        """The values on one seed of a stored record ({"result": TrialResult dict, ...}): MSE, seconds."""
        return self.values(record["result"])

    def aggregate(self, values: Sequence[tuple[float, ...]]) -> list[float]:
        """Pool the seeds' values (seeds x values) into one value each, as told to Optuna."""
        cols = list(zip(*values))
        return [statistics.fmean(col) if how == "mean" else statistics.median(col)
                for col, how in zip(cols, self.pooled)]

    def lower_is_better(self, value: float, index: int = 0) -> float:
        """``value`` of the ``index``-th objective, signed so that lower is better (for sorting)."""
        return value if self.directions[index] == "minimize" else -value


def _dropout_test_mse(result: Mapping[str, Any]) -> tuple[float, ...]:
    return (float(result["dropout"]["test_mse"]),)


def _dropout_benefit(result: Mapping[str, Any]) -> tuple[float, ...]:
    return (float(result["delta_test_mse"]),)


def _dropout_test_mse_and_step_time(result: Mapping[str, Any]) -> tuple[float, ...]:
    d = result["dropout"]
    # a step of a group trains group_size arms at once: seconds per arm-step compare across groupings
    return float(d["test_mse"]), float(d["step_seconds_median"]) / max(1, int(d["group_size"]))


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("dropout_test_mse", ("minimize",), _dropout_test_mse, ("mean",), ("dropout test MSE",),
              "test MSE of the dropout arm (lower is better)"),
    Objective("dropout_benefit", ("maximize",), _dropout_benefit, ("mean",), ("dropout benefit (delta test MSE)",),
              "delta = test MSE(plain) - test MSE(dropout) (higher is better)"),
    Objective("dropout_test_mse+step_time", ("minimize", "minimize"), _dropout_test_mse_and_step_time,
              ("mean", "median"), ("dropout test MSE", "s per arm-step"),
              "test MSE of the dropout arm and seconds per arm-step (both lower is better)"),
)}
