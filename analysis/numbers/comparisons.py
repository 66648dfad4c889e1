"""Dropout against the alternatives a practitioner would use: early stopping and weight decay.

For each comparator arm c a trial carries (``bench.arms.comparators()``), the paired
difference outcome(c) - outcome(dropout) on the same seed (> 0: dropout did better), judged
per cell by the rule of ``analysis.inference.decisions`` (Holm across the cells of that comparison):
there "helps" reads "dropout better than c" and "hurts" "dropout worse".

A comparison's cells come from the settings dropout and c read (``analysis.records.pairs``): the
weight-decay comparison splits by lambda and not by patience; each (seed, pair of arms) counts
once. A seed on which dropout or c diverged counts against it (``analysis.records.divergence``).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from bench.arms import comparators

from ..records.divergence import pair_under_rule
from ..records.pairs import pair_trials
from .cells import cell_table

VERDICT_WORDS = {"helps": "dropout better", "hurts": "dropout worse", "withheld": "withheld", "no effect": "no difference",
                 "not detected": "not detected", "too few seeds": "too few seeds"}


def trained(trials: pd.DataFrame, arm: str) -> np.ndarray:
    """Per row, whether the trial trains ``arm`` (its ``arms`` names it): (rows,) bool."""
    return trials["arms"].astype(str).str.split(",").apply(lambda names: arm in names).to_numpy(dtype=bool)


def comparison_tables(trials: pd.DataFrame, axes: Sequence[str], *, outcome: str = "test_mse",
                      expected_seeds: Optional[int] = None, smallest_effect: Optional[float] = None,
                      **boot: Any) -> dict[str, pd.DataFrame]:
    """Per comparator present in ``trials`` (a records_frame): its cell table on delta_{outcome}_vs_{c}.

    Each table is ``analysis.numbers.cells.cell_table`` over the trials that trained c, one row per
    (seed, pair of arms), on the axes either arm reads (``table.attrs["axes"]``), with the
    comparator's own mean outcome per cell added as ``{outcome}_{c}_mean`` and the seeds on
    which each arm diverged (counted against it) as ``diverged_dropout`` and ``diverged_{c}``.
    ``boot``: seed, n_resamples, method, as cell_table takes them.
    """
    out = {}
    for c in comparators():
        column = f"delta_{outcome}_vs_{c}"
        if column not in trials or trials[column].isna().all():
            continue
        pairs = pair_trials(trials[trained(trials, c)], axes, "dropout", c)
        cell_axes = pairs.axes
        # the pair's status: dropout's and c's alone (the plain net's divergence is not theirs)
        sub = pair_under_rule(pairs.frame, cell_axes, c, "dropout", [outcome], f"delta_{outcome}")
        table = cell_table(sub, cell_axes, expected_seeds=expected_seeds, smallest_effect=smallest_effect,
                           outcome=outcome, **boot)
        if not table.empty:   # the same finished seeds as the dropout mean: c's mean = dropout's + delta's
            table[f"{outcome}_{c}_mean"] = table[f"{outcome}_dropout_mean"] + table["delta_mean"]
            counts = counts_per_cell(sub, cell_axes, ["div_dropout", f"div_{c}"])
            table["diverged_dropout"] = counts["div_dropout"].to_numpy()
            table[f"diverged_{c}"] = counts[f"div_{c}"].to_numpy()
        table.attrs["axes"] = list(cell_axes)
        out[c] = table
    return out


def counts_per_cell(frame: pd.DataFrame, axes: list[str], columns: list[str]) -> pd.DataFrame:
    """Per cell of ``axes`` (sorted as cell_table sorts them), the sum of each bool column."""
    if not axes:
        return frame[columns].sum().to_frame().T
    return frame.groupby(axes, sort=True, dropna=False)[columns].sum().reset_index(drop=True)
