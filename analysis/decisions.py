"""One decision rule for every word, table and figure of a report.

A cell's verdict on the paired delta (test MSE(plain) - test MSE(dropout), > 0: dropout helped):

- **too few seeds**: fewer than ``stats.MIN_SEEDS`` finished seeds; no interval, no verdict.
- **helps** / **hurts**: the Holm-adjusted Wilcoxon p < alpha, and the mean's 95% t-interval
  and the Hodges-Lehmann estimate (the test's own direction) both lie on the same side of 0.
- **mixed**: the corrected test and the interval disagree (one says there is an effect, the
  other does not, or they point different ways).
- **no effect**: the equivalence test (TOST, Holm-adjusted across the cells) shows the mean
  lies within +-margin, the smallest effect of interest.
- **not detected**: none of the above; the data cannot tell.

``decide(cells)`` applies it to ``analysis.cells.cell_table``; ``best_cell`` chooses the
largest benefit among the cells with enough seeds and gives it a simultaneous interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from . import stats

ALPHA = 0.05
SMALLEST_EFFECT_OF_SIGMA2 = 0.1  # default smallest effect of interest: 10% of the noise variance
VERDICTS = ("helps", "hurts", "mixed", "no effect", "not detected", "too few seeds")
RULE = ("'helps' (or 'hurts') when the Holm-adjusted Wilcoxon p < 0.05 and the mean delta's 95% "
        "t-interval and the Hodges-Lehmann estimate lie on the same side of 0; 'mixed' when the "
        "corrected test and the interval disagree; 'no effect' when an equivalence test (TOST, "
        "Holm-adjusted) puts the mean within +-the smallest effect of interest; otherwise 'not "
        "detected'; no verdict below 3 seeds.")


def default_margin(noise_std: np.ndarray | float) -> np.ndarray | float:
    """The smallest effect of interest when a spec sets none: 10% of sigma^2, in test MSE."""
    return SMALLEST_EFFECT_OF_SIGMA2 * np.asarray(noise_std, dtype=float) ** 2


def decide(cells: pd.DataFrame, *, alpha: float = ALPHA) -> dict[str, pd.Series]:
    """``verdict`` and ``reason`` per cell of ``analysis.cells.cell_table``."""
    verdicts, reasons = [], []
    for _, c in cells.iterrows():
        v, why = _one(c, alpha)
        verdicts.append(v)
        reasons.append(why)
    return {"verdict": pd.Series(verdicts, index=cells.index, dtype=object),
            "reason": pd.Series(reasons, index=cells.index, dtype=object)}


def _one(c: pd.Series, alpha: float) -> tuple[str, str]:
    n = int(c["delta_n"])
    if n < stats.MIN_SEEDS:
        return "too few seeds", f"{n} finished seed{'s' if n != 1 else ''}; an interval needs {stats.MIN_SEEDS}"
    low, high, hl, p = c["delta_ci_low"], c["delta_ci_high"], c["delta_hl"], c["p_holm"]
    sig = bool(p < alpha)
    side = 1 if low > 0 else -1 if high < 0 else 0
    hl_side = int(np.sign(hl))
    if sig and side != 0 and hl_side == side:
        return ("helps" if side > 0 else "hurts"), f"Holm p = {_p(p)}; interval excludes 0"
    if sig or side != 0:
        if sig and side == 0:
            why = f"Holm p = {_p(p)}, but the mean's interval includes 0"
        elif not sig:
            why = f"the mean's interval excludes 0, but Holm p = {_p(p)}"
        else:
            why = f"Holm p = {_p(p)}; the mean and the Hodges-Lehmann estimate point different ways"
        return "mixed", why
    pt = c.get("p_tost_holm", np.nan)
    if np.isfinite(pt) and pt < alpha:
        return "no effect", f"within +-{c['margin']:.4g} (TOST Holm p = {_p(pt)})"
    return "not detected", f"Holm p = {_p(p)}; interval includes 0"


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
