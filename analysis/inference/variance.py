"""Where a cell's variance comes from: the data draw, the initial weights or the dropout masks.

A crossed design (spec ``seeds = { data = D, init = I, masks = M }``) trains every
combination once per cell. Each value y (an arm's error, or the paired delta) is split by a
random-effects ANOVA of the balanced crossed design: y = mu + a_data + a_init + a_masks + the
two-way interactions + a residual (the three-way interaction and what is left), every term
an independent zero-mean effect with its own variance. The variances come from the expected
mean squares (method of moments; a negative estimate is reported as 0), each with a 95%
interval from Satterthwaite's approximation (a scaled chi-square with matched df). A source
with few seeds has few degrees of freedom (2 mask seeds: 1), and its interval says so by its
width; below ``MIN_LEVELS`` seeds of a source its variance gets no interval, since simulated
coverage fell to 80-87% there (89-98% from 4 seeds; ``tests/test_variance.py``). A source
seeded only once is not varied and has no component.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd

SOURCES = ("data", "init", "masks")
MIN_LEVELS = 4   # seeds of a source for an interval of its variance: simulated coverage 89-98% from 4, 80-87% at 2-3
Subset = tuple[int, ...]


def mean_squares(y: np.ndarray, k: int) -> dict[Subset, tuple[np.ndarray, int]]:
    """Mean square and degrees of freedom of every effect (and the residual, the full set) of a
    balanced k-factor design with one value per combination. y: (..., n_1, ..., n_k)."""
    sizes = y.shape[-k:]
    axes = tuple(range(y.ndim - k, y.ndim))
    out: dict[Subset, tuple[np.ndarray, int]] = {}
    for r in range(1, k + 1):
        for s in itertools.combinations(range(k), r):
            effect = np.zeros(y.shape)
            for u_size in range(len(s) + 1):   # inclusion-exclusion over the marginal means
                for u in itertools.combinations(s, u_size):
                    keep = set(u)
                    drop = tuple(axes[f] for f in range(k) if f not in keep)
                    sign = (-1) ** (len(s) - len(u))
                    effect = effect + sign * y.mean(axis=drop, keepdims=True)
            ss = (effect ** 2).sum(axis=axes)   # over the full array: each level of s counted as often as it occurs
            df = int(np.prod([sizes[f] - 1 for f in s]))
            out[s] = (ss / df, df)
    return out


def _coefficients(sizes: Sequence[int]) -> dict[Subset, dict[Subset, float]]:
    """Each component's variance as a linear combination of mean squares (expected mean squares,
    E[MS_S] = sum over T containing S of sigma^2_T prod(n_f, f not in T), solved from the largest T down)."""
    k = len(sizes)
    every = [s for r in range(1, k + 1) for s in itertools.combinations(range(k), r)]
    full = tuple(range(k))
    coef: dict[Subset, dict[Subset, float]] = {full: {full: 1.0}}
    for s in sorted(every, key=len, reverse=True):
        if s == full:
            continue
        c = {s: 1.0}
        for t, ct in coef.items():
            if set(s) < set(t):
                w = float(np.prod([sizes[f] for f in range(k) if f not in t]))
                for u, v in ct.items():
                    c[u] = c.get(u, 0.0) - w * v
        scale = float(np.prod([sizes[f] for f in range(k) if f not in s]))
        coef[s] = {u: v / scale for u, v in c.items()}
    return coef


def components(y: np.ndarray, k: int) -> dict[Subset, np.ndarray]:
    """Variance of every effect (the full set: the residual), method of moments, negatives set to 0."""
    ms = mean_squares(y, k)
    return {s: np.maximum(sum(v * ms[u][0] for u, v in c.items()), 0.0)
            for s, c in _coefficients(y.shape[-k:]).items()}


def _satterthwaite(c: dict[Subset, float], ms: dict[Subset, tuple[float, int]]) -> tuple[float, float, float]:
    """Estimate and 95% interval of theta = sum(c_u MS_u) = P - N (P, N: its positive and negative parts).

    The interval is a scaled chi-square with Satterthwaite's df. Two guards at the boundary
    theta = 0, where that approximation breaks: the lower end is 0 unless P / N, an
    approximate F with Satterthwaite df, rejects theta = 0 at 2.5%; where the estimate is 0
    or less, the upper end is P's own (conservative).
    """
    from scipy import stats as sps

    def part(sign: int) -> tuple[float, float]:
        terms = [(v * ms[u][0], ms[u][1]) for u, v in c.items() if np.sign(v) == sign]
        total = sum(abs(t) for t, _ in terms)
        denom = sum(t * t / df for t, df in terms)
        return total, (total * total / denom if denom > 0 else np.inf)

    (pos, nu_p), (neg, nu_n) = part(1), part(-1)
    est = pos - neg
    if pos <= 0:
        return 0.0, 0.0, 0.0
    if est <= 0:
        with np.errstate(divide="ignore", over="ignore"):
            return 0.0, 0.0, nu_p * pos / sps.chi2.ppf(0.025, nu_p)
    nu = est ** 2 / sum((v * ms[u][0]) ** 2 / ms[u][1] for u, v in c.items())
    with np.errstate(divide="ignore", over="ignore"):   # df near 0: an unbounded upper end
        low, high = nu * est / sps.chi2.ppf(0.975, nu), nu * est / sps.chi2.ppf(0.025, nu)
    if neg > 0 and sps.f.sf(pos / neg, nu_p, nu_n) > 0.025:
        low = 0.0      # not shown to differ from 0
    return est, low, high


def split(values: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """The variance of ``values`` (one axis per source in ``names``, every combination once) split by
    source: one row per component (each varied source, "interactions", "residual") with its
    variance, a 95% Satterthwaite interval, and its share of the total (point estimate)."""
    y = np.asarray(values, dtype=float)
    keep = [i for i, n in enumerate(y.shape) if n > 1]       # a source seeded once is not varied
    y = y.reshape([y.shape[i] for i in keep])
    names = [names[i] for i in keep]
    k = len(keep)
    if k < 2:
        return pd.DataFrame()
    ms = {s: (float(v), df) for s, (v, df) in mean_squares(y, k).items()}
    coef = _coefficients(y.shape)
    groups = {names[i]: [(i,)] for i in range(k)}
    groups["interactions"] = [s for s in coef if 1 < len(s) < k]
    groups["residual"] = [tuple(range(k))]
    rows = []
    for name, members in groups.items():
        if not members:
            continue
        combined: dict[Subset, float] = {}
        for s in members:
            for u, v in coef[s].items():
                combined[u] = combined.get(u, 0.0) + v
        est, low, high = _satterthwaite(combined, ms)
        if name in names and y.shape[names.index(name)] < MIN_LEVELS:
            low = high = np.nan           # too few seeds of this source for an interval that holds
        rows.append({"component": name, "variance": max(est, 0.0), "var_low": low, "var_high": high})
    out = pd.DataFrame(rows)
    out["share"] = out["variance"] / out["variance"].sum() if out["variance"].sum() > 0 else np.nan
    return out


def variance_table(ok: pd.DataFrame, axes: Sequence[str], outcome: str) -> pd.DataFrame:
    """Per cell of a crossed design: the split of the plain arm's, the dropout arm's ``outcome``
    and of their paired delta. Cells without every combination of stream seeds are left out."""
    cols = ["data_seed", "init_seed", "mask_seed"]
    if ok.empty or any(c not in ok or ok[c].isna().all() for c in cols):
        return pd.DataFrame()
    rows = []
    groups = ok.groupby(list(axes), sort=True) if axes else [((), ok)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        levels = [sorted(g[c].unique()) for c in cols]
        shape = [len(v) for v in levels]
        if len(g) != int(np.prod(shape)) or g[cols].duplicated().any():
            continue                               # incomplete (a partial sweep): no split
        idx = tuple(g[c].map({v: i for i, v in enumerate(lv)}).to_numpy() for c, lv in zip(cols, levels))
        for name, column in (("plain", f"{outcome}_plain"), ("dropout", f"{outcome}_dropout"),
                             ("delta", f"delta_{outcome}")):
            y = np.full(shape, np.nan)
            y[idx] = g[column].to_numpy(dtype=float)
            part = split(y, SOURCES)
            for _, r in part.iterrows():
                rows.append({**dict(zip(axes, key)), "quantity": name, **r.to_dict()})
    return pd.DataFrame(rows)
