"""The numbers behind a report's first lines: what dropout costs, how the nets compare with a
least-squares line on the same seeds, and how many seeds a cell needs.

Pure functions over the trials frame (``analysis.records.frame.records_frame``), the cell table
(``analysis.numbers.cells.cell_table``) and the known-answer trials (``analysis.numbers.known_answers``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from bench import TASKS

from ..inference import stats
from ..inference.decisions import ALPHA
from ..inference.ratio import fieller


@dataclass(frozen=True)
class Cost:
    """What a dropout arm costs beside the plain arm: step time per engine, share of the sweep's time."""
    step_ratio: dict[str, tuple[float, int]]   # engine -> (median dropout/plain arm-step time, trials)
    dropout_share: float                       # dropout arms' share of the sweep's training time
    step_ratio_quartiles: dict[str, tuple[float, float]] = field(default_factory=dict)  # engine -> (25%, 75%)


def _arm_step(ok: pd.DataFrame, arm: str) -> pd.Series:
    """Seconds per step of one arm: the group's median step time / the group's size."""
    return ok[f"step_seconds_median_{arm}"] / ok[f"group_size_{arm}"].fillna(1).clip(lower=1)


def cost(ok: pd.DataFrame) -> Cost | None:
    """The dropout arm's step time against the plain arm's on the same engine, and its share of the compute.

    The ratio compares the two arms of a trial only where both ran on the same engine. A plain
    arm does not depend on the dropout rate, so a sweep trains it once per setting of the other
    fields and pairs it with every rate: the share counts each distinct plain arm once.
    None when no trial was timed.
    """
    timed = ok.dropna(subset=["step_seconds_median_plain", "step_seconds_median_dropout"])
    if timed.empty:
        return None
    plain, drop = _arm_step(timed, "plain"), _arm_step(timed, "dropout")
    same = timed["engine_plain"] == timed["engine_dropout"]
    engines = [str(e) for e in sorted(timed.loc[same, "engine_plain"].dropna().unique())]
    each = {e: (drop / plain)[same & (timed["engine_plain"] == e)].to_numpy(float) for e in engines}
    ratios = {e: (float(np.median(r)), len(r)) for e, r in each.items()}
    quartiles = {e: (float(np.quantile(r, 0.25)), float(np.quantile(r, 0.75))) for e, r in each.items()}
    fields = [c for c in ("seed", "n_train", "noise_std", "width", "depth", "lr", "steps", "task", "init")
              if c in timed]
    plain_time = float((plain * timed["steps"]).groupby([timed[c] for c in fields], dropna=False).first().sum())
    dropout_time = float((drop * timed["steps"]).sum())
    return Cost(step_ratio=ratios, dropout_share=dropout_time / (dropout_time + plain_time),
                step_ratio_quartiles=quartiles)



