"""Anytime-valid intervals for a cell's mean paired delta: a confidence sequence you may look at
after every batch of seeds and stop whenever it is clear.

A fixed-n interval is valid once, at a sample size fixed in advance; looked at again after every
batch, the chance that it excludes the true mean at some look grows with the number of looks.
A confidence sequence (CS) covers the mean at all sample sizes at once:
P(for all n: mean in CS_n) >= 1 - alpha, so a cell may be stopped the first time its CS excludes
0 (a direction) or lies inside +-the smallest effect of interest (no effect), and the claim keeps
its error rate.

The sequence here is Lai's (1976) t-mixture, scale-invariant: for deltas x_1..x_n and a candidate
mean m, with S = sum(x_i - m) and V = sum((x_i - m)^2), the Bayes factor of a normal prior on
the mean, N(m, sigma^2 / c), against the point m, both with the scale prior 1 / sigma, is

    B_n(m) = sqrt(c / (c + n)) * (1 - S^2 / ((n + c) V)) ** (-n / 2),

a nonnegative martingale under the point m for every sigma (it is a function of the scale-free
statistics alone), so by Ville's inequality P(exists n: B_n(m) >= 1 / alpha) <= alpha for
Gaussian deltas, whatever their variance, from the first look on (an asymptotic sequence, which
plugs in the sample SD, under-covers when looks start early). CS_n = {m: B_n(m) < 1 / alpha} is
an interval with a closed form (``half_width``). ``c`` sets where it is tightest: ``tuned_c(n0)``
minimises the width at n0 seeds. Across the m cells of a sweep each sequence gets alpha / m
(Bonferroni): a union bound over sequences, each valid at every time, holds however the cells
stop, in whatever order. Wang & Ramdas (2023) show the mixture is also an e-process for the data's
own filtration; non-Gaussian deltas are checked by simulation (tests/test_confseq.py).

Strongly skewed deltas are the exception, as for the fixed-n verdicts: right skew makes a false
"hurts" likely at many cells. ``withheld_side`` carries the verdicts' family check over: the
upper quartile of the cells' sample skewness at a look (the most skewed cells make the false
claims, and a family's mean hides a few of them among many near 0), calibrated to a population
skewness, is compared with the largest skewness at which this sequence, at the family's size
and looks, holds alpha (``safe_skewness``, by simulation and bisection); beyond it the unsafe
side is withheld at that look.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .mean_test import calibrated_skewness, gamma_null, largest_safe

ALPHA = 0.05


def half_width(n, sd, alpha: float = ALPHA, c: float = 1.0) -> np.ndarray:
    """Half-width of the t-mixture CS around the sample mean after n deltas with sample SD ``sd``
    (ddof 1); arrays broadcast. inf where the sequence is still the whole line (n < 2, or too few
    deltas for alpha: at tiny alpha the first few looks cannot exclude anything)."""
    n = np.asarray(n, dtype=float)
    sd = np.asarray(sd, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # B_n(m) < 1/alpha  <=>  S^2 < (1 - q)(n + c) V, q = (alpha sqrt(c / (c + n)))^(2 / n); with
        # d = mean - m: S = n d, V = (n - 1) sd^2 + n d^2, so d^2 (n^2 - (1 - q)(n + c) n) < (1 - q)(n + c)(n - 1) sd^2
        q = np.exp((2.0 / n) * (np.log(alpha) + 0.5 * (np.log(c) - np.log(c + n))))
        k = (1.0 - q) * (n + c)
        a = n * n - k * n
        w = np.sqrt(k * (n - 1.0) * sd * sd / a)
    return np.where((n >= 2) & (a > 0) & np.isfinite(w), w, np.inf)


def tuned_c(n0: float, alpha: float = ALPHA) -> float:
    """The prior precision c at which the CS is narrowest at n0 deltas (per unit SD), for this alpha."""
    grid = np.exp(np.linspace(np.log(1e-3), np.log(1e3), 601))
    widths = half_width(n0, 1.0, alpha, grid)
    return float(grid[int(np.argmin(widths))])


def interval(n, mean, sd, alpha: float = ALPHA, c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the CS after n deltas with the given mean and SD (ddof 1); arrays broadcast."""
    w = half_width(n, sd, alpha, c)
    mean = np.asarray(mean, dtype=float)
    return mean - w, mean + w


