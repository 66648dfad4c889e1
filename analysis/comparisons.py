"""Dropout against the alternatives a practitioner would use: early stopping and weight decay.

For each comparator arm c a trial carries (``analysis.frame.COMPARATORS``), the paired
difference outcome(c) - outcome(dropout) on the same seed (> 0: dropout did better), judged
per cell by the rule of ``analysis.decisions`` (Holm across the cells of that comparison):
there "helps" reads "dropout better than c" and "hurts" "dropout worse".

A comparison's cells come from the settings dropout and c read (``analysis.pairs``): the
weight-decay comparison splits by lambda and not by patience; each (seed, pair of arms) counts
once. A seed on which dropout or c diverged counts against it (``analysis.divergence``).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from .cells import cell_table
from .divergence import apply_rule, diverged
from .frame import COMPARATORS
from .pairs import pair_trials

NAMES = {"early_stop": "early stopping", "weight_decay": "weight decay", "plain": "the plain net",
         "dropout": "dropout"}
VERDICT_WORDS = {"helps": "dropout better", "hurts": "dropout worse", "withheld": "withheld", "no effect": "no difference",
                 "not detected": "not detected", "too few seeds": "too few seeds"}


def trained(trials: pd.DataFrame, arm: str) -> np.ndarray:
    """Per row, whether the trial trains ``arm`` (its ``arms`` names it): (rows,) bool."""
    return trials["arms"].astype(str).str.split(",").apply(lambda names: arm in names).to_numpy(dtype=bool)


def comparison_tables(trials: pd.DataFrame, axes: Sequence[str], *, outcome: str = "test_mse",
                      expected_seeds: Optional[int] = None, smallest_effect: Optional[float] = None,
                      **boot: Any) -> dict[str, pd.DataFrame]:
    """Per comparator present in ``trials`` (a records_frame): its cell table on delta_{outcome}_vs_{c}.

    Each table is ``analysis.cells.cell_table`` over the trials that trained c, one row per
    (seed, pair of arms), on the axes either arm reads (``table.attrs["axes"]``), with the
    comparator's own mean outcome per cell added as ``{outcome}_{c}_mean`` and the seeds on
    which each arm diverged (counted against it) as ``diverged_dropout`` and ``diverged_{c}``.
    ``boot``: seed, n_resamples, method, as cell_table takes them.
    """
    out = {}
    for c in COMPARATORS:
        column = f"delta_{outcome}_vs_{c}"
        if column not in trials or trials[column].isna().all():
            continue
        pairs = pair_trials(trials[trained(trials, c)], axes, "dropout", c)
        sub, cell_axes = pairs.frame, pairs.axes
        finished = sub["status"].isin(["ok", "diverged"]).to_numpy()
        sub = sub.assign(**{"div_dropout": diverged(sub, "dropout") & finished,
                            f"div_{c}": diverged(sub, c) & finished})
        done = sub[finished]
        for arm in ("dropout", c):
            done = apply_rule(done, cell_axes, arm, [f"{outcome}_{arm}"])
        delta = done[f"{outcome}_{c}"] - done[f"{outcome}_dropout"]
        sub.loc[done.index, [f"{outcome}_dropout", f"{outcome}_{c}"]] = done[[f"{outcome}_dropout", f"{outcome}_{c}"]]
        sub.loc[done.index, f"delta_{outcome}"] = delta
        # the pair's status: dropout's and c's alone (the plain net's divergence is not theirs)
        sub.loc[done.index, "status"] = np.where(np.isfinite(delta.to_numpy(dtype=float)), "ok", "diverged")
        table = cell_table(sub, cell_axes, expected_seeds=expected_seeds, smallest_effect=smallest_effect,
                           outcome=outcome, **boot)
        if not table.empty:   # the same finished seeds as the dropout mean: c's mean = dropout's + delta's
            table[f"{outcome}_{c}_mean"] = table[f"{outcome}_dropout_mean"] + table["delta_mean"]
            counts = _counts(sub, cell_axes, ["div_dropout", f"div_{c}"])
            table["diverged_dropout"] = counts["div_dropout"].to_numpy()
            table[f"diverged_{c}"] = counts[f"div_{c}"].to_numpy()
        table.attrs["axes"] = list(cell_axes)
        out[c] = table
    return out


def _counts(frame: pd.DataFrame, axes: list[str], columns: list[str]) -> pd.DataFrame:
    """Per cell of ``axes`` (sorted as cell_table sorts them), the sum of each bool column."""
    if not axes:
        return frame[columns].sum().to_frame().T
    return frame.groupby(axes, sort=True, dropna=False)[columns].sum().reset_index(drop=True)
