"""Dropout against the alternatives a practitioner would use: early stopping and weight decay.

For each comparator arm c a trial carries (``analysis.frame.COMPARATORS``), the paired
difference outcome(c) - outcome(dropout) on the same seed (> 0: dropout did better), judged
per cell by the rule of ``analysis.decisions`` (Holm across the cells of that comparison):
there "helps" reads "dropout better than c" and "hurts" "dropout worse".
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import pandas as pd

from .cells import cell_table
from .frame import COMPARATORS

NAMES = {"early_stop": "early stopping", "weight_decay": "weight decay", "plain": "the plain net"}
VERDICT_WORDS = {"helps": "dropout better", "hurts": "dropout worse", "withheld": "withheld", "no effect": "no difference",
                 "not detected": "not detected", "too few seeds": "too few seeds"}


def comparison_tables(trials: pd.DataFrame, axes: Sequence[str], *, outcome: str = "test_mse",
                      expected_seeds: Optional[int] = None, smallest_effect: Optional[float] = None,
                      **boot: Any) -> dict[str, pd.DataFrame]:
    """Per comparator present in ``trials`` (a records_frame): its cell table on delta_{outcome}_vs_{c}.

    Each table is ``analysis.cells.cell_table`` over the trials that trained c, with the
    comparator's own mean outcome per cell added as ``{outcome}_{c}_mean``. ``boot``: seed,
    n_resamples, method, as cell_table takes them.
    """
    out = {}
    for c in COMPARATORS:
        column = f"delta_{outcome}_vs_{c}"
        if column not in trials or trials[column].isna().all():
            continue
        sub = trials[trials[f"status_{c}"].notna() | (trials["status"] != "ok")]   # the trials that trained c
        own = sub[f"status_{c}"].fillna("ok").to_numpy()       # a diverged comparator: out of this comparison only
        sub = sub.assign(**{f"delta_{outcome}": sub[column],   # the paired delta cell_table judges
                            "status": sub["status"].where((own != "diverged") | (sub["status"] != "ok"), "diverged")})
        table = cell_table(sub, axes, expected_seeds=expected_seeds, smallest_effect=smallest_effect,
                           outcome=outcome, **boot)
        if not table.empty:   # the same finished seeds as the dropout mean: c's mean = dropout's + delta's
            table[f"{outcome}_{c}_mean"] = table[f"{outcome}_dropout_mean"] + table["delta_mean"]
        out[c] = table
    return out
