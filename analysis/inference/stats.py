"""Statistics of paired seeds: pure functions over numpy arrays.

Data contract, repeated in every docstring: ``samples`` is ``(cells, n)`` or ``(n,)``,
one value per seed (for a paired comparison, ``delta`` = test MSE(plain) - test MSE(dropout)
on the same seed; > 0 means dropout helped). Every stochastic function takes its seed.
Intervals are 95% two-sided unless ``confidence`` says otherwise.

The default interval of a mean is Student's t (``method="t"``): simulated at 3 to 30 seeds it
keeps 93-97% for Gaussian, moderately skewed and heavy-tailed deltas, where the BCa bootstrap
covers 71-86% at 3-6 seeds (``tests/test_stats.py``, ``docs/statistics.md``). No interval is
given below ``MIN_SEEDS`` seeds. The median's default is the distribution-free order-statistic
interval (exact, conservative; it needs 6 seeds for 95%).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Literal

import numpy as np
from scipy import stats

Method = Literal["t", "BCa", "percentile", "basic"]
METHODS = ("t", "BCa", "percentile", "basic")
DEFAULT_RESAMPLES = 9_999
DEFAULT_METHOD: Method = "t"
MIN_SEEDS = 3  # fewer seeds than this: no interval at all (a 2-seed interval is all width, or none)
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
    method: Literal["BCa", "percentile", "basic"] = "BCa",
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


def t_interval(samples: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student's t interval of the mean of each row: mean -+ t_{n-1} sd / sqrt(n).

    samples: (cells, n) or (n,). The same numbers as ``scipy.stats.ttest_1samp(row).confidence_interval()``,
    vectorised. NaN where n < 2; all values equal gives (mean, mean), the mean as numpy sums it.
    """
    x = np.asarray(samples, dtype=float)
    squeeze = x.ndim == 1
    x = np.atleast_2d(x)
    n = x.shape[1]
    low = high = np.full(x.shape[0], np.nan)
    if n >= 2:
        mean = x.mean(axis=-1)
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
        low, high = mean - half, mean + half
    return (low[0], high[0]) if squeeze else (low, high)


