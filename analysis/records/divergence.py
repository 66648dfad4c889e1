"""A diverged arm counts against itself: one rule for every comparison of arms (plain against
dropout, and dropout against each comparator).

Dropping a seed on which an arm diverged would flatter that arm (its worst outcome leaves the
average). Instead its outcome on that seed becomes the worst (largest) finite value the same
arm reached on the other seeds of the same cell, and the number of such seeds is shown.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RULE = ("A seed on which an arm diverged is not dropped: its outcome is the worst (largest) finite value the "
        "same arm reached on the seeds of the same cell, and the count of such seeds is shown; an arm that "
        "diverged on every seed of a cell has no value there.")


def diverged(frame: pd.DataFrame, arm: str) -> np.ndarray:
    """Per row of a trials frame (analysis.records.frame), whether ``arm`` diverged: (rows,) bool."""
    if arm in ("plain", "dropout"):
        return frame[f"diverged_at_step_{arm}"].notna().to_numpy()
    return (frame[f"status_{arm}"] == "diverged").to_numpy()


def count_against(values: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """values: (n,) one arm's outcome on the seeds of one cell; bad: (n,) where it diverged.

    The values with each diverged seed's replaced by the largest finite value of the others
    (NaN if there is none)."""
    v = np.asarray(values, dtype=float).copy()
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        good = ~bad & np.isfinite(v)
        v[bad] = v[good].max() if good.any() else np.nan
    return v


def apply_rule(frame: pd.DataFrame, by: list[str], arm: str, columns: list[str]) -> pd.DataFrame:
    """A copy of ``frame`` with ``arm``'s ``columns`` (its outcomes) under the rule, per cell of ``by``."""
    out = frame.copy()
    bad = diverged(frame, arm)
    if not bad.any():
        return out
    groups = frame.groupby(by, sort=False, dropna=False).indices if by else {(): np.arange(len(frame))}
    for idx in groups.values():
        if not bad[idx].any():
            continue
        for col in columns:
            j = out.columns.get_loc(col)
            out.iloc[idx, j] = count_against(frame[col].to_numpy(dtype=float)[idx], bad[idx])
    return out


def pair_under_rule(frame: pd.DataFrame, axes: list[str], a: str, b: str, columns: list[str],
                    delta: str) -> pd.DataFrame:
    """The trials of one comparison of arms ``a`` and ``b`` with each diverged arm counted against itself.

    ``frame``: one row per (seed, pair of arms) (``analysis.records.pairs.pair_trials``); ``columns``: the
    metric stems the report reads per arm (``{m}_{a}``, ``{m}_{b}``), ``columns[0]`` the outcome;
    ``delta``: the paired delta column, recomputed as outcome(a) - outcome(b). A finished trial's
    status becomes "ok" where that delta is finite, "diverged" where it is not (an arm that
    diverged on every seed of its cell); ``div_{a}`` and ``div_{b}`` mark the seeds counted against
    each arm. Rows that failed are left as they are.
    """
    finished = frame["status"].isin(["ok", "diverged"]).to_numpy()
    out = frame.assign(**{f"div_{a}": diverged(frame, a) & finished, f"div_{b}": diverged(frame, b) & finished})
    done = out[finished]
    for arm in (a, b):
        done = apply_rule(done, axes, arm, [f"{m}_{arm}" for m in columns if f"{m}_{arm}" in done])
    value = done[f"{columns[0]}_{a}"] - done[f"{columns[0]}_{b}"]
    cols = [f"{m}_{arm}" for arm in (a, b) for m in columns if f"{m}_{arm}" in done]
    out.loc[done.index, cols] = done[cols]
    out.loc[done.index, delta] = value
    out.loc[done.index, "status"] = np.where(np.isfinite(value.to_numpy(dtype=float)), "ok", "diverged")
    return out
