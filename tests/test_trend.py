"""One model across the grid: coefficients that cover a known trend, a best rate where it is,
and a lack-of-fit check that speaks up when the model misses the pattern."""
import numpy as np
import pandas as pd

from analysis.trend import fit_trend

RATES, SIZES, SEEDS = (0.1, 0.3, 0.5, 0.7), (10, 20, 50), 20
TRUTH = {"Intercept": -0.25, "p": 0.2, "p2": -0.25, "logN": 0.17, "logN2": -0.027, "p:logN": 0.01}


def _frame(rng: np.random.Generator, wiggle: float = 0.0) -> pd.DataFrame:
    """Deltas with a known trend, a seed effect shared by a seed's cells, and noise."""
    rows = []
    seed_effect = rng.normal(0, 0.01, SEEDS)
    for p in RATES:
        for n in SIZES:
            L = np.log(n)
            mean = (TRUTH["Intercept"] + TRUTH["p"] * p + TRUTH["p2"] * p * p + TRUTH["logN"] * L
                    + TRUTH["logN2"] * L * L + TRUTH["p:logN"] * p * L + wiggle * (1 if p in (0.3, 0.7) else -1))
            for s in range(SEEDS):
                rows.append({"dropout": p, "n_train": n, "seed": s,
                             "delta_test_mse": mean + seed_effect[s] + rng.normal(0, 0.02)})
    return pd.DataFrame(rows)


def test_intervals_cover_a_known_trend():
    rng = np.random.default_rng(2026)
    draws = 80
    covered = {k: 0 for k in TRUTH}
    for _ in range(draws):
        tr = fit_trend(_frame(rng), ["dropout", "n_train"], "delta_test_mse")
        for _, r in tr.coefficients.iterrows():
            covered[r["term"]] += r["ci_low"] <= TRUTH[r["term"]] <= r["ci_high"]
    assert tr.method.startswith("MixedLM") and tr.formula == "delta ~ p + p2 + logN + logN2 + p:logN"
    rates = {k: v / draws for k, v in covered.items()}
    assert all(r >= 0.9 for r in rates.values()), rates


def test_the_best_rate_is_where_the_known_curve_peaks():
    tr = fit_trend(_frame(np.random.default_rng(7)), ["dropout", "n_train"], "delta_test_mse")
    best = tr.best_rate.set_index("n_train")
    for n in SIZES:   # p* = -(b_p + b_pN log N) / (2 b_p2)
        truth = -(TRUTH["p"] + TRUTH["p:logN"] * np.log(n)) / (2 * TRUTH["p2"])
        assert best.loc[n, "ci_low"] <= truth <= best.loc[n, "ci_high"], (n, truth, best.loc[n].to_dict())
    peak = np.exp(-(TRUTH["logN"] + TRUTH["p:logN"] * 0.4) / (2 * TRUTH["logN2"]))
    assert tr.peak_n["ci_low"] <= peak <= tr.peak_n["ci_high"]
    assert not tr.fits_badly


def test_lack_of_fit_speaks_up_when_the_model_misses_the_pattern():
    tr = fit_trend(_frame(np.random.default_rng(7), wiggle=0.015), ["dropout", "n_train"], "delta_test_mse")
    assert tr.fits_badly and tr.lack_of_fit_p < 0.05
    from analysis.prose import _trend

    class Rep:
        trend = tr
    assert "fits the cell means badly" in _trend(Rep())


def test_no_model_without_a_swept_setting_it_knows():
    frame = _frame(np.random.default_rng(1)).assign(dropout=0.5)
    assert fit_trend(frame.assign(n_train=20), ["dropout", "n_train"], "delta_test_mse") is None
