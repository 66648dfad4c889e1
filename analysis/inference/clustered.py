"""Least squares with errors clustered by seed, and the interval and test built on it.

Pure functions over arrays. Rows are trials (one seed in one cell); the columns of ``Y`` are
replications: one for a sweep, thousands for a coverage simulation, fitted in one pass
because the design and its cluster adjustments do not depend on ``Y``.

A seed's rows are one cluster, so any correlation among them is allowed: within one N every
rate shares the data, the plain arm and the masks (delta correlates about 0.6 across rates),
across N only the initial weights (about 0.05). The covariance is CR2 (Bell & McCaffrey 2002;
Pustejovsky & Tipton 2018) read against t on G - 1 degrees of freedom, G = number of seeds.
When every seed has every cell, CR2 is the sample covariance of the per-seed coefficient
vectors divided by G: the t intervals, the Fieller sets and the Hotelling F below are then
exact for normal deltas, whatever the correlation within a seed.
"""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

INTERVAL, RAYS, LINE = 0, 1, 2     # the shapes of a Fieller set: [lo, hi]; (-inf, lo] u [hi, inf); everything


def cluster_ols(X: np.ndarray, groups: np.ndarray, Y: np.ndarray, kind: str = "CR2") -> tuple[np.ndarray, np.ndarray]:
    """OLS of every column of ``Y`` on ``X`` with a covariance clustered by ``groups``.

    X: (rows, k) design of full column rank; groups: (rows,) cluster labels (seeds);
    Y: (rows,) or (rows, reps). kind: "CR2" (Bell-McCaffrey: each cluster's residuals scaled
    by (I - H_gg)^(-1/2)) or "CR1" (statsmodels' cluster default: CR0 * G/(G-1) * (n-1)/(n-k)).
    Returns beta (k, reps) and cov (reps, k, k).
    """
    if kind not in ("CR1", "CR2"):
        raise ValueError(f"kind={kind!r}: expected 'CR1' or 'CR2'")
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)                 # (rows, reps)
    n, k = X.shape
    bread = np.linalg.inv(X.T @ X)                                     # (k, k)
    beta = bread @ (X.T @ Y)                                           # (k, reps)
    resid = Y - X @ beta                                               # (rows, reps)
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    G = int(codes.max()) + 1
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes, minlength=G))[:-1])
    factors: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}   # CR2's factors, once per distinct cluster design
    scores = np.empty((G, k, Y.shape[1]))                              # (clusters, k, reps)
    for g, rows in enumerate(members):                                 # each cluster's rows, in frame order
        Xg, eg = X[rows], resid[rows]
        if kind == "CR2":
            # in a balanced grid every seed has the same design: one eigendecomposition, not one per seed
            key = Xg.tobytes()
            if key not in factors:
                factors[key] = _cr2_factors(Xg, bread)
            v, inv_sqrt = factors[key]
            eg = (v * inv_sqrt) @ (v.T @ eg)
        scores[g] = Xg.T @ eg
    meat = np.einsum("gkr,glr->rkl", scores, scores)                   # (reps, k, k)
    cov = bread @ meat @ bread
    if kind == "CR1":
        cov = cov * (G / (G - 1) * (n - 1) / (n - k))
    return beta, cov


