"""The anytime-valid confidence sequence (analysis.inference.confseq): its closed form against the
Bayes factor it inverts, and its error rates by simulation at the sizes sweeps run, looked at after
every batch of seeds. A fixed-n t-test looked at as often fails the same test."""
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from analysis.inference import confseq as cs

FIXTURE = __import__("pathlib").Path(__file__).parent / "data" / "quick_deltas.csv"
LOOKS = np.arange(10, 201, 10)       # a batch of 10 seeds, first look at 10, at most 200
LIMIT = 0.05


def _bayes_factor(x: np.ndarray, m: float, c: float) -> float:
    n, s, v = len(x), float(np.sum(x - m)), float(np.sum((x - m) ** 2))
    return np.sqrt(c / (c + n)) * (1 - s * s / ((n + c) * v)) ** (-n / 2)


@pytest.mark.parametrize("n, c, alpha", [(5, 1.0, 0.05), (25, 0.3, 0.05), (80, 8.0, 0.05 / 180)])
def test_the_closed_form_is_where_the_bayes_factor_reaches_one_over_alpha(n, c, alpha):
    x = np.random.default_rng([n, 1]).normal(0.4, 2.0, n)
    low, high = cs.interval(n, x.mean(), x.std(ddof=1), alpha, c)
    for edge in (low, high):
        assert _bayes_factor(x, float(edge), c) == pytest.approx(1 / alpha, rel=1e-9)
    # scipy's root finder, from the mean outwards, lands on the same edges
    f = lambda m: np.log(_bayes_factor(x, m, c)) + np.log(alpha)    # noqa: E731
    span = 50 * x.std()
    assert optimize.brentq(f, x.mean(), x.mean() + span) == pytest.approx(float(high), rel=1e-9)
    assert optimize.brentq(f, x.mean() - span, x.mean()) == pytest.approx(float(low), rel=1e-9)


def test_the_sequence_is_the_whole_line_until_it_can_exclude_anything():
    assert np.isinf(cs.half_width(1, 1.0)) and np.isinf(cs.half_width(2, 1.0, 0.05 / 180, 10.0))
    assert np.isfinite(cs.half_width(30, 1.0, 0.05 / 180, cs.tuned_c(30, 0.05 / 180)))


def test_tuning_puts_the_narrowest_point_where_asked_and_it_costs_width_against_fixed_n():
    for n0 in (20, 60):
        c = cs.tuned_c(n0)
        assert cs.half_width(n0, 1.0, 0.05, c) <= cs.half_width(n0, 1.0, 0.05, [c / 3, 3 * c]).min()
    fixed = stats.t.ppf(0.975, 29) / np.sqrt(30)
    ratio = cs.half_width(30, 1.0, 0.05, cs.tuned_c(30)) / fixed
    print(f"CS / fixed-n half-width at 30 seeds: {ratio:.2f}")
    assert 1.2 < ratio < 2.0     # the price of looking as often as you like


def test_decisions_follow_the_interval():
    low, high = np.array([0.1, -0.3, -0.01, -0.2]), np.array([0.3, -0.1, 0.02, 0.2])
    assert list(cs.decide(low, high, smallest_effect=0.05)) == ["helps", "hurts", "no effect", ""]
    assert list(cs.decide(low, high)) == ["helps", "hurts", "", ""]


def test_running_statistics_equal_numpy_on_each_prefix():
    x = np.random.default_rng(3).standard_normal((2, 3, 40))
    n, mean, sd = cs.running(x, [5, 40])
    assert mean[1, 2, 0] == pytest.approx(x[1, 2, :5].mean()) and sd[0, 1, 1] == pytest.approx(x[0, 1].std(ddof=1))


@pytest.mark.parametrize("shape", ["gaussian", "t3"])
def test_one_cell_is_covered_at_every_seed_count_at_once(shape):
    rng = np.random.default_rng([11, len(shape)])
    x = rng.standard_normal((4000, 1, 200)) if shape == "gaussian" else rng.standard_t(3, (4000, 1, 200))
    looks = np.arange(2, 201)                                     # after every seed
    miss = cs.any_false_direction(x, looks, 0.05, cs.tuned_c(30))  # true mean 0: a miss is excluding it
    print(f"{shape}: P(the CS ever misses the mean, looked at after every seed to 200) = {miss.mean():.4f}")
    assert miss.mean() <= LIMIT


def _fixture_nulls(rng: np.random.Generator, reps: int, n: int) -> np.ndarray:
    d = pd.read_csv(FIXTURE, comment="#", index_col="seed").to_numpy()
    rows = rng.integers(0, len(d), size=(reps, n))
    return np.transpose((d - d.mean(axis=0))[rows], (0, 2, 1))


