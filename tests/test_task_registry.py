"""A task is one object: a toy task added to bench.task.TASKS alone is checked, drawn and answered."""
import dataclasses

import numpy as np
import pytest
import torch

from analysis.numbers.known_answers import known_answer_trials, textbook
from bench import TASKS, ConfigError, TrialConfig, make_data


@pytest.fixture
def cubic(monkeypatch):
    """y = x^3 + noise on the 1-input grid: a curved known truth, added in one place."""
    task = dataclasses.replace(TASKS["sine1d"], name="cubic1d", label="y = x^3 + noise", truth=lambda x: x ** 3,
                               inputs_rule="the cubic1d task has one input: leave it 0 (or 1)",
                               predictors=(("oracle", "oracle x^3"), ("least_squares", "least-squares line")))
    monkeypatch.setitem(TASKS, "cubic1d", task)
    return task


def test_a_new_task_is_checked_by_the_config(cubic):
    assert TrialConfig(task="cubic1d", n_features=1).n_features == 0   # its own default, stored as 0
    assert TrialConfig(task="cubic1d").input_dim == 1
    with pytest.raises(ConfigError, match="n_features=3: the cubic1d task has one input"):
        TrialConfig(task="cubic1d", n_features=3)
    with pytest.raises(ConfigError, match="only the diabetes task has held-out rows; leave it 0 for cubic1d"):
        TrialConfig(task="cubic1d", test_size=5)


def test_a_new_task_draws_its_truth(cubic):
    data = make_data(TrialConfig(task="cubic1d", n_train=5, noise_std=0.0))
    x = torch.linspace(-1.0, 1.0, 5).unsqueeze(1)
    assert torch.equal(data.x, x) and torch.equal(data.y, x ** 3) and torch.equal(data.f_new, data.x_new ** 3)


def test_a_new_task_has_known_answers(cubic):
    book = textbook(0.3, 20, "cubic1d")
    assert book.loc["oracle", "test_mse"] == pytest.approx(0.09) and np.isnan(book.loc["least_squares", "test_mse"])
    rows = known_answer_trials([(0, 20, 0.3, "cubic1d", 0, 0)])
    assert list(rows["predictor"]) == ["oracle", "least_squares"]
    assert rows.loc[0, "excess_risk"] == 0.0
