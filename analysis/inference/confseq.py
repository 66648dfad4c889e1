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
"""
from __future__ import annotations

import numpy as np

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