def _nulls(shape: str, cells: int, reps: int) -> np.ndarray:
    rng = np.random.default_rng([5, cells, len(shape)])
    if shape == "gaussian":
        return rng.standard_normal((reps, cells, 200))
    if shape == "t3":
        return rng.standard_t(3, (reps, cells, 200))
    # the 12 cells of the quick sweep; for more, blocks of 12 resampled independently, side by side
    return np.concatenate([_fixture_nulls(rng, reps, 200) for _ in range(cells // 12)], axis=1)


def _naive(x: np.ndarray, looks) -> np.ndarray:
    """A fixed-n t-test (Bonferroni over cells) looked at after every batch, stopping at the first claim."""
    n, mean, sd = cs.running(x, looks)
    crit = stats.t.ppf(1 - 0.025 / x.shape[-2], n - 1)
    return (np.abs(mean) * np.sqrt(n) / sd > crit).any(axis=(-1, -2))


@pytest.mark.parametrize("shape, cells, reps", [
    ("gaussian", 12, 2000), ("gaussian", 180, 400), ("t3", 12, 2000), ("t3", 180, 400),
    ("quick sweep", 12, 2000), ("quick sweep", 180, 400), ("gamma1", 180, 300), ("gamma2", 180, 300)])
def test_no_false_direction_under_the_global_null_however_often_one_looks(shape, cells, reps):
    if shape.startswith("gamma"):                 # every cell right-skewed, of skewness 1 or 2
        k = (2 / float(shape[5:])) ** 2
        x = np.random.default_rng([6, len(shape)]).gamma(k, size=(reps, cells, 200)) - k
    else:
        x = _nulls(shape, cells, reps)
    c = cs.tuned_c(30, 0.05 / cells)
    rate = cs.guarded_false_direction(x, LOOKS, 0.05, c).mean()
    bare = cs.any_false_direction(x, LOOKS, 0.05, c).mean()
    naive = _naive(x, LOOKS).mean()
    print(f"{shape} x {cells} cells, looks every 10 seeds to 200: P(any false direction) = {rate:.3f} "
          f"(without the skewness guard {bare:.3f}; a fixed-n t-test looked at as often {naive:.3f})")
    assert rate <= LIMIT
    assert naive > LIMIT                 # why a confidence sequence: the fixed-n test fails this very test


def test_the_skewness_guard_costs_little_on_symmetric_deltas():
    """It withholds a side only where the cells lean: on Gaussian deltas at 1-2% of looks."""
    x = _nulls("gaussian", 180, 400)
    g1 = cs.family_skewness(cs.running_skewness(x, LOOKS))
    c = cs.tuned_c(30, 0.05 / 180)
    sides = np.vectorize(lambda g, n: cs.withheld_side(g, n, 180, tuple(LOOKS), c=c))(
        g1, np.broadcast_to(LOOKS, g1.shape))
    print(f"Gaussian, 180 cells: a side withheld at {np.mean(sides != 0):.3%} of looks")
    assert np.mean(sides != 0) < 0.05


def test_running_skewness_equals_scipy_on_a_prefix():
    x = np.random.default_rng(4).gamma(2.0, size=(3, 50))
    assert cs.running_skewness(x, [20])[:, 0] == pytest.approx(stats.skew(x[:, :20], axis=1, bias=False))


def test_no_effect_is_claimed_rarely_when_the_mean_sits_at_the_margin():
    margin = 0.2
    x = np.random.default_rng(9).standard_normal((4000, 1, 300)) + margin
    n, mean, sd = cs.running(x, np.arange(10, 301, 10))
    low, high = cs.interval(n, mean, sd, 0.05, cs.tuned_c(100))
    false_equivalence = (cs.decide(low, high, smallest_effect=margin) == "no effect").any(axis=(-1, -2))
    print(f"P(no effect claimed at some look | mean = margin) = {false_equivalence.mean():.4f}")
    assert false_equivalence.mean() <= LIMIT


def test_a_replayed_plan_stops_clear_cells_early_and_leaves_the_null_open():
    rng = np.random.default_rng(12)
    d = rng.standard_normal((6, 200))
    d[:2] += 1.0          # helps, clearly
    d[2] -= 0.6           # hurts
    d[3] *= 0.01          # no effect: tiny spread around 0
    verdict, used = cs.replay(d, 20, 200, 10, smallest_effect=0.1)
    assert list(verdict[:4]) == ["helps", "helps", "hurts", "no effect"]
    assert (used[:2] < 60).all() and used[3] == 20 and (used[4:] == 200).all() and list(verdict[4:]) == ["", ""]
    again = cs.replay(d, 20, 200, 10, smallest_effect=0.1)
    assert (again[0] == verdict).all() and (again[1] == used).all()
    # a cell's decision depends on its seeds up to its stop only: later seeds change nothing
    later = d.copy()
    later[0, used[0]:] = -50.0
    assert cs.replay(later, 20, 200, 10, smallest_effect=0.1)[0][0] == "helps"
