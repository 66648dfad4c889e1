"""One model across the grid: intervals that cover a known trend when a seed's deltas are
correlated the way the trials make them, a best rate and a peak where they are, a lack-of-fit
test that holds its level and speaks up when the model misses the pattern.

The simulations run every replication at once: the design is balanced and the same in every
replication, so ``cluster_ols`` fits all the columns of Y in one pass."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from analysis.inference.clustered import INTERVAL, LINE, RAYS, cluster_ols, fieller, in_fieller, lack_of_fit, t_quantile
from analysis.inference.trend import design, fit_trend, min_seeds, vertex_weights

RATES, SIZES, SIZES4 = (0.1, 0.3, 0.5, 0.7), (10, 20, 50), (10, 20, 50, 100)
TRUTH = {"Intercept": -0.25, "p": 0.2, "p2": -0.25, "logN": 0.17, "logN2": -0.027, "p:logN": 0.01}
SD = 0.02                                  # the sd of one delta
SHARES = {"seed": 0.05, "seed x N": 0.55, "noise": 0.40}   # corr 0.6 across p within (seed, N), 0.05 across N
REPS = 1000


def _grid(sizes, seeds: int, rates=RATES) -> pd.DataFrame:
    """One row per (rate, N, seed): the trials of a balanced sweep."""
    idx = pd.MultiIndex.from_product([rates, sizes, range(seeds)], names=["dropout", "n_train", "seed"])
    return idx.to_frame(index=False)


def _deltas(grid: pd.DataFrame, rng: np.random.Generator, reps: int, truth=TRUTH, wiggle: float = 0.0) -> np.ndarray:
    """Y (rows, reps): the known trend, plus an effect shared by all rates of one (seed, N), a small
    effect shared by all of a seed's cells, and noise."""
    X, names = design(grid, ["dropout", "n_train"])
    mean = X @ np.array([truth[n] for n in names]) + wiggle * np.where(grid["dropout"].isin((0.3, 0.7)), 1, -1)
    seeds, sizes = grid["seed"].to_numpy(), grid["n_train"].to_numpy()
    block = pd.factorize(pd.Series(list(zip(seeds, sizes))))[0]
    u = rng.normal(0, SD * np.sqrt(SHARES["seed"]), (seeds.max() + 1, reps))
    b = rng.normal(0, SD * np.sqrt(SHARES["seed x N"]), (block.max() + 1, reps))
    e = rng.normal(0, SD * np.sqrt(SHARES["noise"]), (len(grid), reps))
    return mean[:, None] + u[seeds] + b[block] + e


def _one(grid: pd.DataFrame, rng: np.random.Generator, **kw) -> pd.DataFrame:
    return grid.assign(delta_test_mse=_deltas(grid, rng, 1, **kw)[:, 0])


