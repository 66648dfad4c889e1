"""One model across the grid: the paired delta regressed on the swept settings.

delta ~ p + p^2 + log N + (log N)^2 + log width + (log width)^2 + p:log N + p:log width, with
the terms whose settings the sweep varies (p = dropout rate; a square needs three values of
its setting). One method, always: OLS, with errors clustered by seed (CR2, t on G - 1 df,
G = number of seeds; ``analysis.inference.clustered``). A seed's cells are one cluster, which allows
what the trials share: within one N all rates share the data, the plain arm and the masks;
across N only the initial weights. A random intercept per seed assumes one correlation for
all of a seed's cells and its intervals for the N terms covered 73-81%.

Minimum seeds: ``min_seeds(k) = k + SPARE_SEEDS`` for k coefficients (intercept included).
The clustered covariance is built from G seeds' scores that sum to zero, so its rank is at
most G - 1; it needs G - 1 >= k to be of full rank, and one seed more to spare. Below that
``fit_trend`` returns None: no model rather than one whose errors are not estimable.

From the fit: the coefficients with t intervals; the rate with the largest predicted benefit
at each N (and width), p* = -(b_p + b_pN log N + b_pw log w) / (2 b_p2), with Fieller's
interval; where the benefit peaks in N (only with four or more values of N: a quadratic
through three values always has a vertex), by Fieller on the log N scale; fitted curves with
a pointwise band; and a lack-of-fit test of the cell means against the trend with the same
clustered covariance (Hotelling's F). Ends of an interval outside the grid tried are NaN,
and the note says "beyond the grid".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .clustered import INTERVAL, cluster_ols, fieller, lack_of_fit, t_quantile

MIN_CELLS = 3
SPARE_SEEDS = 2          # seeds beyond the number of coefficients (see the module docstring)
MIN_N_FOR_PEAK = 4       # distinct values of N before a vertex in log N is called a peak


def min_seeds(k: int) -> int:
    """The fewest seeds for a trend with k coefficients (intercept included)."""
    return k + SPARE_SEEDS


@dataclass
class Trend:
    formula: str
    method: str                          # "OLS, seed-clustered CR2 errors, t(G-1 = ...)"
    coefficients: pd.DataFrame           # term, estimate, se, ci_low, ci_high, p
    best_rate: pd.DataFrame              # per N (and width): p_star, ci_low, ci_high, note
    cell_fit: pd.DataFrame               # per cell: the axes, observed mean, its SE, fitted mean
    lack_of_fit_f: float                 # cell means against the trend, seed-clustered (Hotelling F)
    lack_of_fit_df: tuple[int, int]
    lack_of_fit_p: float
    n: int
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # fitted delta over a fine grid of rates, band
    peak_n: Optional[dict] = None        # the N of the largest benefit at one rate: p, n, ci_low, ci_high, notes
    notes: list[str] = field(default_factory=list)
    scope: str = ""                      # the trials it was fitted to, where not all ("task = toy1d only")
    seeds: int = 0                       # G, the clusters

    @property
    def fits_badly(self) -> bool:
        return bool(np.isfinite(self.lack_of_fit_p) and self.lack_of_fit_p < 0.05)


def _design(frame: pd.DataFrame, axes: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The model's columns (p, p2, logN, logN2, logw, logw2) from the swept axes, and its terms."""
    cols: dict[str, np.ndarray] = {}
    terms: list[str] = []
    if "dropout" in axes:
        cols["p"] = frame["dropout"].to_numpy(dtype=float)
        terms.append("p")
        if frame["dropout"].nunique() >= 3:
            cols["p2"] = cols["p"] ** 2
            terms.append("p2")
    for axis, name in (("n_train", "logN"), ("width", "logw")):
        if axis in axes:
            cols[name] = np.log(frame[axis].to_numpy(dtype=float))
            terms.append(name)
            if frame[axis].nunique() >= 3:       # a benefit that rises and then falls
                cols[f"{name}2"] = cols[name] ** 2
                terms.append(f"{name}2")
            if "p" in cols:
                terms.append(f"p:{name}")
    return cols, terms


def model_matrix(names: Sequence[str], cols: dict[str, np.ndarray]) -> np.ndarray:
    """(rows, k): one column per term in ``names`` ("Intercept", "p", "p:logN", ...)."""
    rows = len(next(iter(cols.values())))
    out = np.ones((rows, len(names)))
    for j, term in enumerate(names):
        if term != "Intercept":
            for part in term.split(":"):
                out[:, j] *= cols[part]
    return out


