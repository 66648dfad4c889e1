"""Statistics of paired seeds: pure functions over numpy arrays.

Data contract, repeated in every docstring: ``samples`` is ``(cells, n)`` or ``(n,)``,
one value per seed (for a paired comparison, ``delta`` = test MSE(plain) - test MSE(dropout)
on the same seed; > 0 means dropout helped). Every stochastic function takes its seed.
Intervals are 95% two-sided unless ``confidence`` says otherwise.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Literal

import numpy as np
from scipy import stats

Method = Literal["BCa", "percentile", "basic"]
DEFAULT_RESAMPLES = 9_999
DEFAULT_METHOD: Method = "BCa"
_MAX_BATCH_ELEMENTS = 4_000_000  # bound on resamples x cells x n held at once (~32 MB of float64)

_STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "mean": lambda x, axis=-1: np.mean(x, axis=axis),
    "median": lambda x, axis=-1: np.median(x, axis=axis),
}


def bootstrap_ci(
    samples: np.ndarray,
    *,
    statistic: str = "mean",
    seed: int | np.random.SeedSequence = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    method: Method = DEFAULT_METHOD,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap CI of the mean or median of each row, with ``scipy.stats.bootstrap``.

    samples: (cells, n) or (n,), no NaN. Returns (low, high), each of shape (cells,) or ().
    Rows are resampled independently in one vectorised call. Degenerate rows are answered
    without resampling: n < 2 gives NaN; all values equal gives (value, value).
    """
    x = np.asarray(samples, dtype=float)
    squeeze = x.ndim == 1
    x = np.atleast_2d(x)
    cells, n = x.shape
    low = np.full(cells, np.nan)
    high = np.full(cells, np.nan)
    if n >= 2 and cells:
        const = np.ptp(x, axis=-1) == 0
        low[const] = high[const] = x[const, 0]
        live = ~const
        if live.any():
            batch = max(1, _MAX_BATCH_ELEMENTS // (int(live.sum()) * n))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy warns on BCa's rare degenerate jackknife
                res = stats.bootstrap(
                    (x[live],), _STATISTICS[statistic], n_resamples=n_resamples, batch=batch,
                    vectorized=True, axis=-1, confidence_level=confidence, method=method,
                    rng=np.random.default_rng(seed),
                )
            low[live] = res.confidence_interval.low
            high[live] = res.confidence_interval.high
    return (low[0], high[0]) if squeeze else (low, high)


def cohens_dz(delta: np.ndarray) -> np.ndarray:
    """Cohen's d_z = mean(delta) / sd(delta) (ddof=1) per row.

    delta: (cells, n) or (n,). NaN where n < 2; +-inf where sd = 0 and the mean is not 0; 0 where both are.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    out = np.full(d.shape[0], np.nan)
    if d.shape[1] >= 2:
        mean = d.mean(axis=-1)
        sd = d.std(axis=-1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(sd > 0, mean / np.where(sd > 0, sd, 1.0), np.sign(mean) * np.inf)
        out = np.where((sd == 0) & (mean == 0), 0.0, out)
    return out[0] if np.ndim(delta) == 1 else out


def prob_improvement(delta: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(delta > 0): the fraction of seeds where dropout helped, with a Wilson score interval.

    delta: (cells, n) or (n,). Returns (p, low, high); ties (delta == 0) count as not improved.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    n = d.shape[1]
    k = (d > 0).sum(axis=-1)
    p, low, high = wilson_interval(k, n, confidence=confidence)
    if np.ndim(delta) == 1:
        return p[0], low[0], high[0]
    return p, low, high


def wilson_interval(k: np.ndarray, n: int | np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n; arrays broadcast. NaN where n = 0."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float) + 0 * k
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    bad = n <= 0
    return (np.where(bad, np.nan, p), np.where(bad, np.nan, np.clip(centre - half, 0, 1)),
            np.where(bad, np.nan, np.clip(centre + half, 0, 1)))


def wilcoxon_p(delta: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p on one cell's differences: ``scipy.stats.wilcoxon(delta)``.

    delta: (n,). scipy's defaults (zero_method="wilcox", method="auto"); NaN for n = 0.
    All-zero differences give scipy's answer, p = 1.
    """
    d = np.asarray(delta, dtype=float)
    if d.size == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-zero or tiny samples: scipy warns, answers anyway
        return float(stats.wilcoxon(d).pvalue)


def wilcoxon_rows(delta: np.ndarray) -> np.ndarray:
    """``wilcoxon_p`` of every row. delta: (cells, n) -> (cells,).

    Rows without zeros or tied magnitudes go through one vectorised ``scipy.stats.wilcoxon(...,
    axis=-1)`` call (the same p-values, 100x faster); the others, where scipy takes a slow path
    when vectorised, one at a time.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    out = np.full(d.shape[0], np.nan)
    if d.shape[1] == 0:
        return out
    mags = np.sort(np.abs(d), axis=-1)
    plain = (mags[:, 0] > 0) & (np.diff(mags, axis=-1) > 0).all(axis=-1)
    if plain.any():
        out[plain] = stats.wilcoxon(d[plain], axis=-1).pvalue
    for i in np.flatnonzero(~plain):
        out[i] = wilcoxon_p(d[i])
    return out


def adjust_pvalues(pvalues: np.ndarray, *, method: Literal["holm", "fdr_bh"]) -> np.ndarray:
    """p-values adjusted across the family, by ``statsmodels.stats.multitest.multipletests``.

    pvalues: (cells,). The family is the cells with a finite p; NaN stays NaN and is not
    counted. method: "holm" (family-wise error) or "fdr_bh" (Benjamini-Hochberg, false
    discovery rate); always passed explicitly (statsmodels' default is Holm-Sidak).
    """
    from statsmodels.stats.multitest import multipletests

    if method not in ("holm", "fdr_bh"):
        raise ValueError(f"method={method!r}: must be 'holm' or 'fdr_bh'")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=0.05, method=method)[1]
    return out


def paired_t_power(dz: float, n: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with n seeds when the true effect is d_z (noncentral t)."""
    if n < 2:
        return math.nan
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(dz) * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(dz: float, *, power: float = 0.8, alpha: float = 0.05, max_seeds: int = 1_000_000) -> float:
    """Smallest number of seeds giving the paired t-test ``power`` at effect d_z (two-sided ``alpha``).

    A paired t approximation: the Wilcoxon test needs about 5% more seeds under normality.
    Returns inf for d_z = 0 (or beyond ``max_seeds``), NaN for NaN.
    """
    if not np.isfinite(dz):
        return math.nan if np.isnan(dz) else 2.0
    if dz == 0:
        return math.inf
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, int(math.floor((z / abs(dz)) ** 2)) - 2)  # the normal approximation, from just below
    if n > max_seeds:
        return math.inf
    while True:  # the t answer is a few seeds above the normal one: test a window at once
        window = np.arange(n, n + 16)
        df = window - 1
        crit = stats.t.ppf(1 - alpha / 2, df)
        nc = abs(dz) * np.sqrt(window)
        reached = np.flatnonzero(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= power)
        if reached.size:
            return float(window[reached[0]])
        n += 16


def effective_df(gap: np.ndarray, n_train: np.ndarray, noise_std: np.ndarray) -> np.ndarray:
    """Effective degrees of freedom N * gap / (2 sigma^2) (ESL 7.4); arrays broadcast; NaN where sigma = 0."""
    gap = np.asarray(gap, dtype=float)
    sigma2 = np.asarray(noise_std, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sigma2 > 0, np.asarray(n_train, dtype=float) * gap / (2 * sigma2), np.nan)


def describe(
    samples: np.ndarray,
    *,
    seed: int | np.random.SeedSequence = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    method: Method = DEFAULT_METHOD,
) -> dict[str, np.ndarray]:
    """n, mean, median, sd and the bootstrap CI of the mean of each row.

    samples: (cells, n). Returns a dict of (cells,) arrays: n, mean, median, sd, ci_low, ci_high.
    """
    x = np.atleast_2d(np.asarray(samples, dtype=float))
    cells, n = x.shape
    low, high = bootstrap_ci(x, seed=seed, n_resamples=n_resamples, method=method)
    empty = n == 0
    return {
        "n": np.full(cells, n),
        "mean": np.full(cells, np.nan) if empty else x.mean(axis=-1),
        "median": np.full(cells, np.nan) if empty else np.median(x, axis=-1),
        "sd": np.full(cells, np.nan) if n < 2 else x.std(axis=-1, ddof=1),
        "ci_low": low, "ci_high": high,
    }


def paired_summary(
    delta: np.ndarray,
    *,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    method: Method = DEFAULT_METHOD,
    power: float = 0.8,
    alpha: float = 0.05,
) -> dict[str, np.ndarray]:
    """Everything the report says about one paired difference per cell.

    delta: (cells, n) = test MSE(plain) - test MSE(dropout) per seed. Returns (cells,) arrays:
    n, mean, median, sd, ci_low/ci_high (mean), median_ci_low/median_ci_high, dz,
    p_improve (+ _low/_high, Wilson), p_wilcoxon, seeds_80 (seeds for ``power`` at the observed d_z).
    All rows are resampled in one vectorised ``scipy.stats.bootstrap`` call per statistic, the
    mean's from ``SeedSequence([seed, 0])`` and the median's from ``SeedSequence([seed, 1])``:
    ``bootstrap((delta,), np.mean, axis=-1, rng=default_rng(SeedSequence([seed, 0])), ...)``
    reproduces the mean's intervals exactly.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    cells, n = d.shape
    out = {
        "n": np.full(cells, n),
        "mean": d.mean(axis=-1) if n else np.full(cells, np.nan),
        "median": np.median(d, axis=-1) if n else np.full(cells, np.nan),
        "sd": d.std(axis=-1, ddof=1) if n >= 2 else np.full(cells, np.nan),
    }
    out["ci_low"], out["ci_high"] = bootstrap_ci(
        d, seed=np.random.SeedSequence([seed, 0]), n_resamples=n_resamples, method=method)
    out["median_ci_low"], out["median_ci_high"] = bootstrap_ci(
        d, statistic="median", seed=np.random.SeedSequence([seed, 1]), n_resamples=n_resamples,
        method=method)
    out["dz"] = cohens_dz(d)
    out["p_improve"], out["p_improve_low"], out["p_improve_high"] = prob_improvement(d)
    out["p_wilcoxon"] = wilcoxon_rows(d)
    out["seeds_80"] = np.array([seeds_for_power(z, power=power, alpha=alpha) for z in out["dz"]], dtype=float)
    return out