def _cr2_factors(Xg: np.ndarray, bread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors v and the inverse square roots of the eigenvalues of I - H_gg, for one cluster's rows Xg."""
    w, v = np.linalg.eigh(np.eye(len(Xg)) - Xg @ bread @ Xg.T)
    # a cluster with leverage 1 in some direction: the generalised inverse square root
    return v, np.where(w > 1e-10, 1.0 / np.sqrt(np.clip(w, 1e-10, None)), 0.0)


def t_quantile(seeds: int, level: float = 0.95) -> float:
    """The two-sided t quantile on seeds - 1 degrees of freedom."""
    return float(sps.t.ppf(0.5 + level / 2, seeds - 1))


def fieller(beta: np.ndarray, cov: np.ndarray, u: np.ndarray, w: np.ndarray,
            t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fieller's set for the ratio theta = (u' beta) / (w' beta), for every replication.

    beta: (k, reps); cov: (reps, k, k); u, w: (k,) weights; t: the quantile.
    The set is {theta : (u'b - theta w'b)^2 <= t^2 Var(u'b - theta w'b)}.
    Returns estimate, lo, hi (reps,) and shape (reps,): INTERVAL is [lo, hi], RAYS is
    (-inf, lo] u [hi, inf), LINE is every value (lo, hi NaN).
    """
    num, den = u @ beta, w @ beta                                       # (reps,)
    v_nn = np.einsum("i,rij,j->r", u, cov, u)
    v_nd = np.einsum("i,rij,j->r", u, cov, w)
    v_dd = np.einsum("i,rij,j->r", w, cov, w)
    a = den ** 2 - t ** 2 * v_dd          # a theta^2 - 2 b theta + c <= 0
    b = num * den - t ** 2 * v_nd
    c = num ** 2 - t ** 2 * v_nn
    disc = b ** 2 - a * c
    root = np.sqrt(np.clip(disc, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = (b - root) / a, (b + root) / a
        estimate = num / den
    bounded = a > 0
    shape = np.where(bounded, INTERVAL, np.where(disc > 0, RAYS, LINE))
    lo = np.where(bounded, r1, np.where(disc > 0, np.minimum(r1, r2), np.nan))
    hi = np.where(bounded, r2, np.where(disc > 0, np.maximum(r1, r2), np.nan))
    return estimate, lo, hi, shape


def in_fieller(theta: float | np.ndarray, lo: np.ndarray, hi: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Whether ``theta`` lies in each Fieller set (reps,) from ``fieller``."""
    with np.errstate(invalid="ignore"):
        inside, outside = (lo <= theta) & (theta <= hi), (theta <= lo) | (theta >= hi)
    return np.where(shape == INTERVAL, inside, np.where(shape == RAYS, outside, True))


def lack_of_fit(cell_design: np.ndarray, cells: np.ndarray, groups: np.ndarray,
                Y: np.ndarray) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Do the cell means lie on the trend? A Wald test with the seed-clustered covariance.

    cell_design: (C, k) the trend's columns at each cell; cells: (rows,) cell codes 0..C-1;
    groups: (rows,) seeds; Y: (rows,) or (rows, reps). The cell means (one indicator per cell,
    CR2 covariance V) are tested on the q = C - rank contrasts R that the trend sets to zero:
    W = (R m)' (R V R')^-1 (R m), F = (G - q) / (q (G - 1)) W on (q, G - q) df, Hotelling's
    correction. Returns F (reps,), q, G - q, p (reps,); NaN where q = 0 or G <= q.
    """
    C = cell_design.shape[0]
    u, s, _ = np.linalg.svd(np.asarray(cell_design, dtype=float), full_matrices=True)
    rank = int((s > s.max() * 1e-10).sum())
    R = u[:, rank:].T                                                  # (q, C)
    q, G = R.shape[0], len(np.unique(np.asarray(groups)))
    Y = np.asarray(Y, dtype=float).reshape(len(cells), -1)
    if q == 0 or G <= q:
        nan = np.full(Y.shape[1], np.nan)
        return nan, q, max(G - q, 0), nan
    means, V = cluster_ols(np.eye(C)[np.asarray(cells)], groups, Y)     # (C, reps), (reps, C, C)
    d = (R @ means).T[..., None]                                        # (reps, q, 1)
    wald = (d.transpose(0, 2, 1) @ np.linalg.solve(R @ V @ R.T, d))[:, 0, 0]
    f = (G - q) / (q * (G - 1)) * wald
    return f, q, G - q, sps.f.sf(f, q, G - q)
