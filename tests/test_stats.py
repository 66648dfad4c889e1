"""analysis.stats on tiny hand-checkable arrays, against scipy/statsmodels, and by simulation."""
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from analysis import stats


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
    low, high = stats.bootstrap_ci(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]), seed=0, n_resamples=999)
    assert (low[0], high[0]) == (2.0, 2.0)
    assert 1.0 <= low[1] < high[1] <= 4.0
    low, high = stats.bootstrap_ci(np.array([3.0]))
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
    assert s["mean"] == pytest.approx([0.25, -0.1])
    assert s["median"] == pytest.approx([0.25, -0.1])
    assert s["p_improve"] == pytest.approx([1.0, 0.0])
    assert (s["ci_low"][1], s["ci_high"][1]) == (-0.1, -0.1)
    assert s["p_wilcoxon"][0] == pytest.approx(sps.wilcoxon(d[0]).pvalue)
    assert all(v.shape == (2,) for v in s.values())
    empty = stats.paired_summary(np.zeros((1, 0)))
    assert math.isnan(empty["mean"][0]) and math.isnan(empty["p_wilcoxon"][0])


def test_paired_ci_covers_a_known_difference_95_percent_of_the_time():
    """2,000 simulated paired experiments (100 seeds each) with a true mean difference of 0.03.

    The percentile bootstrap of a mean under-covers slightly at small n (about 94% at 30
    seeds); at 100 seeds it is close to nominal, and 2,000 repetitions put the Monte Carlo
    error of the coverage at 0.5 percentage points.
    """
    rng = np.random.default_rng(2026)
    true = 0.03
    plain = rng.normal(0.12, 0.04, (2000, 100))
    drop = plain - true + rng.normal(0.0, 0.05, (2000, 100))  # correlated arms, as on shared seeds
    low, high = stats.bootstrap_ci(plain - drop, seed=1, n_resamples=999, method="percentile")
    coverage = np.mean((low <= true) & (true <= high))
    assert 0.93 <= coverage <= 0.97, coverage
