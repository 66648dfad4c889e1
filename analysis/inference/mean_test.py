"""The test behind every verdict: is a cell's mean paired delta different from 0?

One estimand (the mean delta the report quotes), one test, one level. Data contract, as in
``analysis.inference.stats``: ``delta`` is ``(..., cells, n)``, one value per seed; leading axes are
replications (a simulation) and are never mixed with the family axis ``cells``.

**The per-cell test.** Student's one-sample t-test on the mean, and Hall's (1992)
skewness-corrected t with the cell's own sample skewness; a cell's p-value is the larger of
the two, and their directions must agree. The t-test alone holds its level on symmetric
deltas, light- or heavy-tailed, but right-skewed deltas (as real ones are: a plain net
sometimes overfits badly) give it a heavy negative tail, so at Holm's small levels it claims
false "hurts" (12 cells x 30 seeds, gamma deltas of skewness 2.3: 23% of null sweeps).
Hall's statistic removes the first-order skewness term of the t statistic's distribution,
but with a noisy sample skewness it over-corrects symmetric data; demanding both keeps the
t-test's level where it holds and Hall's where the t-test fails.

**The family's skewness.** At 5-10 seeds no cell can see its own skewness, and strongly
skewed deltas still break both tests. So the family's mean sample skewness g (the cells'
adjusted Fisher-Pearson G1, averaged) is mapped to the population skewness gamma that gives
that mean at the family's seed count, and the rule is simulated on null deltas of that
shape (gamma-distributed, centred) at the family's size: the largest skewness at which the
simulated chance of any false direction holds alpha is found by bisection. A family more
skewed than that has its directions against the skew (a mean below 0 when the deltas are
right-skewed) withheld, with the seeds at which its skewness would be safe (the same
simulation, an estimate: note G1 under-reads skewness at few seeds, hence the calibration).
Every simulation here is seeded and vectorised: all replications as one array.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
GAMMA_GRID = np.round(np.arange(0.0, 4.01, 0.1), 2)   # population skewness tried by the family check
NULL_REPLICATIONS = 2_000                             # Monte Carlo SE of a 5% rate: 0.5 points
_NULL_BUDGET = 8_000_000                              # simulated deltas per rate, at most: fewer replications
                                                      # for big families (200 at least, SE 1.5 points)
_MAX_ELEMENTS = 8_000_000                             # replications x cells x seeds held at once


def t_statistic(delta: np.ndarray) -> np.ndarray:
    """sqrt(n) mean / sd per row (ddof=1); delta (..., n) -> (...). 0 where sd = 0 and mean = 0."""
    d = np.asarray(delta, dtype=float)
    n = d.shape[-1]
    mean, sd = d.mean(axis=-1), d.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(n))
        return np.where(sd > 0, t, np.where(mean == 0, 0.0, np.sign(mean) * np.inf))


def skewness(delta: np.ndarray) -> np.ndarray:
    """Adjusted Fisher-Pearson sample skewness G1 per row (``scipy.stats.skew(bias=False)``); 0 where sd = 0."""
    d = np.asarray(delta, dtype=float)
    n = d.shape[-1]
    c = d - d.mean(axis=-1, keepdims=True)
    m2, m3 = (c ** 2).mean(axis=-1), (c ** 3).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = m3 / m2 ** 1.5 * math.sqrt(n * (n - 1)) / (n - 2)
    return np.where(m2 > 0, g1, np.where(np.isnan(m2), np.nan, 0.0))


def skewness_se(n: np.ndarray | int) -> np.ndarray:
    """Standard error of G1 for n normal draws: sqrt(6 n (n - 1) / ((n - 2)(n + 1)(n + 3))); NaN below 3."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 3, np.sqrt(6 * n * (n - 1) / ((n - 2) * (n + 1) * (n + 3))), np.nan)


def hall_statistic(delta: np.ndarray) -> np.ndarray:
    """Hall's (1992) skewness-corrected t: T + a T^2 / 3 + a^2 T^3 / 27 + a / 6, a = G1 / sqrt(n).

    Monotone in T for every a, so it is a test statistic with T's direction; referred to t_{n-1}.
    delta (..., n) -> (...).
    """
    d = np.asarray(delta, dtype=float)
    t = t_statistic(d)
    a = skewness(d) / math.sqrt(d.shape[-1])
    with np.errstate(invalid="ignore"):
        return t + a * t ** 2 / 3 + a ** 2 * t ** 3 / 27 + a / 6


