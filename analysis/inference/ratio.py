"""A relative effect with an interval that carries the uncertainty of both means.

"Dropout cuts the error by 14% of the plain net's" is mean(delta) / mean(plain) over the same
seeds. Dividing the ends of delta's interval by the plain mean treats the plain mean as known;
it is not (its SD over seeds is about a third of its mean), and it is correlated with delta
(a seed where the plain net does badly is a seed where dropout has room to help).

``fieller`` gives Fieller's interval for a ratio of two means from paired samples: the set of
R for which mean(a) - R mean(b) is not significantly different from 0 by a paired t-test,
with the t quantile at n - 1 degrees of freedom. Pure numpy; leading axes broadcast.
"""
from __future__ import annotations

import numpy as np
from scipy import stats as sps


def fieller(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio mean(a) / mean(b) over paired samples and its Fieller interval.

    a, b: (..., n) values paired along the last axis (seed i of ``a`` with seed i of ``b``).
    Returns (ratio, low, high), each of shape (...). Where mean(b) is not significantly
    different from 0 at this level, the interval is unbounded: (-inf, inf).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = a.shape[-1]
    ma, mb = a.mean(axis=-1), b.mean(axis=-1)
    da, db = a - ma[..., None], b - mb[..., None]
    v11 = (da * da).sum(axis=-1) / (n - 1) / n          # variance of mean(a)
    v22 = (db * db).sum(axis=-1) / (n - 1) / n          # variance of mean(b)
    v12 = (da * db).sum(axis=-1) / (n - 1) / n          # their covariance
    t2 = sps.t.ppf(0.5 + confidence / 2, n - 1) ** 2
    # (ma - R mb)^2 <= t^2 (v11 - 2 R v12 + R^2 v22), a quadratic q R^2 - 2 h R + c <= 0
    q, h, c = mb ** 2 - t2 * v22, ma * mb - t2 * v12, ma ** 2 - t2 * v11
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(h ** 2 - q * c, 0.0))
        bounded = q > 0
        low = np.where(bounded, (h - root) / q, -np.inf)
        high = np.where(bounded, (h + root) / q, np.inf)
        ratio = ma / mb
    return ratio, low, high