def median_interval(samples: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Distribution-free interval of the median of each row from order statistics.

    [x_(k), x_(n+1-k)] with the largest k for which the binomial(n, 1/2) coverage is at least
    ``confidence``; exact for any continuous distribution, so conservative. NaN where no such k
    exists (n < 6 at 95%).
    """
    x = np.asarray(samples, dtype=float)
    squeeze = x.ndim == 1
    x = np.sort(np.atleast_2d(x), axis=-1)
    n = x.shape[1]
    low = high = np.full(x.shape[0], np.nan)
    # coverage of [x_(k), x_(n+1-k)] is 1 - 2 P(B <= k - 1), B ~ binomial(n, 1/2)
    ks = [k for k in range(1, n // 2 + 1) if 1 - 2 * stats.binom.cdf(k - 1, n, 0.5) >= confidence - 1e-12]
    if ks:
        k = ks[-1]
        low, high = x[:, k - 1].copy(), x[:, n - k].copy()
    return (low[0], high[0]) if squeeze else (low, high)


def interval(
    samples: np.ndarray,
    *,
    statistic: str = "mean",
    method: Method = DEFAULT_METHOD,
    confidence: float = 0.95,
    seed: int | np.random.SeedSequence = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """The report's interval of the mean or median of each row; NaN below ``MIN_SEEDS`` seeds.

    method "t": Student's t for the mean, the order-statistic interval for the median;
    "BCa", "percentile", "basic": ``bootstrap_ci`` (kept for comparison: BCa under-covers at
    small n). samples: (cells, n) or (n,).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: must be one of {', '.join(METHODS)}")
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic={statistic!r}: must be 'mean' or 'median'")
    x = np.asarray(samples, dtype=float)
    if np.atleast_2d(x).shape[1] < MIN_SEEDS:
        nan = np.full(np.atleast_2d(x).shape[0], np.nan)
        return (nan[0], nan[0]) if x.ndim == 1 else (nan, nan.copy())
    if method == "t":
        fn = t_interval if statistic == "mean" else median_interval
        return fn(x, confidence=confidence)
    return bootstrap_ci(x, statistic=statistic, seed=seed, n_resamples=n_resamples, method=method,
                        confidence=confidence)


def hodges_lehmann(delta: np.ndarray) -> np.ndarray:
    """Hodges-Lehmann estimate per row: the median of the Walsh averages (d_i + d_j) / 2, i <= j.

    The pseudo-median the Wilcoxon signed-rank test is about; its sign is the test's direction.
    delta: (cells, n) or (n,); NaN where n = 0.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    n = d.shape[1]
    if n == 0:
        out = np.full(d.shape[0], np.nan)
    else:
        i, j = np.triu_indices(n)
        # a few rows at a time: 100 cells of 1,000 seeds hold 50 million Walsh averages (400 MB) at once
        rows = max(1, WALSH_CHUNK // len(i))
        out = np.concatenate([np.median((d[k:k + rows, i] + d[k:k + rows, j]) / 2, axis=-1)
                              for k in range(0, d.shape[0], rows)] or [np.empty(0)])
    return out[0] if np.ndim(delta) == 1 else out


WALSH_CHUNK = 2_000_000   # Walsh averages held at once by hodges_lehmann (16 MB)


def tost_p(delta: np.ndarray, margin: float | np.ndarray) -> np.ndarray:
    """Equivalence p-value (two one-sided t-tests) that the mean of each row lies within +-margin.

    delta: (cells, n); margin > 0, a scalar or one per row. p = max of the one-sided p-values
    against mean <= -margin and mean >= +margin (``statsmodels`` ``DescrStatsW(d).ttost_mean(-m, m)``).
    A small p says the mean is within the margin. NaN where n < 2.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    n = d.shape[1]
    margin = np.broadcast_to(np.asarray(margin, dtype=float), d.shape[:1])
    if n < 2:
        out = np.full(d.shape[0], np.nan)
    else:
        mean = d.mean(axis=-1)
        se = d.std(axis=-1, ddof=1) / math.sqrt(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_low = stats.t.sf((mean + margin) / se, n - 1)    # H0: mean <= -margin
            p_high = stats.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= +margin
        out = np.maximum(p_low, p_high)
        inside = (se == 0) & (np.abs(mean) < margin)
        out = np.where(se == 0, np.where(inside, 0.0, 1.0), out)
    return out[0] if np.ndim(delta) == 1 else out


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


def seeds_to_detect(effect: float, sd: float, *, family: int = 1, alpha: float = 0.05,
                    power: float = 0.8) -> float:
    """Seeds a cell needs to detect a true mean paired difference ``effect`` with ``power``.

    ``sd`` is the per-seed SD of the difference (from a pilot or the sweep itself). The
    correction is Holm's over ``family`` cells: its first step tests at alpha / family, so a
    paired t-test at that level (noncentral t, ``seeds_for_power``) gives a first count. The
    verdict's test (``analysis.inference.mean_test.mean_test``: the larger p of t and Hall's skewness-
    corrected t) is a little less powerful at small n, so the count is then raised until that
    test reaches ``power`` on 4,000 simulated Gaussian cells (seeded; Monte Carlo SE 0.6 points).
    inf when effect = 0, NaN when sd is unknown.
    """
    from .mean_test import mean_test

    if not (np.isfinite(effect) and np.isfinite(sd)) or sd <= 0:
        return math.nan
    if effect == 0:
        return math.inf
    dz, a = abs(effect) / sd, alpha / max(1, family)
    n = seeds_for_power(dz, power=power, alpha=a)
    if not np.isfinite(n) or n > 2_000:
        return n
    n = max(3, int(n))
    while n <= 2_000:
        z = np.random.default_rng([20_240, n]).standard_normal((4_000, n))
        if np.mean(mean_test(z + dz)[0] < a) >= power:
            return float(n)
        n += max(1, n // 20)
    return math.inf


def seeds_to_show_equivalence(margin: float, sd: float, *, family: int = 1, alpha: float = 0.05,
                              power: float = 0.8, max_seeds: int = 1_000_000) -> float:
    """Seeds for the TOST test to show |mean| < ``margin`` with ``power`` when the true mean is 0.

    The usual t approximation (Chow, Shao & Wang, *Sample Size Calculations*, 3.2):
    margin sqrt(n) / sd >= t_{1 - alpha', n-1} + t_{1 - beta/2, n-1}, alpha' = alpha / family.
    """
    if not (np.isfinite(margin) and np.isfinite(sd)) or sd <= 0 or margin <= 0:
        return math.nan
    a = alpha / max(1, family)
    z = stats.norm.ppf(1 - a) + stats.norm.ppf(1 - (1 - power) / 2)
    n = max(2, int((z * sd / margin) ** 2) - 2)
    while n <= max_seeds:
        window = np.arange(n, n + 16)
        need = stats.t.ppf(1 - a, window - 1) + stats.t.ppf(1 - (1 - power) / 2, window - 1)
        ok = np.flatnonzero(margin * np.sqrt(window) / sd >= need)
        if ok.size:
            return float(window[ok[0]])
        n += 16
    return math.inf


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
    """n, mean, median, sd and the interval of the mean of each row (``interval``, ``method``).

    samples: (cells, n). Returns a dict of (cells,) arrays: n, mean, median, sd, ci_low, ci_high.
    """
    x = np.atleast_2d(np.asarray(samples, dtype=float))
    cells, n = x.shape
    low, high = interval(x, seed=seed, n_resamples=n_resamples, method=method)
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
    margin: float | np.ndarray = math.nan,
) -> dict[str, np.ndarray]:
    """Everything the report says about one paired difference per cell.

    delta: (cells, n) = test MSE(plain) - test MSE(dropout) per seed. Returns (cells,) arrays:
    n, mean, median, sd, ci_low/ci_high (mean, ``interval``), median_ci_low/median_ci_high,
    hl (Hodges-Lehmann pseudo-median), dz, p_improve (+ _low/_high, Wilson), p_wilcoxon, and
    p_tost (equivalence within +-``margin``; NaN without a margin). Intervals are NaN below
    ``MIN_SEEDS``. With a bootstrap ``method``, the mean's resamples come from
    ``SeedSequence([seed, 0])`` and the median's from ``SeedSequence([seed, 1])``.
    """
    d = np.atleast_2d(np.asarray(delta, dtype=float))
    cells, n = d.shape
    out = {
        "n": np.full(cells, n),
        "mean": d.mean(axis=-1) if n else np.full(cells, np.nan),
        "median": np.median(d, axis=-1) if n else np.full(cells, np.nan),
        "sd": d.std(axis=-1, ddof=1) if n >= 2 else np.full(cells, np.nan),
    }
    out["ci_low"], out["ci_high"] = interval(
        d, seed=np.random.SeedSequence([seed, 0]), n_resamples=n_resamples, method=method)
    out["median_ci_low"], out["median_ci_high"] = interval(
        d, statistic="median", seed=np.random.SeedSequence([seed, 1]), n_resamples=n_resamples,
        method=method)
    out["hl"] = hodges_lehmann(d)
    out["dz"] = cohens_dz(d)
    out["p_improve"], out["p_improve_low"], out["p_improve_high"] = prob_improvement(d)
    out["p_wilcoxon"] = wilcoxon_rows(d)
    margin = np.broadcast_to(np.asarray(margin, dtype=float), (cells,))
    out["p_tost"] = np.where(np.isfinite(margin) & (margin > 0), tost_p(d, np.where(margin > 0, margin, 1.0)),
                             np.nan) if cells else np.zeros(0)
    return out
