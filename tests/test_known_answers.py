"""The oracle and least-squares rows land on the textbook table (ESL 7.4) on the nets' own data."""
import numpy as np
import pytest

from analysis.known_answers import known_answer_table, known_answer_trials, textbook
from bench import TrialConfig, make_data


def test_textbook_table_by_hand():
    t = textbook(0.3, 20)
    assert t.loc["oracle"].tolist() == pytest.approx([0.09, 0.09, 0.0])
    assert t.loc["least_squares"].tolist() == pytest.approx([0.081, 0.099, 0.018])
    assert t.loc["interpolator"].tolist() == pytest.approx([0.0, 0.18, 0.18])


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


def test_two_hundred_seeds_land_on_the_textbook_values():
    trials = known_answer_trials([(s, 20, 0.3) for s in range(200)])
    table = known_answer_table(trials, seed=0, n_resamples=1999).set_index("predictor")
    assert table.loc["oracle", "n_seeds"] == 200
    for pred, expected in (("oracle", (0.090, 0.090, 0.0)), ("least_squares", (0.081, 0.099, 0.018))):
        for metric, value in zip(("train_mse", "test_mse", "gap"), expected):
            row = table.loc[pred]
            assert row[f"{metric}_expected"] == pytest.approx(value)
            assert row[f"{metric}_ci_low"] <= value <= row[f"{metric}_ci_high"], (pred, metric, row[metric])
            assert row[f"{metric}_within"]
    # and the intervals are tight enough to tell the two predictors apart
    assert table.loc["least_squares", "train_mse_ci_high"] < 0.090
    assert table.loc["least_squares", "gap_ci_low"] > 0.0