def design(frame: pd.DataFrame, axes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """X (rows, k) and the coefficient names, intercept first, for the trials in ``frame``."""
    cols, terms = _design(frame, axes)
    names = ["Intercept", *terms]
    return model_matrix(names, cols), names


def vertex_weights(names: Sequence[str], axis: str, at: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """u, w (k,) with the vertex in ``axis`` ("p" or "logN") = (u' b) / (w' b), the other columns at ``at``:
    -(b_axis + sum b_axis:x x) / (2 b_axis2)."""
    u, w = np.zeros(len(names)), np.zeros(len(names))
    for j, term in enumerate(names):
        parts = term.split(":")
        if term == axis:
            u[j] = -1.0
        elif term == f"{axis}2":
            w[j] = 2.0
        elif axis in parts and len(parts) == 2:
            u[j] = -at[parts[1] if parts[0] == axis else parts[0]]
    return u, w


def fit_trend(ok: pd.DataFrame, axes: Sequence[str], column: str) -> Optional[Trend]:
    """The trend model of ``column`` (a paired delta) over the swept axes of the finished trials ``ok``.

    None when fewer than 3 cells, none of dropout, n_train, width is swept, or fewer seeds
    than ``min_seeds`` of the model's coefficients.
    """
    axes = [a for a in axes if a in ("dropout", "n_train", "width") and ok[a].nunique() > 1]
    live = ok.dropna(subset=[column])
    if not axes or live.groupby(axes).ngroups < MIN_CELLS:
        return None
    X, names = design(live, axes)
    seeds, y = live["seed"].to_numpy(), live[column].to_numpy(dtype=float)
    G = len(np.unique(seeds))
    if G < min_seeds(len(names)) or np.linalg.matrix_rank(X) < len(names):
        return None
    beta, cov = cluster_ols(X, seeds, y)
    t = t_quantile(G)
    data = live[["seed", *axes]].assign(delta=y)
    ranges = {a: (float(live[a].min()), float(live[a].max())) for a in axes}
    cell_fit, f, df1, df2, p = _lack_of_fit(data, axes, names, beta[:, 0], seeds, y)
    notes = [] if np.isfinite(p) else [f"no lack-of-fit test: the trend leaves {df1} cell contrasts, "
                                       f"which need more than {df1} seeds (there are {G})" if df1 else
                                       "no lack-of-fit test: the trend has as many terms as there are cells"]
    peak = _peak_n(data, names, beta, cov, t, ranges.get("n_train"))
    if peak is None and "logN2" in names:
        sizes = live["n_train"].nunique()
        notes.append(f"no peak in N: a quadratic through {sizes} values of N always has a vertex (a peak needs "
                     f"{MIN_N_FOR_PEAK})" if sizes < MIN_N_FOR_PEAK else "no peak in N: the fit is not a cap in log N")
    return Trend(formula="delta ~ " + " + ".join(names[1:]), method=f"OLS, seed-clustered CR2 errors, t(G-1 = {G - 1})",
                 coefficients=_coefficients(names, beta[:, 0], cov[0], G), cell_fit=cell_fit,
                 best_rate=_best_rate(data, axes, names, beta, cov, t, ranges.get("dropout")),
                 lack_of_fit_f=f, lack_of_fit_df=(df1, df2), lack_of_fit_p=p, n=len(live),
                 curves=_curves(data, axes, names, beta[:, 0], cov[0], t), peak_n=peak, notes=notes, seeds=G)


def _coefficients(names: list[str], beta: np.ndarray, cov: np.ndarray, seeds: int) -> pd.DataFrame:
    se = np.sqrt(np.clip(np.diag(cov), 0, None))    # a term no seed moves: rounding can make its variance -1e-20
    t = t_quantile(seeds)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * sps.t.sf(np.abs(beta / se), seeds - 1)
    return pd.DataFrame({"term": names, "estimate": beta, "se": se, "ci_low": beta - t * se,
                         "ci_high": beta + t * se, "p": p})


def _combos(data: pd.DataFrame, axes: list[str]) -> tuple[list[str], pd.DataFrame]:
    others = [a for a in axes if a != "dropout"]
    return others, (data[others].drop_duplicates().sort_values(others) if others else pd.DataFrame(index=[0]))


def _logs(combo: pd.Series) -> dict[str, float]:
    return {name: float(np.log(float(combo[axis]))) for axis, name in (("n_train", "logN"), ("width", "logw"))
            if axis in combo}


def _shown(estimate: float, lo: float, hi: float, shape: int, grid: tuple[float, float], what: str,
           scale=lambda v: v) -> tuple[float, float, float, str]:
    """A Fieller result as reported: a value or an end beyond the grid tried becomes NaN and the note
    says where it went ("past 0.7 (beyond the grid of rates tried, 0.1-0.7)")."""
    g0, g1 = grid
    where = f"(beyond the grid of {what} tried, {g0:g}-{g1:g})"
    est = scale(estimate)
    est = est if g0 <= est <= g1 else np.nan
    if shape != INTERVAL:
        return est, np.nan, np.nan, f"the interval is unbounded {where}"
    low, high = scale(lo), scale(hi)
    if np.isnan(est):
        side = f"past {g1:g}" if scale(estimate) > g1 else f"below {g0:g}"
        note = f"{side} {where}"
    elif low < g0 or high > g1:
        sides = [s for s, off in ((f"below {g0:g}", low < g0), (f"past {g1:g}", high > g1)) if off]
        note = f"the interval runs {' and '.join(sides)} {where}"
    else:
        note = ""
    low, high = (v if g0 <= v <= g1 else np.nan for v in (low, high))
    return est, low, high, note


def _best_rate(data: pd.DataFrame, axes: list[str], names: list[str], beta: np.ndarray, cov: np.ndarray,
               t: float, grid: Optional[tuple[float, float]]) -> pd.DataFrame:
    """p* per combination of the other axes, with Fieller's 95% interval."""
    if "p2" not in names:
        return pd.DataFrame()
    others, combos = _combos(data, axes)
    rows = []
    for _, combo in combos.iterrows():
        u, w = vertex_weights(names, "p", _logs(combo))
        est, lo, hi, shape = (float(v[0]) for v in fieller(beta, cov, u, w, t))
        row = {a: combo[a] for a in others}
        if float(w @ beta[:, 0]) >= 0:
            row.update(p_star=np.nan, ci_low=np.nan, ci_high=np.nan,
                       note="at an end of the grid (the fitted curve in p is not a cap)")
        else:
            star, low, high, note = _shown(est, lo, hi, int(shape), grid, "rates")
            row.update(p_star=star, ci_low=low, ci_high=high, note=note)
        rows.append(row)
    return pd.DataFrame(rows)


def _peak_n(data: pd.DataFrame, names: list[str], beta: np.ndarray, cov: np.ndarray, t: float,
            grid: Optional[tuple[float, float]]) -> Optional[dict]:
    """Where the predicted benefit peaks in N at the median rate tried: exp(-(b_N + b_pN p) / (2 b_N2)),
    by Fieller on the log N scale; None with fewer than four values of N or no cap in log N."""
    if "logN2" not in names or data["n_train"].nunique() < MIN_N_FOR_PEAK:
        return None
    p = float(np.median(data["dropout"])) if "dropout" in data else 0.0
    u, w = vertex_weights(names, "logN", {"p": p})
    if float(w @ beta[:, 0]) >= 0:
        return None
    est, lo, hi, shape = (float(v[0]) for v in fieller(beta, cov, u, w, t))
    n, low, high, note = _shown(est, lo, hi, int(shape), grid, "N", scale=lambda v: float(np.exp(v)))
    return {"p": p, "n": n, "ci_low": low, "ci_high": high, "notes": [note] if note else []}


def _curves(data: pd.DataFrame, axes: list[str], names: list[str], beta: np.ndarray, cov: np.ndarray,
            t: float) -> pd.DataFrame:
    """The fitted delta against the rate, one curve per value of the other axes, with a pointwise
    95% band fitted +- t sqrt(x' V x)."""
    if "p" not in names:
        return pd.DataFrame()
    others, combos = _combos(data, axes)
    grid = np.linspace(float(data["dropout"].min()), float(data["dropout"].max()), 41)
    out = []
    for _, combo in combos.iterrows():
        cols = {"p": grid, "p2": grid ** 2}
        for name, v in _logs(combo).items():
            cols.update({name: np.full_like(grid, v), f"{name}2": np.full_like(grid, v * v)})
        x = model_matrix(names, cols)                                  # (41, k)
        fit, se = x @ beta, np.sqrt(np.clip(np.einsum("ij,jk,ik->i", x, cov, x), 0, None))
        out.append(pd.DataFrame({"dropout": grid, **{a: combo[a] for a in others}, "fitted": fit,
                                 "low": fit - t * se, "high": fit + t * se}))
    return pd.concat(out, ignore_index=True)


def _lack_of_fit(data: pd.DataFrame, axes: list[str], names: list[str], beta: np.ndarray, seeds: np.ndarray,
                 y: np.ndarray) -> tuple[pd.DataFrame, float, int, int, float]:
    """Observed cell means and their SEs beside the fitted means, and the seed-clustered test of the
    cell means against the trend (``analysis.inference.clustered.lack_of_fit``)."""
    g = data.groupby(axes, sort=True)
    cells = g["delta"].agg(["mean", "std", "count"]).reset_index()
    cells["se"] = cells["std"] / np.sqrt(cells["count"])
    cols, _ = _design(cells, axes)
    for name in ("p2", "logN2", "logw2"):     # a square the cells' own count of values would not add
        if name in names and name not in cols:
            cols[name] = cols[name[:-1]] ** 2
    x = model_matrix(names, cols)
    cells["fitted"] = x @ beta
    f, q, df2, p = lack_of_fit(x, g.ngroup().to_numpy(), seeds, y)
    return cells.drop(columns=["std"]), float(f[0]), q, df2, float(p[0])
