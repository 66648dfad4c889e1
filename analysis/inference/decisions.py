"""One decision rule for every word, table and figure of a report.

A cell's verdict on the paired delta (test MSE(plain) - test MSE(dropout), > 0: dropout helped),
one estimand (the mean delta), one test, one level:

- **too few seeds**: fewer than ``stats.MIN_SEEDS`` finished seeds; no interval, no verdict.
- **helps** / **hurts**: the Holm-adjusted p of ``analysis.inference.mean_test.mean_test`` (Student's t and
  Hall's skewness-corrected t on the mean, the larger p) is below alpha; the direction is the
  mean's. When the equivalence test (TOST, Holm-adjusted) also puts the mean within
  +-margin, the smallest effect of interest, ``below_margin`` says so: "helps, below the
  smallest effect of interest".
- **withheld**: the test found a direction, but the family's deltas are skewed against it
  beyond what the test holds its level on at this size (``mean_test.family_skew_check``,
  a simulation at the family's own size and skewness); the reason says how many seeds would do.
- **no effect**: no direction, and TOST (Holm-adjusted) shows the mean within +-margin.
- **not detected**: none of the above; the data cannot tell.

``decide(cells)`` applies it to ``analysis.numbers.cells.cell_table``; ``best_cell`` chooses the
largest benefit among the cells with enough seeds and gives it a simultaneous interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from . import stats
from .mean_test import SkewCheck, family_skew_check

ALPHA = 0.05
SMALLEST_EFFECT_OF_SIGMA2 = 0.1  # default smallest effect of interest: 10% of the noise variance
VERDICTS = ("helps", "hurts", "withheld", "no effect", "not detected", "too few seeds")
RULE = ("'helps' (or 'hurts') when the mean delta differs from 0 at Holm-adjusted p < 0.05 over the "
        "cells (the larger p of Student's t and Hall's skewness-corrected t, which must agree in "
        "direction), with the mean's direction, marked 'below the smallest effect of interest' when an "
        "equivalence test (TOST, Holm-adjusted) also puts it within +-that effect; 'withheld' for the "
        "side a skew makes unsafe, when the family's deltas are so skewed that a simulation at this size "
        "shows the test claiming a false direction in more than 5% of null sweeps of that shape; 'no effect' when TOST alone puts the mean "
        "within +-the smallest effect of interest; otherwise 'not detected'; no verdict below 3 seeds.")


def default_margin(noise_std: np.ndarray | float) -> np.ndarray | float:
    """The smallest effect of interest when a spec sets none: 10% of sigma^2, in test MSE."""
    return SMALLEST_EFFECT_OF_SIGMA2 * np.asarray(noise_std, dtype=float) ** 2


def verdict_words(verdict: str, below_margin: bool = False) -> str:
    """A verdict as the report writes it: 'helps, below the smallest effect of interest' where that applies."""
    return f"{verdict}, below the smallest effect of interest" if below_margin and verdict in ("helps", "hurts") \
        else verdict


def skew_check(cells: pd.DataFrame, *, alpha: float = ALPHA, seed: int = 0) -> SkewCheck:
    """``mean_test.family_skew_check`` over the family of ``cells`` (their ``delta_values``)."""
    return family_skew_check([np.asarray(v, dtype=float) for v in cells["delta_values"]], alpha=alpha, seed=seed)


def decide(cells: pd.DataFrame, *, alpha: float = ALPHA, check: Optional[SkewCheck] = None) -> dict[str, pd.Series]:
    """``verdict``, ``below_margin``, ``reason`` and ``seeds_needed`` per cell of ``analysis.numbers.cells.cell_table``.

    ``check``: the family's skewness check (default: ``skew_check(cells)``).
    """
    check = check if check is not None else skew_check(cells, alpha=alpha)
    out: dict[str, list] = {"verdict": [], "below_margin": [], "reason": [], "seeds_needed": []}
    for _, c in cells.iterrows():
        for k, v in zip(out, _one(c, alpha, check)):
            out[k].append(v)
    return {k: pd.Series(v, index=cells.index, dtype=float if k == "seeds_needed" else
                         bool if k == "below_margin" else object) for k, v in out.items()}


def _one(c: pd.Series, alpha: float, check: SkewCheck) -> tuple[str, bool, str, float]:
    n = int(c["delta_n"])
    if n < stats.MIN_SEEDS:
        return ("too few seeds", False,
                f"{n} finished seed{'s' if n != 1 else ''}; an interval needs {stats.MIN_SEEDS}", np.nan)
    p, pt = c["p_holm"], c.get("p_tost_holm", np.nan)
    inside = bool(np.isfinite(pt) and pt < alpha)
    if np.isfinite(p) and p < alpha:
        side = float(np.sign(c["delta_mean"]))
        if check.withhold and side == check.withhold and n < check.seeds_needed:
            return "withheld", False, f"Holm p = {_p(p)}, but {check.sentence()}", check.seeds_needed
        why = f"Holm p = {_p(p)}" + (f"; within +-{c['margin']:.4g} (TOST Holm p = {_p(pt)})" if inside else "")
        return ("helps" if side > 0 else "hurts"), inside, why, np.nan
    if inside:
        return "no effect", False, f"within +-{c['margin']:.4g} (TOST Holm p = {_p(pt)})", np.nan
    return "not detected", False, f"Holm p = {_p(p)}", np.nan


def _p(p: float) -> str:
    return "-" if not np.isfinite(p) else f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


@dataclass(frozen=True)
class Best:
    """The cell with the largest mean benefit among those with enough seeds."""
    index: object              # label in the cell table
    mean: float
    low: float                 # simultaneous (Bonferroni) 95% t-interval over ``family`` cells
    high: float
    family: int                # how many cells it was chosen from
    min_seeds: int             # the seeds a cell needed to be eligible


def enough_seeds(cells: pd.DataFrame) -> int:
    """The seeds a cell needs to be named best: half the planned seeds, and at least ``stats.MIN_SEEDS``."""
    planned = int(cells["n_expected"].max()) if len(cells) else 0
    return max(stats.MIN_SEEDS, (planned + 1) // 2)


def best_cell(cells: pd.DataFrame, *, alpha: float = ALPHA) -> Optional[Best]:
    """The largest mean delta among cells with ``enough_seeds``, with an interval that survives the choice.

    The interval is the t-interval at confidence 1 - alpha / m over the m eligible cells
    (Bonferroni): all m intervals cover together with 95%, so the chosen one does too,
    whichever it is. None when no cell has enough seeds.
    """
    need = enough_seeds(cells)
    eligible = cells[cells["delta_n"] >= need]
    if eligible.empty:
        return None
    label = eligible["delta_mean"].idxmax()
    m = len(eligible)
    low, high = stats.interval(np.asarray(cells.at[label, "delta_values"], dtype=float),
                               confidence=1 - alpha / m)
    return Best(index=label, mean=float(cells.at[label, "delta_mean"]), low=float(low), high=float(high),
                family=m, min_seeds=need)