def decide(low, high, smallest_effect: float | None = None) -> np.ndarray:
    """Per CS: "helps" (above 0), "hurts" (below 0), "no effect" (inside +-smallest_effect), else ""
    (still open). Deltas are plain - dropout: > 0 means dropout helped."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    out = np.full(np.broadcast(low, high).shape, "", dtype=object)
    if smallest_effect is not None and smallest_effect > 0:
        out[(low > -smallest_effect) & (high < smallest_effect)] = "no effect"
    out[low > 0] = "helps"
    out[high < 0] = "hurts"
    return out


def running(x: np.ndarray, looks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, mean and SD (ddof 1) of the first n values along the last axis of ``x`` at each look n:
    arrays with the look as the last axis. Vectorised: all replications and cells at once."""
    looks = np.asarray(looks, dtype=int)
    s1 = np.cumsum(x, axis=-1)[..., looks - 1]
    s2 = np.cumsum(x * x, axis=-1)[..., looks - 1]
    n = looks.astype(float)
    mean = s1 / n
    var = np.maximum(s2 - n * mean * mean, 0.0) / np.maximum(n - 1.0, 1.0)
    return np.broadcast_to(n, mean.shape), mean, np.sqrt(var)


def any_false_direction(x: np.ndarray, looks, alpha: float = ALPHA, c: float = 1.0) -> np.ndarray:
    """Null deltas (mean 0) of shape (replications, cells, seeds): per replication, whether any
    cell's CS (alpha / cells each) excluded 0 at any look, i.e. whether a sweep stopping cells at
    their first decision would have claimed a false direction."""
    n, mean, sd = running(x, looks)
    low, high = interval(n, mean, sd, alpha / x.shape[-2], c)
    return ((low > 0) | (high < 0)).any(axis=(-1, -2))


_BUDGET = 6_000_000   # simulated deltas per null rate, at most: fewer replications for big families


