"""The oracle and least-squares rows land on the textbook table (ESL 7.4) on the nets' own data."""
import numpy as np
import pytest

from analysis.numbers.known_answers import known_answer_table, known_answer_trials, textbook
from bench import TrialConfig, make_data


def test_textbook_table_by_hand():
    t = textbook(0.3, 20)[["train_mse", "test_mse", "gap", "excess_risk"]]
    assert t.loc["oracle"].tolist() == pytest.approx([0.09, 0.09, 0.0, 0.0])
    assert t.loc["least_squares"].tolist() == pytest.approx([0.081, 0.099, 0.018, 0.009])  # sigma^2 2/N
    assert t.loc["interpolator"].tolist() == pytest.approx([0.0, 0.18, 0.18, 0.09])
    # at fresh inputs: sigma^2 (1/N + (1/3) / sum x_i^2); for N = 3 (x = -1, 0, 1) that is 0.09 (1/3 + 1/6)
    assert textbook(0.3, 3).loc["least_squares", "new_excess_risk"] == pytest.approx(0.09 * 0.5)
    assert textbook(0.3, 3).loc["oracle", "new_mse"] == pytest.approx(0.09)


def test_rows_are_the_predictors_on_make_data():
    trials = known_answer_trials([(5, 12, 0.3)])
    data = make_data(TrialConfig(seed=5, n_train=12, noise_std=0.3))
    x = data.x.squeeze(1).double().numpy()
    y, y_test = data.y.squeeze(1).double().numpy(), data.y_test.squeeze(1).double().numpy()
    oracle = trials[trials.predictor == "oracle"].iloc[0]
    assert oracle.train_mse == pytest.approx(np.mean((y - x) ** 2))
    assert oracle.test_mse == pytest.approx(np.mean((y_test - x) ** 2))
    fit = np.polyval(np.polyfit(x, y, 1), x)
    ls = trials[trials.predictor == "least_squares"].iloc[0]
    assert ls.train_mse == pytest.approx(np.mean((y - fit) ** 2))
    assert ls.test_mse == pytest.approx(np.mean((y_test - fit) ** 2))
    assert ls.gap == pytest.approx(ls.test_mse - ls.train_mse)
    # noise-free: against f(x) = x, at the training x and at the fresh inputs
    assert oracle.excess_risk == 0.0 and oracle.new_excess_risk == 0.0
    assert ls.excess_risk == pytest.approx(np.mean((fit - x) ** 2))
    x_new, y_new = data.x_new.squeeze(1).double().numpy(), data.y_new.squeeze(1).double().numpy()
    line_new = np.polyval(np.polyfit(x, y, 1), x_new)
    assert ls.new_mse == pytest.approx(np.mean((y_new - line_new) ** 2))
    assert ls.new_excess_risk == pytest.approx(np.mean((line_new - x_new) ** 2))
    assert oracle.new_mse == pytest.approx(np.mean((y_new - x_new) ** 2))


def test_two_hundred_seeds_land_on_the_textbook_values():
    trials = known_answer_trials([(s, 20, 0.3) for s in range(200)])
    table = known_answer_table(trials, seed=0, n_resamples=1999).set_index("predictor")
    assert table.loc["oracle", "n_seeds"] == 200
    line_new = 0.09 * (1 / 20 + (1 / 3) / np.sum(np.linspace(-1, 1, 20) ** 2))
    for pred, expected in (("oracle", (0.090, 0.090, 0.0, 0.090, 0.0)),
                           ("least_squares", (0.081, 0.099, 0.018, 0.09 + line_new, line_new))):
        for metric, value in zip(("train_mse", "test_mse", "gap", "new_mse", "new_excess_risk"), expected):
            row = table.loc[pred]
            assert row[f"{metric}_expected"] == pytest.approx(value)
            assert row[f"{metric}_ci_low"] <= value <= row[f"{metric}_ci_high"], (pred, metric, row[metric])
            assert row[f"{metric}_within"]
    # and the intervals are tight enough to tell the two predictors apart
    assert table.loc["least_squares", "train_mse_ci_high"] < 0.090
    assert table.loc["least_squares", "gap_ci_low"] > 0.0


def test_excess_risk_of_the_line_is_sigma2_2_over_n_and_the_oracles_is_0():
    """Over 200 seeds: the line's noise-free in-sample error lands on sigma^2 d / N, the oracle's is
    exactly 0 while its noisy test MSE has mean sigma^2."""
    trials = known_answer_trials([(s, 20, 0.3) for s in range(200)])
    table = known_answer_table(trials).set_index("predictor")
    ls, oracle = table.loc["least_squares"], table.loc["oracle"]
    assert ls["excess_risk_ci_low"] <= 0.09 * 2 / 20 <= ls["excess_risk_ci_high"]
    assert ls["excess_risk_within"] and ls["excess_risk_expected"] == pytest.approx(0.009)
    assert (trials[trials.predictor == "oracle"]["excess_risk"] == 0).all()
    assert oracle["test_mse_ci_low"] <= 0.09 <= oracle["test_mse_ci_high"]
    # the noise-free outcome is far less noisy than the noisy one: the line's interval is narrower
    assert (ls["excess_risk_ci_high"] - ls["excess_risk_ci_low"]) < 0.5 * (ls["test_mse_ci_high"] - ls["test_mse_ci_low"])
