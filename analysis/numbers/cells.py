"""Per-cell summaries: one row per combination of swept settings, seeds pooled within it.

Input is the trials frame of ``analysis.records.frame.records_frame`` (one row per trial). A cell is
a group of trials that differ only in ``seed``; statistics use the trials with status "ok".
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from bench import TrialConfig
from bench.config import STREAM_SEEDS, field_names

from ..inference import stats
from ..inference.mean_test import mean_test, skewness, skewness_se

METRICS = ("test_mse", "train_mse", "gap")
ARMS = ("plain", "dropout")
STATUSES = ("ok", "diverged", "failed")
ALPHA = 0.05


def cell_axes(frame: pd.DataFrame, manifest: Optional[Mapping[str, Any]] = None) -> list[str]:
    """The swept config fields: the manifest's ``grid_axes``, then any other field that varies.

    Fields that vary but are not declared (a search, or merged sweeps) are added so that a cell
    never pools different configs; ``seed`` is never an axis.
    """
    not_axes = {"seed", *STREAM_SEEDS.values()}   # the seeds a cell pools over, never its settings
    declared = [a for a in (manifest or {}).get("grid_axes") or [] if a not in not_axes and a in frame]
    varying = [f for f in field_names()
               if f not in not_axes and f not in declared and f in frame and frame[f].nunique(dropna=False) > 1]
    return declared + varying


def cell_table(
    frame: pd.DataFrame,
    axes: Sequence[str],
    *,
    expected_seeds: Optional[int] = None,
    seed: int = 0,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    method: stats.Method = stats.DEFAULT_METHOD,
    smallest_effect: Optional[float] = None,
    outcome: str = "test_mse",
) -> pd.DataFrame:
    """One row per cell, sorted by the axes; the paired delta is on ``outcome`` (``outcomes.OUTCOMES``).

    Columns: the axes; n_trials, n_ok, n_diverged, n_failed, n_expected, complete (trials
    present / expected); n_train, noise_std; per arm and metric m in (test_mse, train_mse, gap,
    and the outcome):
    ``{m}_{arm}_mean``, ``_median``, ``_ci_low``, ``_ci_high`` (``stats.interval`` of the mean;
    bootstrap methods resample cells with equal n in one call from ``SeedSequence([seed, k])``);
    ``eff_df_{arm}`` = N mean(gap) / (2 sigma^2); the paired difference ``delta_*`` from
    ``stats.paired_summary`` (cells with equal n together, in table order); ``margin``, the
    smallest effect of interest (``smallest_effect``, default ``decisions.default_margin``);
    ``delta_p`` (the verdict's test, ``analysis.inference.mean_test.mean_test``; NaN below 3 seeds) and
    ``delta_skew`` (the deltas' sample skewness G1) and ``skewed`` (G1 beyond 1.96 of its
    standard error under normality: detectably skewed); ``p_holm``, ``p_bh`` (from ``delta_p``) and
    ``p_tost_holm`` adjusted across the family of cells with a p-value; ``sig_holm``, ``sig_bh`` at
    alpha = 0.05; ``delta_bonf_low``/``_high``, the mean's t-interval at 1 - 0.05/m over the m cells
    of the family (simultaneous), and ``interval_differs`` where it and the Holm test disagree; the verdict columns of ``analysis.inference.decisions.decide``.
    """
    from ..inference.decisions import decide, default_margin, skew_check

    table, ok_rows = _cells(frame, list(axes))
    if table.empty:
        return table
    n_expected = expected_seeds if expected_seeds else int(table["n_trials"].max())
    table["n_expected"] = n_expected
    table["complete"] = table["n_trials"] / n_expected
    table["margin"] = (float(smallest_effect) if smallest_effect is not None
                       else default_margin(table["noise_std"].to_numpy(dtype=float)))
    boot = {"seed": seed, "n_resamples": n_resamples, "method": method}
    _add_arms(table, frame, ok_rows, metrics=tuple(dict.fromkeys(METRICS + (outcome,))), **boot)
    _add_delta(table, frame, ok_rows, column=f"delta_{outcome}", **boot)
    _add_test(table)
    table["p_holm"] = stats.adjust_pvalues(table["delta_p"].to_numpy(), method="holm")
    table["p_bh"] = stats.adjust_pvalues(table["delta_p"].to_numpy(), method="fdr_bh")
    table["p_tost_holm"] = stats.adjust_pvalues(table["delta_p_tost"].to_numpy(), method="holm")
    table["sig_holm"] = table["p_holm"] < ALPHA
    table["sig_bh"] = table["p_bh"] < ALPHA
    family = int(np.isfinite(table["delta_p"]).sum())
    table["delta_bonf_low"], table["delta_bonf_high"] = _bonferroni(table["delta_values"], family)
    # where the simultaneous interval and the verdict's test disagree (Holm steps down to looser
    # levels than Bonferroni's; the skew guard can make the test stricter than the interval)
    side = np.where(table["delta_bonf_low"] > 0, 1, np.where(table["delta_bonf_high"] < 0, -1, 0))
    test = np.where(table["sig_holm"], np.sign(table["delta_mean"]), 0)
    table["interval_differs"] = (side != test) & np.isfinite(table["p_holm"])
    check = skew_check(table, seed=seed)
    for name, column in decide(table, check=check).items():
        table[name] = column
    table.attrs["skew_check"] = check    # the family's skewness, for the report's words
    return table


def _add_test(table: pd.DataFrame) -> None:
    """The verdict's test per cell (``analysis.inference.mean_test.mean_test``): ``delta_p``, and
    ``delta_skew`` (G1)."""
    p, skew = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for i, v in enumerate(table["delta_values"]):
        v = np.asarray(v, dtype=float)
        if len(v) >= stats.MIN_SEEDS:
            p[i] = float(mean_test(v)[0])
            skew[i] = float(skewness(v))
    table["delta_p"], table["delta_skew"] = p, skew
    sizes = table["delta_n"].to_numpy(dtype=float)
    table["skewed"] = np.abs(skew) > 1.96 * skewness_se(sizes)   # detectably skewed: a normal-theory test of G1


def _bonferroni(values: pd.Series, family: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's t-interval at 1 - alpha / family: all of them cover together with 95%."""
    low, high = np.full(len(values), np.nan), np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if len(v) >= stats.MIN_SEEDS:
            low[i], high[i] = stats.interval(np.asarray(v, dtype=float), confidence=1 - ALPHA / max(1, family))
    return low, high


def _cells(frame: pd.DataFrame, axes: list[str]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Counts per cell, sorted by the axes, and per cell the positions of its finished trials, by seed."""
    if axes:
        groups = frame.groupby(axes, sort=True, dropna=False).indices  # cell -> row positions
        cells = sorted((k if isinstance(k, tuple) else (k,), v) for k, v in groups.items())
    else:
        cells = [((), np.arange(len(frame)))] if len(frame) else []
    status = frame["status"].to_numpy()
    seeds = frame["seed"].to_numpy()
    rows: list[dict[str, Any]] = []
    ok_rows: list[np.ndarray] = []
    for values, idx in cells:
        row = dict(zip(axes, values))
        row["n_trials"] = len(idx)
        for st in STATUSES:
            row[f"n_{st}"] = int((status[idx] == st).sum())
        row["n_train"] = frame["n_train"].iat[idx[0]]
        row["noise_std"] = frame["noise_std"].iat[idx[0]]
        rows.append(row)
        ok = idx[status[idx] == "ok"]
        ok_rows.append(ok[np.argsort(seeds[ok], kind="stable")])
    return pd.DataFrame(rows), ok_rows


def _add_arms(table: pd.DataFrame, frame: pd.DataFrame, ok_rows: list[np.ndarray], *, metrics: tuple[str, ...],
              seed: int, n_resamples: int, method: stats.Method) -> None:
    """Each arm's metrics per cell; cells with the same number of finished seeds are resampled together."""
    sizes = np.array([len(r) for r in ok_rows])
    for k, (metric, arm) in enumerate((m, a) for a in ARMS for m in metrics):
        col = f"{metric}_{arm}"
        column = frame[col].to_numpy(dtype=float)
        out = {s: np.full(len(ok_rows), np.nan) for s in ("mean", "median", "ci_low", "ci_high")}
        for n in np.unique(sizes[sizes > 0]):
            idx = np.flatnonzero(sizes == n)
            values = column[np.stack([ok_rows[i] for i in idx])]  # (cells, n)
            d = stats.describe(values, seed=np.random.SeedSequence([seed, k, int(n)]),
                               n_resamples=n_resamples, method=method)
            for s in out:
                out[s][idx] = d[s]
        for s, v in out.items():
            table[f"{col}_{s}"] = v
    for arm in ARMS:
        table[f"eff_df_{arm}"] = stats.effective_df(table[f"gap_{arm}_mean"], table["n_train"],
                                                    table["noise_std"])


def _add_delta(table: pd.DataFrame, frame: pd.DataFrame, ok_rows: list[np.ndarray], *, column: str, seed: int,
               n_resamples: int, method: stats.Method) -> None:
    """The paired delta: the cells with n finished seeds, in table order, in one call (see paired_summary).

    Also the cell's deltas themselves, ``delta_values`` (an array per cell, by seed), for
    selection-aware intervals."""
    sizes = np.array([len(r) for r in ok_rows])
    values_of = frame[column].to_numpy(dtype=float)
    delta: dict[str, np.ndarray] = {}
    for n in np.unique(sizes):
        idx = np.flatnonzero(sizes == n)
        values = values_of[np.stack([ok_rows[i] for i in idx]).reshape(len(idx), int(n))]  # (cells, n)
        summary = stats.paired_summary(values, seed=seed, n_resamples=n_resamples, method=method,
                                       margin=table["margin"].to_numpy(dtype=float)[idx])
        for name, v in summary.items():
            delta.setdefault(f"delta_{name}", np.full(len(ok_rows), np.nan))[idx] = v
    for name, v in delta.items():
        table[name] = v
    table["delta_n"] = table["delta_n"].astype(int)
    table["delta_values"] = [values_of[r] for r in ok_rows]


def focus_cell(cells: pd.DataFrame, axes: Sequence[str], target: Optional[Mapping[str, Any]] = None) -> int:
    """Index (label) of the cell nearest ``target`` (default: the seed experiment's settings).

    Distance: the sum over numeric axes of |log(value / target)| (|value - target| where either
    is 0); a mismatched string counts 1. Ties go to the cell with more finished seeds.
    """
    target = dict(target or TrialConfig().to_dict())
    best, best_key = cells.index[0], (math.inf, 0)
    for label, row in cells.iterrows():
        dist = 0.0
        for a in axes:
            v, t = row[a], target.get(a)
            if isinstance(v, str) or isinstance(t, str) or t is None:
                dist += float(v != t)
            elif v > 0 and t > 0:
                dist += abs(math.log(v / t))
            else:
                dist += abs(v - t)
        key = (dist, -row["delta_n"])
        if key < best_key:
            best, best_key = label, key
    return best


def slice_through(cells: pd.DataFrame, axes: Sequence[str], focus: int, vary: str) -> pd.DataFrame:
    """The cells that match the focus cell on every axis except ``vary``, sorted by it."""
    row = cells.loc[focus]
    mask = np.ones(len(cells), dtype=bool)
    for a in axes:
        if a != vary:
            mask &= (cells[a] == row[a]).to_numpy()
    return cells[mask].sort_values(vary)


def cell_label(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    """'n_train=20, dropout=0.5' (or 'all trials' when nothing is swept)."""
    return ", ".join(f"{a}={_fmt(row[a])}" for a in axes) if axes else "all trials"


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)