@lru_cache(maxsize=256)
def null_rate(gamma: float, cells: int, looks: tuple[int, ...], *, alpha: float = ALPHA, c: float = 1.0,
              seed: int = 0) -> float:
    """Simulated chance that the sequences of ``cells`` null cells (centred gamma of skewness
    ``gamma``) claim the side that skew makes unsafe (right skew: "hurts") at any of ``looks``."""
    n = max(looks)
    reps = max(200, min(2000, _BUDGET // (cells * n)))
    x = gamma_null(np.random.default_rng([seed, cells, n, int(round(abs(gamma) * 100))]), abs(gamma),
                   (reps, cells, n))
    m, mean, sd = running(x, looks)
    low, high = interval(m, mean, sd, alpha / cells, c)
    return float((high < 0).any(axis=(-1, -2)).mean())


@lru_cache(maxsize=256)
def safe_skewness(cells: int, looks: tuple[int, ...], *, alpha: float = ALPHA, c: float = 1.0) -> float:
    """The largest skewness on GAMMA_GRID at which ``null_rate`` holds alpha (inf: all of it)."""
    return largest_safe(lambda g: null_rate(g, cells, looks, alpha=alpha, c=c), alpha)


def withheld_side(g1: float, n: int, cells: int, looks: tuple[int, ...], *, alpha: float = ALPHA,
                  c: float = 1.0) -> float:
    """The side a family's skewness makes unsafe at this look: -1 ("hurts", right skew), +1
    ("helps", left skew) or 0 (none). ``g1``: the upper quartile of the cells' sample skewness at
    n seeds (``family_skewness``)."""
    if not np.isfinite(g1) or g1 == 0:
        return 0.0
    gamma = calibrated_skewness(g1, n)
    return -math.copysign(1.0, g1) if gamma > safe_skewness(cells, looks, alpha=alpha, c=c) else 0.0


def family_skewness(g1: np.ndarray) -> np.ndarray:
    """The family's skewness at each look from its cells' G1 (cells on the second-last axis): the
    upper quartile of the right-skewed side, or the lower quartile where the family leans left."""
    upper, lower = np.quantile(g1, 0.75, axis=-2), np.quantile(g1, 0.25, axis=-2)
    return np.where(np.abs(upper) >= np.abs(lower), upper, lower)


def running_skewness(x: np.ndarray, looks) -> np.ndarray:
    """G1 (adjusted Fisher-Pearson, as ``mean_test.skewness``) of the first n values along the last
    axis at each look n; the look as the last axis; 0 where the SD is 0."""
    looks = np.asarray(looks, dtype=int)
    n = looks.astype(float)
    s1, s2, s3 = (np.cumsum(x ** k, axis=-1)[..., looks - 1] / n for k in (1, 2, 3))
    m2 = np.maximum(s2 - s1 * s1, 0.0)
    m3 = s3 - 3 * s1 * s2 + 2 * s1 ** 3
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = np.sqrt(n * (n - 1)) / (n - 2) * m3 / m2 ** 1.5
    return np.where(m2 > 0, g1, 0.0)


def guarded_false_direction(x: np.ndarray, looks, alpha: float = ALPHA, c: float = 1.0) -> np.ndarray:
    """``any_false_direction`` with the family's skewness guard: at each look, the side
    ``withheld_side`` names (from the cells' G1 so far) is not claimed."""
    looks = tuple(int(v) for v in looks)
    cells = x.shape[-2]
    n, mean, sd = running(x, looks)
    low, high = interval(n, mean, sd, alpha / cells, c)
    family_g1 = family_skewness(running_skewness(x, looks))                  # (reps, looks)
    side = np.vectorize(lambda g, m: withheld_side(g, m, cells, looks, alpha=alpha, c=c))(
        family_g1, np.broadcast_to(np.asarray(looks), family_g1.shape))
    side = side[..., None, :]                                                 # over the cells
    return (((low > 0) & (side != 1)) | ((high < 0) & (side != -1))).any(axis=(-1, -2))


def replay(deltas: np.ndarray, first: int, last: int, batch: int, *, smallest_effect: float | None = None,
           alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """An adaptive seed plan played on stored deltas (cells, seeds), seeds in order: every open cell is
    looked at after ``first`` seeds, then after every ``batch`` more, up to ``last``; a cell stops at
    its first decision (``decide``, with the skewness guard), later seeds unused. Returns the
    decision per cell ("" if still open at ``last``) and the seeds each used. The family's
    skewness at a look uses each cell's seeds so far (a stopped cell's up to its stop)."""
    cells = deltas.shape[0]
    looks = tuple(range(first, last + 1, batch))
    c = tuned_c(first, alpha / cells)
    verdict = np.full(cells, "", dtype=object)
    used = np.full(cells, looks[-1])
    for n in looks:
        upto = np.where(verdict == "", n, used)
        g1 = np.array([running_skewness(deltas[i, :upto[i]], [upto[i]])[0] for i in range(cells)])
        side = withheld_side(float(family_skewness(g1[:, None])[0]), n, cells, looks, alpha=alpha, c=c)
        m, mean, sd = running(deltas, [n])
        low, high = interval(m[:, 0], mean[:, 0], sd[:, 0], alpha / cells, c)
        now = decide(np.where(side == 1, -np.inf, low), np.where(side == -1, np.inf, high), smallest_effect)
        fresh = (verdict == "") & (now != "")
        verdict[fresh], used[fresh] = now[fresh], n
    return verdict, used