def test_the_generator_has_the_trials_correlations():
    grid = _grid(SIZES, 400)
    y = _deltas(grid, np.random.default_rng(0), 1)[:, 0]
    cube = grid.assign(r=y - grid.assign(y=y).groupby(["dropout", "n_train"])["y"].transform("mean"))
    wide = cube.pivot_table(index="seed", columns=["n_train", "dropout"], values="r")
    c = np.corrcoef(wide.to_numpy().T)          # (12, 12), ordered N-major
    same_n = np.mean([c[i, j] for i in range(12) for j in range(12) if i != j and i // 4 == j // 4])
    other_n = np.mean([c[i, j] for i in range(12) for j in range(12) if i // 4 != j // 4])
    assert same_n == pytest.approx(0.6, abs=0.05) and other_n == pytest.approx(0.05, abs=0.04)


def test_cr1_is_statsmodels_cluster_covariance_and_cr2_is_the_spread_of_per_seed_fits():
    rng = np.random.default_rng(3)
    frame = _one(_grid(SIZES, 12), rng).sample(frac=0.9, random_state=1)   # unbalanced: some trials lost
    X, names = design(frame, ["dropout", "n_train"])
    beta, cov = cluster_ols(X, frame["seed"], frame["delta_test_mse"], kind="CR1")
    ref = smf.ols("delta_test_mse ~ dropout + I(dropout**2) + np.log(n_train) + I(np.log(n_train)**2)"
                  " + dropout:np.log(n_train)", frame).fit(cov_type="cluster", cov_kwds={"groups": frame["seed"]})
    np.testing.assert_allclose(beta[:, 0], ref.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(cov[0], ref.cov_params().to_numpy(), rtol=1e-8)
    # balanced: CR2 = the sample covariance of the G per-seed OLS coefficient vectors, divided by G
    grid = _grid(SIZES, 7)
    y = _deltas(grid, rng, 1)[:, 0]
    X, _ = design(grid, ["dropout", "n_train"])
    per_seed = np.stack([np.linalg.lstsq(X[grid.seed == s], y[grid.seed == s], rcond=None)[0] for s in range(7)])
    beta, cov = cluster_ols(X, grid["seed"], y)
    np.testing.assert_allclose(beta[:, 0], per_seed.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(cov[0], np.cov(per_seed.T) / 7, rtol=1e-8)


def test_fieller_by_hand():
    # theta = 1 / 2, independent numerator and denominator, sd 0.1 each, t = 2:
    # 3.96 theta^2 - 4 theta + 0.96 <= 0, roots (2 -+ sqrt(0.1984)) / 3.96
    beta, cov = np.array([[1.0], [2.0]]), np.diag([0.01, 0.01])[None]
    est, lo, hi, shape = fieller(beta, cov, np.array([1.0, 0.0]), np.array([0.0, 1.0]), 2.0)
    assert est[0] == 0.5 and shape[0] == INTERVAL
    assert (lo[0], hi[0]) == pytest.approx(((2 - 0.1984 ** 0.5) / 3.96, (2 + 0.1984 ** 0.5) / 3.96))
    # a denominator not clearly away from 0: two rays, or the whole line
    _, lo, hi, shape = fieller(np.array([[1.0], [0.1]]), cov, np.array([1.0, 0.0]), np.array([0.0, 1.0]), 2.0)
    assert shape[0] == RAYS and in_fieller(10.0, lo, hi, shape)[0] and not in_fieller(0.0, lo, hi, shape)[0]
    _, _, _, shape = fieller(np.array([[0.1], [0.1]]), cov, np.array([1.0, 0.0]), np.array([0.0, 1.0]), 2.0)
    assert shape[0] == LINE


def _coverage(sizes, seeds: int, rng: np.random.Generator) -> dict[str, float]:
    """Share of REPS simulated sweeps whose 95% interval holds the truth: every coefficient, the best
    rate at each N, the peak in N (with four N); and the lack-of-fit test's rejection rate."""
    grid = _grid(sizes, seeds)
    X, names = design(grid, ["dropout", "n_train"])
    Y = _deltas(grid, rng, REPS)
    beta, cov = cluster_ols(X, grid["seed"], Y)                         # (k, REPS), (REPS, k, k)
    t = t_quantile(seeds)
    truth = np.array([TRUTH[n] for n in names])
    se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2)).T                   # (k, REPS)
    out = dict(zip(names, (np.abs(beta - truth[:, None]) <= t * se).mean(axis=1)))
    for n in sizes:
        u, w = vertex_weights(names, "p", {"logN": np.log(n)})
        _, lo, hi, shape = fieller(beta, cov, u, w, t)
        out[f"p* at N={n}"] = in_fieller((u @ truth) / (w @ truth), lo, hi, shape).mean()
    if len(sizes) >= 4:
        u, w = vertex_weights(names, "logN", {"p": 0.4})
        _, lo, hi, shape = fieller(beta, cov, u, w, t)
        out["log peak N"] = in_fieller((u @ truth) / (w @ truth), lo, hi, shape).mean()
    cells = grid.groupby(["dropout", "n_train"]).ngroup().to_numpy()
    cell_x, _ = design(grid.drop_duplicates(["dropout", "n_train"]), ["dropout", "n_train"])
    out["lack of fit rejects"] = (lack_of_fit(cell_x, cells, grid["seed"], Y)[3] < 0.05).mean()
    return out


@pytest.mark.parametrize("sizes, seeds", [(SIZES, 30), (SIZES, 10), (SIZES4, 30), (SIZES4, 10)])
def test_intervals_cover_and_lack_of_fit_holds_its_level(sizes, seeds):
    # Monte Carlo sd of a 95% coverage over 1,000 replications: 0.7 points; of a 5% rate: 0.7 points
    cov = _coverage(sizes, seeds, np.random.default_rng(2026 + seeds + len(sizes)))
    rejects = cov.pop("lack of fit rejects")
    assert all(c >= 0.93 for c in cov.values()), cov
    if seeds > len(RATES) * len(sizes) - 6:     # Hotelling's F needs more seeds than contrasts
        assert 0.025 <= rejects <= 0.08, rejects
    else:
        assert rejects == 0                     # no test: p is NaN, never "fits badly"


def test_a_random_intercept_per_seed_under_covers_the_n_terms():
    """What the MixedLM with one intercept per seed assumed: one correlation for all of a seed's
    cells. Its estimates of the within-seed terms are OLS with a seed fixed effect, its errors
    sigma_within^2 (X~'X~)^-1 with z quantiles; on the trials' structure it misses the N terms."""
    grid = _grid(SIZES, 30)
    X, names = design(grid, ["dropout", "n_train"])
    Y = _deltas(grid, np.random.default_rng(11), REPS)
    seed = grid["seed"].to_numpy()
    Xw = X[:, 1:] - pd.DataFrame(X[:, 1:]).groupby(seed).transform("mean").to_numpy()   # within seeds
    Yw = Y - pd.DataFrame(Y).groupby(seed).transform("mean").to_numpy()
    bread = np.linalg.inv(Xw.T @ Xw)
    beta = bread @ Xw.T @ Yw                                                          # (k-1, REPS)
    sigma2 = ((Yw - Xw @ beta) ** 2).sum(axis=0) / (len(grid) - 30 - (len(names) - 1))
    se = np.sqrt(np.outer(np.diag(bread), sigma2))
    truth = np.array([TRUTH[n] for n in names[1:]])[:, None]
    cover = dict(zip(names[1:], (np.abs(beta - truth) <= sps.norm.ppf(0.975) * se).mean(axis=1)))
    assert cover["logN"] < 0.9 and cover["logN2"] < 0.9, cover


def test_fit_trend_is_the_simulated_estimator_and_says_its_method():
    frame = _one(_grid(SIZES4, 30), np.random.default_rng(8))
    tr = fit_trend(frame, ["dropout", "n_train"], "delta_test_mse")
    assert tr.method == "OLS, seed-clustered CR2 errors, t(G-1 = 29)" and tr.seeds == 30
    assert tr.formula == "delta ~ p + p2 + logN + logN2 + p:logN"
    X, names = design(frame, ["dropout", "n_train"])
    beta, cov = cluster_ols(X, frame["seed"], frame["delta_test_mse"])
    se = np.sqrt(np.diag(cov[0]))
    c = tr.coefficients.set_index("term")
    np.testing.assert_allclose(c["estimate"], beta[:, 0])
    np.testing.assert_allclose(c["ci_high"] - c["estimate"], sps.t.ppf(0.975, 29) * se)
    np.testing.assert_allclose(c["p"], 2 * sps.t.sf(np.abs(beta[:, 0] / se), 29))
    best = tr.best_rate.set_index("n_train")
    for n in SIZES4:   # p* = -(b_p + b_pN log N) / (2 b_p2)
        truth = -(TRUTH["p"] + TRUTH["p:logN"] * np.log(n)) / (2 * TRUTH["p2"])
        assert best.loc[n, "ci_low"] <= truth <= best.loc[n, "ci_high"], (n, truth, best.loc[n].to_dict())
    peak = np.exp(-(TRUTH["logN"] + TRUTH["p:logN"] * 0.4) / (2 * TRUTH["logN2"]))
    assert tr.peak_n["p"] == 0.4 and tr.peak_n["ci_low"] <= peak <= tr.peak_n["ci_high"]
    band = tr.curves[tr.curves.n_train == 20]
    assert (band["low"] < band["fitted"]).all() and (band["fitted"] < band["high"]).all()
    assert not tr.fits_badly and tr.lack_of_fit_df == (10, 20)


def test_no_peak_in_n_from_three_values_and_no_absurd_ends_beyond_the_grid():
    tr = fit_trend(_one(_grid(SIZES, 30), np.random.default_rng(7)), ["dropout", "n_train"], "delta_test_mse")
    assert tr.peak_n is None and any("through 3 values of N" in s for s in tr.notes)
    valley = {**TRUTH, "logN2": 0.02}
    tr = fit_trend(_one(_grid(SIZES4, 30), np.random.default_rng(7), truth=valley), ["dropout", "n_train"],
                   "delta_test_mse")
    assert tr.peak_n is None and any("not a cap in log N" in s for s in tr.notes)
    # a benefit that still rises at the largest rate tried: the vertex sits near 0.9
    rising = {**TRUTH, "p": 0.45, "p2": -0.25, "p:logN": 0.0}
    tr = fit_trend(_one(_grid(SIZES, 30), np.random.default_rng(7), truth=rising), ["dropout", "n_train"],
                   "delta_test_mse")
    for _, r in tr.best_rate.iterrows():
        assert "beyond the grid" in r["note"], r.to_dict()
        ends = [v for v in (r["p_star"], r["ci_low"], r["ci_high"]) if np.isfinite(v)]
        assert all(0.1 <= v <= 0.7 for v in ends) and not np.isfinite(r["ci_high"])


def test_lack_of_fit_speaks_up_when_the_model_misses_the_pattern():
    tr = fit_trend(_one(_grid(SIZES, 30), np.random.default_rng(7), wiggle=0.01), ["dropout", "n_train"],
                   "delta_test_mse")
    assert tr.fits_badly and tr.lack_of_fit_p < 0.05
    from analysis.pages.prose import _trend

    class Rep:
        trend = tr
    assert "fits the cell means badly" in _trend(Rep())


def test_no_model_without_a_swept_setting_it_knows_or_with_too_few_seeds():
    frame = _one(_grid(SIZES, 30), np.random.default_rng(1))
    assert fit_trend(frame.assign(dropout=0.5, n_train=20), ["dropout", "n_train"], "delta_test_mse") is None
    k = 6                                                       # Intercept, p, p2, logN, logN2, p:logN
    few = frame[frame.seed < min_seeds(k) - 1]
    assert min_seeds(k) == 8 and fit_trend(few, ["dropout", "n_train"], "delta_test_mse") is None
    assert fit_trend(frame[frame.seed < min_seeds(k)], ["dropout", "n_train"], "delta_test_mse") is not None


def test_an_axis_the_model_has_no_term_for_is_held_at_the_focus_cell():
    """Sweeping noise_std beside rate and N: one curve through both noise levels would describe neither."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from _records import synthetic_records
    from analysis.pages.report import build_report

    rng = np.random.default_rng(8)
    deltas = {(("dropout", p), ("n_train", n), ("noise_std", s)): rng.normal(0.01 * (s > 0.2), 0.01, 12)
              for p in RATES for n in SIZES for s in (0.1, 0.3)}
    rep = build_report(synthetic_records(deltas), {"name": "held", "grid_axes": ["dropout", "n_train", "noise_std"]},
                       figures=False, focus={"noise_std": 0.3, "dropout": 0.5, "n_train": 20})
    tr = rep.trend
    assert tr is not None and tr.scope == "noise_std = 0.3 only" and tr.n == len(RATES) * len(SIZES) * 12
    assert any("no term for noise_std" in note for note in tr.notes)