def mean_test(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p, direction) per row: the two-sided p that the mean is 0, and the sign of the mean.

    p = max(p of Student's t, p of Hall's corrected t), both on n - 1 df; 1 where the two
    statistics point different ways; 0 where every seed has the same non-zero delta.
    delta (..., n) with n >= 3 -> two (...) arrays; p is NaN below 3 seeds or where a value is missing.
    """
    d = np.asarray(delta, dtype=float)
    n = d.shape[-1]
    shape = d.shape[:-1]
    if n < 3:
        return np.full(shape, np.nan), np.zeros(shape)
    t, h = t_statistic(d), hall_statistic(d)
    p_t = 2 * sps.t.sf(np.abs(t), n - 1)
    p_h = 2 * sps.t.sf(np.abs(h), n - 1)
    same = np.sign(t) == np.sign(h)
    p = np.where(same, np.maximum(p_t, p_h), 1.0)
    p = np.where(np.isinf(t), 0.0, p)                          # every seed the same non-zero delta
    p = np.where(np.isfinite(d).all(axis=-1), p, np.nan)       # a missing value: no test
    return p, np.sign(d.mean(axis=-1))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (the family); NaN entries are not in the family.

    The same numbers as ``statsmodels`` ``multipletests(p, method="holm")[1]`` per row, vectorised
    over leading axes (replications).
    """
    p = np.asarray(p, dtype=float)
    finite = np.isfinite(p)
    m = finite.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1)
    k = np.arange(p.shape[-1])
    adjusted = np.minimum(1.0, np.maximum.accumulate(np.where(k < m, (m - k) * ranked, 0.0), axis=-1))
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return np.where(finite, out, np.nan)


def claims(delta: np.ndarray, *, alpha: float = ALPHA, withhold: float = 0.0) -> np.ndarray:
    """The direction each cell is given: +1 (helps), -1 (hurts) or 0, for every replication at once.

    delta: (..., cells, n), one family of cells per leading index. ``withhold``: a sign whose
    directions the family's skewness check refuses (0: none). This is the rule of
    ``analysis.inference.decisions`` without its words, so simulations test exactly what reports say.
    """
    p, sign = mean_test(delta)
    hit = holm(p) < alpha
    out = np.where(hit, sign, 0.0)
    return np.where((withhold != 0) & (out == withhold), 0.0, out)


def gamma_null(rng: np.random.Generator, gamma: float, size: tuple[int, ...]) -> np.ndarray:
    """Centred draws of skewness ``gamma`` (a gamma distribution of shape 4 / gamma^2; normal at 0)."""
    if gamma == 0:
        return rng.standard_normal(size)
    k = (2.0 / abs(gamma)) ** 2
    return np.sign(gamma) * (rng.gamma(k, size=size) - k)


@lru_cache(maxsize=4096)
def expected_skewness(gamma: float, n: int, *, seed: int = 0, draws: int = 4_000) -> float:
    """E[G1] of n draws from the centred gamma of skewness ``gamma`` (G1 is biased towards 0 at small n)."""
    x = gamma_null(np.random.default_rng([seed, n, int(round(gamma * 100))]), gamma, (draws, n))  # gamma >= 0
    return float(skewness(x).mean())


def calibrated_skewness(mean_g1: float, n: int, *, seed: int = 0) -> float:
    """The population skewness (on ``GAMMA_GRID``) whose expected G1 at n seeds first reaches |mean_g1|."""
    target = abs(float(mean_g1))
    for gamma in GAMMA_GRID[1:]:
        if expected_skewness(float(gamma), n, seed=seed) >= target:
            return float(gamma)
    return float(GAMMA_GRID[-1])


