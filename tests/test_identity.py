"""Stored trials keep their ids: ids computed by the code that wrote the first stores, pinned.

A change to how a config is defined (a field moved into an arm's or a task's object, a
setting added) must leave every one of these as it was, or older stores would stop resuming.
"""
import pytest

from bench import TrialConfig
from sweeps.identity import trial_id

PINNED = [
    ({}, "de7e4bdc00c8b16c0981"),
    ({"seed": 7, "dropout": 0.2, "n_train": 50}, "34ff6b7e477cd5fbd967"),
    ({"task": "friedman1", "n_features": 7, "width": 64}, "fad1581383ab3387ddf7"),
    ({"task": "diabetes", "test_size": 100, "n_train": 200}, "d2caf81b3a89dbbb510c"),
    ({"task": "sine1d", "noise_std": 0.1}, "ca50e32c8d8e8c6e72bf"),
    ({"arms": ["plain", "dropout", "early_stop", "weight_decay"], "weight_decay": 1e-3, "patience": 3},
     "da82e11534983a1fc604"),
    ({"arms": ["plain", "dropout", "early_stop"], "val_fraction": 0.5}, "577d055207c452f04f82"),
    ({"seed": 3, "data_seed": 1, "init_seed": 2, "mask_seed": 0}, "04f3b6aec6c63993211b"),
    ({"init": "separate", "depth": 3, "lr": 0.001, "steps": 200, "eval_every": 20}, "5c0bf9acffebbd5a537a"),
]


@pytest.mark.parametrize("settings, expected", PINNED)
def test_stored_trial_ids_do_not_change(settings, expected):
    assert trial_id(TrialConfig(**settings)) == expected
    assert trial_id(TrialConfig.from_dict(settings)) == expected


def test_a_task_default_given_explicitly_is_the_same_trial():
    assert trial_id(TrialConfig(task="friedman1", n_features=10)) == trial_id(TrialConfig(task="friedman1"))