def versus_line(ok: pd.DataFrame, known: pd.DataFrame, cells: pd.DataFrame, axes: Sequence[str],
                outcome: str = "test_mse") -> pd.DataFrame:
    """Per cell: the least-squares line's ``outcome`` on the same seeds, and each net's paired difference from it.

    ``known`` is ``known_answer_trials`` (one row per seed and predictor). Columns: the axes,
    task, n, line_mean [line_low, line_high], plain_mean, dropout_mean, and for each net
    ``{arm}_minus_line`` with ``_low``/``_high`` (mean paired difference net - line over the
    same seeds, 95% t-interval; > 0: the net is worse than the line); ``correct_line``: the
    task's truth is a line, so the line is the correctly specified model (a reference, not a rival).
    """
    data_keys = ["n_train", "noise_std", "task", "n_features", "test_size"]
    line = known[known["predictor"] == "least_squares"][["seed", *data_keys, outcome]]
    line = line.rename(columns={outcome: "line_value", "seed": "data_stream"})   # keyed by the data's seed
    merged = ok.merge(line, on=["data_stream", *data_keys])
    merged = merged.dropna(subset=["line_value", f"{outcome}_plain", f"{outcome}_dropout"])
    rows = []
    keys = list(axes)
    groups = merged.groupby(keys, sort=True) if keys else [((), merged)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        ln = g["line_value"].to_numpy(float)
        low, high = map(float, stats.interval(ln))
        row.update(task=str(g["task"].iloc[0]), n=len(g), line_mean=ln.mean(), line_low=low, line_high=high)
        for arm in ("plain", "dropout"):
            net = g[f"{outcome}_{arm}"].to_numpy(float)
            d = net - ln
            low, high = map(float, stats.interval(d))
            row.update({f"{arm}_mean": net.mean(), f"{arm}_minus_line": d.mean(), f"{arm}_minus_line_low": low,
                        f"{arm}_minus_line_high": high})
        row["correct_line"] = TASKS[row["task"]].linear   # the line is the correctly specified model
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Relative:
    """A cell's mean delta as a share of the plain net's mean error, with Fieller intervals
    (analysis.inference.ratio)."""
    of_plain: tuple[float, float, float]             # (share, low, high) of the plain net's mean
    above_floor: Optional[tuple[float, float, float]]  # of the plain net's error above the noise floor
    floor: float
    confidence: float


def relative(ok: pd.DataFrame, cell: Mapping[str, Any], axes: Sequence[str], outcome: str, *,
             floor: Optional[float], confidence: float = 0.95) -> Optional[Relative]:
    """mean(delta) / mean(plain) over the cell's finished seeds, paired by seed, with Fieller's interval.

    ``floor``: the outcome's noise floor (sigma^2), or None where none is known; then
    ``above_floor`` is None. ``confidence``: the interval's level (a chosen best cell's is
    simultaneous). None below ``stats.MIN_SEEDS`` seeds.
    """
    sel = ok
    for a in axes:
        sel = sel[sel[a] == cell[a]]
    sel = sel.dropna(subset=[f"delta_{outcome}", f"{outcome}_plain"])
    if len(sel) < stats.MIN_SEEDS:
        return None
    d, plain = sel[f"delta_{outcome}"].to_numpy(float), sel[f"{outcome}_plain"].to_numpy(float)
    of_plain = tuple(float(x) for x in fieller(d, plain, confidence=confidence))
    above = None
    if floor is not None and plain.mean() > floor:
        above = tuple(float(x) for x in fieller(d, plain - floor, confidence=confidence))
    return Relative(of_plain=of_plain, above_floor=above, floor=float(floor or 0.0), confidence=confidence)


@dataclass(frozen=True)
class Plan:
    """Seeds per cell for a stated smallest effect, under the correction the report uses."""
    margin: float              # the smallest effect of interest (test MSE)
    family: int                # cells in the Holm family
    sd_typical: float          # median over cells of the per-seed SD of delta
    sd_largest: float
    detect_typical: float      # seeds to detect +-margin at 80% power, Holm over the family
    detect_largest: float
    equivalence_typical: float  # seeds for TOST to show |delta| < margin when it is 0
    seeds: int                 # the most seeds any cell has


def plan(cells: pd.DataFrame, *, power: float = 0.8) -> Plan | None:
    """Seed planning from the sweep as its own pilot; None when no cell has 3 or more seeds."""
    pilot = cells[cells["delta_n"] >= stats.MIN_SEEDS]
    if pilot.empty:
        return None
    family = int(np.isfinite(cells["delta_p"]).sum()) or 1
    margin = float(np.median(pilot["margin"]))
    sd_t, sd_l = float(np.median(pilot["delta_sd"])), float(pilot["delta_sd"].max())
    return Plan(margin=margin, family=family, sd_typical=sd_t, sd_largest=sd_l,
                detect_typical=stats.seeds_to_detect(margin, sd_t, family=family, alpha=ALPHA, power=power),
                detect_largest=stats.seeds_to_detect(margin, sd_l, family=family, alpha=ALPHA, power=power),
                equivalence_typical=stats.seeds_to_show_equivalence(margin, sd_t, family=family, alpha=ALPHA,
                                                                    power=power),
                seeds=int(cells["delta_n"].max()))


def noise_free_ratio(ok: pd.DataFrame, axes: Sequence[str]) -> float | None:
    """Median over cells (3+ seeds) of SD(delta of excess risk) / SD(delta of test MSE).

    A t-interval's width is proportional to the SD, so this is how much narrower the
    intervals are on the noise-free outcome at the same seeds. None without both columns.
    """
    cols = ["delta_excess_risk", "delta_test_mse"]
    live = ok.dropna(subset=cols)
    if live.empty:
        return None
    groups = live.groupby(list(axes), sort=True) if axes else [((), live)]
    ratios = [g["delta_excess_risk"].std(ddof=1) / g["delta_test_mse"].std(ddof=1)
              for _, g in groups if len(g) >= stats.MIN_SEEDS and g["delta_test_mse"].std(ddof=1) > 0]
    return float(np.median(ratios)) if ratios else None
