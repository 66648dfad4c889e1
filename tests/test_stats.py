"""analysis.inference.stats on tiny hand-checkable arrays, against scipy/statsmodels, and by simulation.

``python tests/test_stats.py`` prints the coverage tables quoted in docs/statistics.md.
"""
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import DescrStatsW

from analysis.inference import stats


def test_cohens_dz_by_hand():
    assert stats.cohens_dz(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)  # mean 2, sd 1
    rows = stats.cohens_dz(np.array([[1.0, 2.0, 3.0], [-1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]))
    assert rows[0] == pytest.approx(2.0)
    assert rows[1] == 0.0
    assert rows[2] == math.inf          # no spread, positive mean
    assert rows[3] == 0.0               # no spread, no effect
    assert math.isnan(stats.cohens_dz(np.array([5.0])))


def test_prob_improvement_and_wilson_by_hand():
    p, low, high = stats.prob_improvement(np.array([1.0, -1.0, 2.0, 0.0]))
    assert p == 0.5                     # the tie does not count as an improvement
    assert low + high == pytest.approx(1.0)  # symmetric around 1/2 at p = 1/2
    # 0 of 10: Wilson's upper end is z^2 / (n + z^2)
    z2 = sps.norm.ppf(0.975) ** 2
    p, low, high = stats.wilson_interval(np.array([0]), 10)
    assert (p[0], low[0]) == (0.0, 0.0)
    assert high[0] == pytest.approx(z2 / (10 + z2))
    assert high[0] == pytest.approx(0.27753, abs=1e-5)


def test_bootstrap_ci_degenerate_rows():
    low, high = stats.bootstrap_ci(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]), seed=0, n_resamples=999,
                                   method="BCa")
    assert (low[0], high[0]) == (2.0, 2.0)
    assert 1.0 <= low[1] < high[1] <= 4.0
    low, high = stats.bootstrap_ci(np.array([3.0]), method="BCa")
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize("method", ["BCa", "percentile"])
@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_bootstrap_ci_is_scipys(method, statistic):
    x = np.array([0.3, -0.1, 0.5, 0.2, 0.05, 0.4, -0.2, 0.25])
    fn = np.mean if statistic == "mean" else np.median
    ref = sps.bootstrap((x,), fn, n_resamples=999, method=method, rng=np.random.default_rng(7))
    low, high = stats.bootstrap_ci(x, statistic=statistic, seed=7, n_resamples=999, method=method)
    assert (low, high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    again = stats.bootstrap_ci(x, statistic=statistic, seed=7, n_resamples=999, method=method)
    assert again == (low, high)  # seeded: the same answer every time


def test_wilcoxon_is_scipy_on_the_differences():
    rng = np.random.default_rng(3)
    plain, drop = rng.normal(0.12, 0.03, 15), rng.normal(0.10, 0.03, 15)
    d = plain - drop
    assert stats.wilcoxon_p(d) == sps.wilcoxon(d).pvalue
    # all five positive: the exact two-sided p is 2 / 2^5
    assert stats.wilcoxon_p(np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(0.0625)
    assert stats.wilcoxon_p(np.zeros(6)) == 1.0
    assert math.isnan(stats.wilcoxon_p(np.array([])))


def test_wilcoxon_rows_equal_one_call_per_row():
    rng = np.random.default_rng(5)
    d = rng.normal(0.01, 0.03, (6, 9))
    d[1, :3] = 0.0                       # zeros
    d[2, 1] = -d[2, 0]                   # a tied magnitude
    d[3] = 0.0                           # no difference at all
    expected = [sps.wilcoxon(row).pvalue if row.any() else 1.0 for row in d]
    assert stats.wilcoxon_rows(d) == pytest.approx(expected)
    assert math.isnan(stats.wilcoxon_rows(np.zeros((2, 0)))[0])


def test_holm_and_bh_by_hand_and_against_statsmodels():
    p = np.array([0.01, 0.04, 0.03])
    assert stats.adjust_pvalues(p, method="holm") == pytest.approx([0.03, 0.06, 0.06])
    assert stats.adjust_pvalues(p, method="fdr_bh") == pytest.approx([0.03, 0.04, 0.04])
    rng = np.random.default_rng(11)
    p = np.concatenate([rng.uniform(0, 0.05, 6), rng.uniform(0, 1, 20)])
    for method in ("holm", "fdr_bh"):
        assert stats.adjust_pvalues(p, method=method) == pytest.approx(multipletests(p, method=method)[1])
    # NaN (an empty cell) is not a member of the family
    with_nan = np.array([0.01, np.nan, 0.04, 0.03])
    holm = stats.adjust_pvalues(with_nan, method="holm")
    assert math.isnan(holm[1])
    assert holm[[0, 2, 3]] == pytest.approx([0.03, 0.06, 0.06])
    with pytest.raises(ValueError, match="holm"):
        stats.adjust_pvalues(p, method="bonferroni")


@pytest.mark.parametrize("dz", [0.2, 0.5, 0.8, 1.5])
def test_seeds_for_power_against_statsmodels(dz):
    n = stats.seeds_for_power(dz)
    assert n == math.ceil(TTestPower().solve_power(effect_size=dz, alpha=0.05, power=0.8,
                                                   alternative="two-sided"))
    assert stats.paired_t_power(dz, int(n)) >= 0.8 > stats.paired_t_power(dz, int(n) - 1)
    assert stats.seeds_for_power(-dz) == n


def test_seeds_for_power_edge_cases():
    assert stats.seeds_for_power(0.0) == math.inf
    assert math.isnan(stats.seeds_for_power(float("nan")))


def test_effective_df_by_hand():
    # the least-squares line at N = 20, sigma = 0.3: gap 2 d sigma^2 / N = 0.018 -> d = 2
    assert stats.effective_df(0.018, 20, 0.3) == pytest.approx(2.0)
    assert stats.effective_df(0.18, 20, 0.3) == pytest.approx(20.0)  # an interpolator
    assert math.isnan(stats.effective_df(0.1, 20, 0.0))


def test_paired_summary_shapes_and_values():
    d = np.array([[0.1, 0.2, 0.3, 0.4], [-0.1, -0.1, -0.1, -0.1]])
    s = stats.paired_summary(d, seed=0, n_resamples=999)
    assert "seeds_80" not in s
    assert s["mean"] == pytest.approx([0.25, -0.1])
    assert s["median"] == pytest.approx([0.25, -0.1])
    assert s["p_improve"] == pytest.approx([1.0, 0.0])
    assert (s["ci_low"][1], s["ci_high"][1]) == (-0.1, -0.1)
    # the default interval of the mean is Student's t
    t_low, t_high = sps.ttest_1samp(d[0], 0).confidence_interval()
    assert (s["ci_low"][0], s["ci_high"][0]) == pytest.approx((t_low, t_high))
    assert np.isnan(s["median_ci_low"]).all()   # 4 seeds: no distribution-free 95% median interval
    assert s["hl"] == pytest.approx([0.25, -0.1])
    assert np.isnan(s["p_tost"]).all()           # no margin, no equivalence test
    assert s["p_wilcoxon"][0] == pytest.approx(sps.wilcoxon(d[0]).pvalue)
    assert all(v.shape == (2,) for v in s.values())
    empty = stats.paired_summary(np.zeros((1, 0)))
    assert math.isnan(empty["mean"][0]) and math.isnan(empty["p_wilcoxon"][0])


def test_paired_summary_with_a_margin_and_a_bootstrap_method():
    rng = np.random.default_rng(12)
    d = rng.normal(0.0, 0.01, (3, 8))
    s = stats.paired_summary(d, margin=0.02)
    assert s["p_tost"] == pytest.approx(stats.tost_p(d, 0.02))
    assert s["hl"] == pytest.approx(stats.hodges_lehmann(d))
    low, high = stats.median_interval(d)                   # 8 seeds: [x_(1), x_(8)]
    assert (s["median_ci_low"], s["median_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    margins = stats.paired_summary(d, margin=np.array([0.02, np.nan, 0.0]))["p_tost"]
    assert margins[0] == pytest.approx(stats.tost_p(d[0], 0.02))
    assert np.isnan(margins[1:]).all()                     # no usable margin: NaN, not p = 1
    bca = stats.paired_summary(d, method="BCa", n_resamples=999, seed=3)
    again = stats.paired_summary(d, method="BCa", n_resamples=999, seed=3)
    assert np.isfinite(bca["ci_low"]).all() and (bca["ci_low"] == again["ci_low"]).all()
    assert not np.allclose(bca["ci_low"], s["ci_low"])


# --- coverage of the report's intervals, by simulation --------------------------------------

SEED_COUNTS = (3, 5, 10, 20, 30)
DISTRIBUTIONS = ("gaussian", "gamma4", "contaminated")
T_REPS = 100_000      # the t-interval is cheap: Monte Carlo SE of a 95% coverage is 0.07 points
BOOT_REPS = 2_000     # the bootstrap is not: SE 0.5 points


def _draw(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """(reps, n) simulated per-seed deltas and their true mean.

    gaussian: N(0, 1). gamma4: gamma(shape 4), skewness 1.0 (real per-cell deltas measure
    -0.3..0.8). contaminated: 90% N(0, 1), 10% N(0, 5^2), symmetric with heavy tails.
    chi2_3 (skewness 1.63) and lognormal (sigma 0.5, skewness 1.75): strongly skewed, outside
    the requirement, measured for docs/statistics.md.
    """
    if kind == "gaussian":
        return rng.normal(0.0, 1.0, shape), 0.0
    if kind == "gamma4":
        return rng.gamma(4.0, 1.0, shape), 4.0
    if kind == "contaminated":
        return np.where(rng.random(shape) < 0.1, 5.0, 1.0) * rng.normal(0.0, 1.0, shape), 0.0
    if kind == "chi2_3":
        return rng.chisquare(3, shape), 3.0
    if kind == "lognormal":
        return rng.lognormal(0.0, 0.5, shape), math.exp(0.5 ** 2 / 2)
    raise ValueError(kind)


def _coverage(kind: str, n: int, reps: int, **interval_kwargs) -> float:
    """Fraction of ``reps`` simulated experiments of ``n`` seeds whose interval holds the true mean."""
    rng = np.random.default_rng([2026, n, (DISTRIBUTIONS + ("chi2_3", "lognormal")).index(kind)])
    x, true = _draw(kind, rng, (reps, n))
    low, high = stats.interval(x, **interval_kwargs)  # all replications in one vectorised call
    return float(np.mean((low <= true) & (true <= high)))


@pytest.mark.parametrize("n", SEED_COUNTS, ids=lambda n: f"n{n}")
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_default_interval_covers_93_to_97_percent(kind, n):
    """The report's default interval of a mean, at the seed counts it is used with.

    Close to the edge: gamma(4) at 4-6 seeds covers 93.2-93.3% (measured with 2 million
    replications), which is why this runs 100,000 replications and not a few thousand.
    n_resamples only matters if the default were a bootstrap method.
    """
    coverage = _coverage(kind, n, T_REPS, n_resamples=999, seed=1)
    print(f"{stats.DEFAULT_METHOD} {kind} n={n}: coverage {coverage:.3f}")
    assert 0.93 <= coverage <= 0.97, f"{stats.DEFAULT_METHOD} {kind} n={n}: coverage {coverage:.4f}"


def test_bca_misses_the_coverage_requirement_at_5_seeds():
    """Why BCa is not the default: at 5 Gaussian seeds it covers about 83%, not 95%."""
    coverage = _coverage("gaussian", 5, BOOT_REPS, method="BCa", n_resamples=999, seed=1)
    print(f"BCa gaussian n=5: coverage {coverage:.3f}")
    assert coverage < 0.93, coverage


def test_no_interval_below_min_seeds():
    assert stats.MIN_SEEDS == 3
    for method in ("t", "BCa"):
        low, high = stats.interval(np.array([0.1, 0.3]), method=method)
        assert math.isnan(low) and math.isnan(high)
        low, high = stats.interval(np.array([[0.1, 0.3], [0.2, 0.2]]), method=method)
        assert np.isnan(low).all() and np.isnan(high).all()
    low, high = stats.interval(np.array([0.1, 0.3, 0.2]))
    assert low < 0.2 < high
    with pytest.raises(ValueError, match="method"):
        stats.interval(np.array([0.1, 0.3, 0.2]), method="studentized")


@pytest.mark.parametrize("confidence", [0.95, 0.9, 1 - 0.05 / 12])
def test_t_interval_is_scipys_row_by_row(confidence):
    rng = np.random.default_rng(21)
    for n in (2, 3, 5, 12):
        x = rng.normal(0.01, 0.03, (4, n))
        low, high = stats.t_interval(x, confidence=confidence)
        for row, lo, hi in zip(x, low, high):
            ref = sps.ttest_1samp(row, 0).confidence_interval(confidence_level=confidence)
            assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-12)
    one = stats.t_interval(x[0], confidence=confidence)
    assert one == pytest.approx((low[0], high[0]))
    # no spread: a zero-width interval at the value (to rounding: the float mean of 0.2 x 3 is not 0.2)
    assert stats.t_interval(np.array([0.2, 0.2, 0.2])) == pytest.approx((0.2, 0.2), abs=1e-15)


# --- the median ------------------------------------------------------------------------------

def test_median_interval_by_hand():
    x = np.array([7.0, 3.0, 10.0, 1.0, 5.0, 2.0, 9.0, 4.0, 8.0, 6.0])  # 1..10, shuffled
    # n = 10: [x_(2), x_(9)] covers 1 - 2 P(B <= 1) = 1 - 22/1024 = 97.9%; [x_(3), x_(8)] only 89.1%
    assert stats.median_interval(x) == (2.0, 9.0)
    assert stats.interval(x, statistic="median") == (2.0, 9.0)
    # n = 6: only [min, max] reaches 95% (1 - 2/64 = 96.9%)
    assert stats.median_interval(x[:6]) == (1.0, 10.0)
    # n = 5: [min, max] covers 1 - 2/32 = 93.75% < 95%: no interval
    low, high = stats.median_interval(x[:5])
    assert math.isnan(low) and math.isnan(high)
    rows = stats.median_interval(np.stack([x, x[::-1] * 2]))
    assert rows[0] == pytest.approx([2.0, 4.0]) and rows[1] == pytest.approx([9.0, 18.0])
    # at 90% confidence n = 5 has one: [min, max]
    assert stats.median_interval(x[:5], confidence=0.9) == (1.0, 10.0)


@pytest.mark.parametrize("n", [6, 10, 20, 30])
def test_median_interval_covers_at_least_95_percent(n):
    """Exact and conservative: simulated coverage matches 1 - 2 P(B <= k-1) and is >= 95%."""
    exact = {6: 1 - 2 / 64, 10: 1 - 22 / 1024, 20: 0.95861, 30: 0.95723}[n]
    reps = 20_000
    rng = np.random.default_rng([7, n])
    x = rng.gamma(4.0, 1.0, (reps, n))  # skewed: the median, not the mean, is the target
    low, high = stats.interval(x, statistic="median")
    true = sps.gamma(4.0).median()
    coverage = float(np.mean((low <= true) & (true <= high)))
    print(f"median gamma4 n={n}: coverage {coverage:.3f} (exact {exact:.3f})")
    assert coverage >= 0.95
    assert coverage == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / reps))


def test_median_interval_is_nan_below_6_seeds():
    rng = np.random.default_rng(4)
    for n in range(0, 6):
        low, high = stats.interval(rng.normal(size=(3, n)), statistic="median")
        assert np.isnan(low).all() and np.isnan(high).all(), n
    assert np.isfinite(stats.interval(rng.normal(size=(3, 6)), statistic="median")[0]).all()


def test_hodges_lehmann_by_hand():
    # Walsh averages of [1, 2, 9]: 1, 1.5, 5, 2, 5.5, 9 -> sorted 1, 1.5, 2, 5, 5.5, 9 -> median 3.5
    assert stats.hodges_lehmann(np.array([1.0, 2.0, 9.0])) == pytest.approx(3.5)
    assert stats.hodges_lehmann(np.array([4.0])) == 4.0
    rows = stats.hodges_lehmann(np.array([[1.0, 2.0, 9.0], [-1.0, 0.0, 1.0]]))
    assert rows == pytest.approx([3.5, 0.0])
    assert math.isnan(stats.hodges_lehmann(np.array([])))
    rng = np.random.default_rng(9)
    d = rng.normal(size=7)
    walsh = [(d[i] + d[j]) / 2 for i in range(7) for j in range(i, 7)]
    assert stats.hodges_lehmann(d) == pytest.approx(np.median(walsh))


# --- equivalence -----------------------------------------------------------------------------

def test_tost_p_is_statsmodels():
    rng = np.random.default_rng(31)
    for n, mean, margin in [(5, 0.0, 0.02), (10, 0.01, 0.02), (30, -0.015, 0.02), (8, 0.05, 0.02), (3, 0.0, 1.0)]:
        d = rng.normal(mean, 0.02, n)
        assert stats.tost_p(d, margin) == pytest.approx(DescrStatsW(d).ttost_mean(-margin, margin)[0], rel=1e-10)
    d = rng.normal(0.0, 0.02, (4, 12))
    margins = np.array([0.005, 0.01, 0.02, 0.04])
    expected = [DescrStatsW(row).ttost_mean(-m, m)[0] for row, m in zip(d, margins)]
    assert stats.tost_p(d, margins) == pytest.approx(expected, rel=1e-10)


def test_tost_p_edge_cases_by_hand():
    # no spread: equivalence is certain inside the margin, impossible on or outside it
    assert stats.tost_p(np.array([0.01, 0.01, 0.01]), 0.02) == 0.0
    assert stats.tost_p(np.array([0.03, 0.03, 0.03]), 0.02) == 1.0
    assert stats.tost_p(np.array([-0.02, -0.02]), 0.02) == 1.0
    assert math.isnan(stats.tost_p(np.array([0.0]), 0.02))
    # mean exactly on the margin: one of the one-sided tests is at t = 0, p = 1/2
    assert stats.tost_p(np.array([0.01, 0.03]), 0.02) == pytest.approx(0.5)


# --- planning seeds --------------------------------------------------------------------------

PLANS = [(0.5, 1.0, 1), (1.0, 1.0, 12), (0.3, 1.0, 24), (0.01, 0.02, 12)]  # effect, sd, family


@pytest.mark.parametrize("effect, sd, family", PLANS)
def test_seeds_to_detect_against_statsmodels(effect, sd, family):
    n_t = math.ceil(TTestPower().solve_power(effect_size=effect / sd, alpha=0.05 / family, power=0.8,
                                             alternative="two-sided"))
    assert n_t <= stats.seeds_to_detect(effect, sd, family=family) <= 1.25 * n_t + 2  # the t count, raised for the guard
    assert stats.seeds_to_detect(-effect, sd, family=family) == stats.seeds_to_detect(effect, sd, family=family)


def test_seeds_to_detect_edge_cases():
    assert stats.seeds_to_detect(0.0, 1.0) == math.inf
    assert math.isnan(stats.seeds_to_detect(0.1, float("nan")))
    assert math.isnan(stats.seeds_to_detect(0.1, 0.0))
    assert stats.seeds_to_detect(0.5, 1.0, family=12) > stats.seeds_to_detect(0.5, 1.0)


@pytest.mark.parametrize("effect, sd, family", PLANS)
def test_seeds_to_detect_gives_80_percent_power_by_simulation(effect, sd, family):
    """Gaussian deltas at the planned seeds: the verdict's test (t and Hall's corrected t, the larger p)
    at alpha/family reaches about 80% on fresh draws, and the plain t-test at least that."""
    from analysis.inference.mean_test import mean_test

    n = int(stats.seeds_to_detect(effect, sd, family=family))
    rng = np.random.default_rng([41, n])
    d = rng.normal(effect, sd, (10_000, n))
    alpha = 0.05 / family
    power_t = np.mean(sps.ttest_1samp(d, 0, axis=-1).pvalue < alpha)
    power_rule = np.mean(mean_test(d)[0] < alpha)
    print(f"n={n}: power t {power_t:.3f}, the verdict's test {power_rule:.3f}")
    assert power_t >= 0.8
    assert 0.78 <= power_rule <= 0.86


@pytest.mark.parametrize("margin, sd, family", [(0.5, 1.0, 1), (0.5, 1.0, 12), (1.0, 1.0, 1)])
def test_seeds_to_show_equivalence_by_simulation(margin, sd, family):
    """True mean 0: TOST at the planned seeds shows equivalence about 80% of the time

    (measured 80-85%); with half the seeds it mostly cannot (12-31%).
    """
    n = int(stats.seeds_to_show_equivalence(margin, sd, family=family))
    rng = np.random.default_rng([43, n])
    d = rng.normal(0.0, sd, (10_000, n))
    alpha = 0.05 / family
    power = np.mean(stats.tost_p(d, margin) < alpha)
    half = np.mean(stats.tost_p(d[:, : n // 2], margin) < alpha)
    print(f"n={n}: TOST power {power:.3f}; at {n // 2} seeds {half:.3f}")
    assert 0.75 <= power <= 0.9
    assert half < 0.5
    assert math.isnan(stats.seeds_to_show_equivalence(0.0, 1.0))


# --- the best cell: selection ----------------------------------------------------------------

def test_bonferroni_interval_covers_the_selected_best_cell():
    """12 cells with no effect at all, 30 seeds each; the report picks the largest mean.

    The plain 95% t-interval of the winner holds the truth (0) only about 75% of the time (the
    winner's curse); the Bonferroni interval at 1 - 0.05/12 keeps at least 95%.
    """
    m, n, reps = 12, 30, 4_000
    rng = np.random.default_rng(51)
    x = rng.normal(0.0, 1.0, (reps, m, n))
    best = x[np.arange(reps), x.mean(axis=-1).argmax(axis=-1)]
    low, high = stats.interval(best)
    plain = float(np.mean((low <= 0) & (0 <= high)))
    low, high = stats.interval(best, confidence=1 - 0.05 / m)
    bonferroni = float(np.mean((low <= 0) & (0 <= high)))
    print(f"best of {m}: plain coverage {plain:.3f}, Bonferroni {bonferroni:.3f}")
    assert plain < 0.85
    assert bonferroni >= 0.95


if __name__ == "__main__":  # the coverage tables of docs/statistics.md
    kinds = DISTRIBUTIONS + ("chi2_3", "lognormal")
    print("n".ljust(14) + "".join(f"{n:>8}" for n in SEED_COUNTS))
    for label, reps, kwargs in [("t", T_REPS, {}), ("BCa", 10_000, {"method": "BCa", "n_resamples": 999, "seed": 1})]:
        print(f"{label} ({reps:,} replications)")
        for kind in kinds:
            print(f"  {kind:<12}" + "".join(f"{_coverage(kind, n, reps, **kwargs):8.3f}" for n in SEED_COUNTS))
