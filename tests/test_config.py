import json
import pickle

import pytest

from bench import ConfigError, TrialConfig


def test_defaults_reproduce_the_seed_experiment():
    c = TrialConfig()
    assert (c.task, c.n_train, c.noise_std, c.width, c.depth, c.dropout, c.lr, c.steps, c.eval_every,
            c.seed, c.device) == ("toy1d", 20, 0.3, 300, 2, 0.5, 0.01, 500, 10, 0, "cpu")


@pytest.mark.parametrize("field, value, message", [
    ("dropout", 1.0, "dropout=1.0: must be in [0, 1)"),
    ("dropout", -0.1, "dropout=-0.1: must be in [0, 1)"),
    ("width", 0, "width=0: must be >= 1"),
    ("depth", 0, "depth=0: must be >= 1"),
    ("steps", 0, "steps=0: must be >= 1"),
    ("n_train", 1, "n_train=1: must be >= 2"),
    ("noise_std", -0.5, "noise_std=-0.5: must be >= 0"),
    ("lr", float("nan"), "lr=nan: must be a finite number"),
    ("dropout", float("nan"), "dropout=nan: must be a finite number"),
    ("width", 30.0, "width=30.0: expected int, got float"),
    ("width", True, "width=True: expected int, got bool"),
    ("dropout", "0.5", "dropout='0.5': expected float, got str"),
    ("task", "mnist", "task='mnist': must be one of toy1d"),
    ("device", "tpu", "device='tpu': must be 'cpu', 'cuda' or 'cuda:N'"),
])
def test_invalid_fields_name_field_value_and_allowed(field, value, message):
    with pytest.raises(ConfigError) as err:
        TrialConfig(**{field: value})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_unknown_key_lists_valid_fields():
    with pytest.raises(ConfigError, match=r"unknown config field 'widht'; valid fields: task, n_train"):
        TrialConfig.from_dict({"widht": 3})


def test_int_accepted_for_float_and_stored_as_float():
    assert TrialConfig(lr=1).lr == 1.0 and isinstance(TrialConfig(lr=1).lr, float)


def test_canonical_json_is_stable_and_identifies_config():
    a, b = TrialConfig(seed=1, lr=1), TrialConfig.from_dict({"lr": 1.0, "seed": 1})
    assert a.canonical_json() == b.canonical_json() and a.config_hash() == b.config_hash()
    assert a.config_hash() != TrialConfig(seed=2).config_hash()
    assert json.loads(a.canonical_json())["lr"] == 1.0


def test_frozen_and_picklable():
    c = TrialConfig()
    with pytest.raises(Exception):
        c.width = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(c)) == c