@lru_cache(maxsize=1024)
def null_claim_rate(gamma: float, cells: int, n: int, *, alpha: float = ALPHA, seed: int = 0,
                    replications: int = NULL_REPLICATIONS) -> float:
    """Simulated chance that ``claims`` gives any cell a direction when every true mean is 0.

    Null deltas: independent cells of the centred gamma of skewness ``gamma`` (right-skewed
    for gamma > 0), ``cells`` x ``n`` per replication, no withholding.
    """
    rng = np.random.default_rng([seed, cells, n, int(round(abs(gamma) * 100)), int(gamma < 0)])
    hits, done = 0, 0
    chunk = max(1, _MAX_ELEMENTS // (cells * n))
    while done < replications:
        r = min(chunk, replications - done)
        hits += int((claims(gamma_null(rng, gamma, (r, cells, n)), alpha=alpha) != 0).any(axis=-1).sum())
        done += r
    return hits / replications


def _replications(cells: int, n: int) -> int:
    return max(200, min(NULL_REPLICATIONS, _NULL_BUDGET // (cells * n)))


@lru_cache(maxsize=1024)
def safe_skewness(cells: int, n: int, sign: float, *, alpha: float = ALPHA, seed: int = 0) -> float:
    """The largest skewness on ``GAMMA_GRID`` (of ``sign``) at which ``null_claim_rate`` holds alpha.

    Found by bisection over the grid (the rate grows with the skewness); inf when even the
    grid's largest skewness holds alpha.
    """
    reps = _replications(cells, n)
    return largest_safe(lambda g: null_claim_rate(math.copysign(g, sign), cells, n, alpha=alpha, seed=seed,
                                                  replications=reps), alpha)


def largest_safe(rate, alpha: float = ALPHA) -> float:
    """The largest skewness on GAMMA_GRID at which ``rate(skewness)`` (growing with it) is at most
    alpha, by bisection over the grid; inf when even the grid's largest holds it."""
    lo, hi = 0, len(GAMMA_GRID) - 1
    if rate(float(GAMMA_GRID[hi])) <= alpha:
        return math.inf
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rate(float(GAMMA_GRID[mid])) <= alpha else (lo, mid)
    return float(GAMMA_GRID[lo])


def withheld_sign(mean_g1: float, cells: int, n: int, *, alpha: float = ALPHA, seed: int = 0) -> tuple[float, float]:
    """(gamma, sign withheld): the calibrated skewness of a family and the side it makes unsafe (0: none)."""
    if not np.isfinite(mean_g1) or mean_g1 == 0:
        return 0.0, 0.0
    sign = math.copysign(1.0, mean_g1)
    gamma = sign * calibrated_skewness(mean_g1, n, seed=seed)
    unsafe = abs(gamma) > safe_skewness(cells, n, sign, alpha=alpha, seed=seed)
    return gamma, (-sign if unsafe else 0.0)


def withhold_signs(mean_g1: np.ndarray, cells: int, n: int, *, alpha: float = ALPHA, seed: int = 0) -> np.ndarray:
    """``withheld_sign`` for many families at once (one mean G1 each), for simulations."""
    g = np.asarray(mean_g1, dtype=float)
    out = np.zeros(g.shape)
    for i, value in np.ndenumerate(g):
        out[i] = withheld_sign(float(value), cells, n, alpha=alpha, seed=seed)[1]
    return out


@dataclass(frozen=True)
class SkewCheck:
    """The family's skewness and what the rule does about it."""
    mean_g1: float          # mean sample skewness of the family's cells
    gamma: float            # the population skewness it points to (GAMMA_GRID), with its sign
    seeds: int              # the family's (median) seed count
    cells: int              # the family's size
    safe: float             # the largest skewness of that sign at which the simulated rule holds alpha
    withhold: float         # the sign whose directions are withheld (0: none)
    seeds_needed: float     # seeds at which |gamma| would be safe (nan when nothing is withheld)
    seeds_tried: int = 0    # the most seeds the search for seeds_needed simulated

    def sentence(self) -> str:
        """The check in words, for the report."""
        if not self.cells:
            return "no skewness check (no cell with 3 seeds)"
        shape = (f"the deltas' mean sample skewness is {self.mean_g1:+.2f}, like a population skewness of "
                 f"{self.gamma:+.1f}; simulated at {self.cells} cells x {self.seeds} seeds, the test holds 5% "
                 f"up to a skewness of {_safe(self.safe)}")
        if not self.withhold:
            return shape + ", so no direction is withheld"
        side = "'hurts'" if self.withhold < 0 else "'helps'"
        more = (f"about {int(self.seeds_needed):,}" if np.isfinite(self.seeds_needed)
                else f"more than the {self.seeds_tried:,} simulated")
        return f"{shape}, so {side} is withheld; {more} seeds per cell would do"


def _safe(x: float) -> str:
    return "any tried (4)" if not np.isfinite(x) else f"{x:.1f}"


def family_skew_check(deltas: list[np.ndarray], *, alpha: float = ALPHA, seed: int = 0,
                      max_seeds: int = 2_000) -> SkewCheck:
    """Whether the family's skewness makes ``claims`` unsafe at its size, and which side to withhold.

    deltas: one (n_i,) array per cell of the family (cells below 3 seeds are ignored).
    """
    live = [np.asarray(d, dtype=float) for d in deltas if len(d) >= 3]
    if not live:
        return SkewCheck(math.nan, 0.0, 0, 0, math.nan, 0.0, math.nan)
    g = float(np.nanmean([skewness(d) for d in live])) if any(np.isfinite(d).all() for d in live) else math.nan
    n = int(np.median([len(d) for d in live]))
    m = len(live)
    gamma, withhold = withheld_sign(g, m, n, alpha=alpha, seed=seed)
    sign = math.copysign(1.0, g) if g else 1.0
    safe = safe_skewness(m, n, sign, alpha=alpha, seed=seed)
    if not withhold:
        return SkewCheck(g, gamma, n, m, safe, 0.0, math.nan)
    needed, tried = math.inf, n
    for k in (1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64):
        n2 = int(math.ceil(n * k))
        if n2 > max_seeds:
            break
        tried = n2
        # the same population skewness at more seeds (one simulation per step: an estimate)
        if null_claim_rate(gamma, m, n2, alpha=alpha, seed=seed, replications=_replications(m, n2)) <= alpha:
            needed = float(n2)
            break
    return SkewCheck(g, gamma, n, m, safe, withhold, needed, tried)
