"""The tasks: data that depend only on (seed, task settings), the truths by hand, no leaks on diabetes."""
import math

import numpy as np
import pytest
import torch

from bench import ConfigError, TrialConfig, make_data, run_trials
from bench import task as task_module
from bench.task import FRIEDMAN_MEAN, FRIEDMAN_SD, NEW_POINTS, truth

TASKS = ("toy1d", "sine1d", "friedman1", "diabetes")


def _same(a, b) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(_tensors(a), _tensors(b)))


def _tensors(d):
    return (d.x, d.y, d.x_test, d.y_test, d.x_new, d.y_new, d.f_x, d.f_new)


@pytest.mark.parametrize("task", TASKS)
def test_data_depend_on_seed_and_task_settings_only(task):
    base = TrialConfig(task=task, seed=4, n_train=30)
    same = base.replace(width=17, depth=3, dropout=0.1, lr=0.3, steps=9, init="separate",
                        arms=["plain", "dropout", "early_stop", "weight_decay"], weight_decay=0.5, patience=2)
    assert _same(make_data(base), make_data(same))                      # nothing of the network matters
    assert not _same(make_data(base), make_data(base.replace(seed=5)))  # the seed does
    assert _same(make_data(base.replace(seed=5)), make_data(base.replace(seed=9, data_seed=5)))  # the data stream's
    shapes = make_data(base)
    d = base.input_dim
    assert shapes.x.shape == (30, d) and shapes.y.shape == (30, 1)
    if task != "diabetes":   # toy1d's setting changes nothing on diabetes, whose labels are not ours
        assert not _same(make_data(base), make_data(base.replace(noise_std=0.5)))


def test_toy1d_data_are_unchanged_by_the_new_tasks():
    """The seed task's draws: y = x + 0.3 * N(0, 1) from the "train-noise" stream, as before."""
    d = make_data(TrialConfig(seed=3, n_train=5))
    from bench.rng import generator
    noise = torch.randn(5, 1, generator=generator(3, "train-noise"))
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    assert torch.equal(d.x, x) and torch.equal(d.y, x + 0.3 * noise) and d.x_test is d.x


def test_sine1d_is_the_same_draws_on_a_curved_truth():
    toy, sine = make_data(TrialConfig(seed=2, n_train=9)), make_data(TrialConfig(task="sine1d", seed=2, n_train=9))
    assert torch.equal(toy.x, sine.x)
    noise = (toy.y - toy.x) / 0.3
    torch.testing.assert_close(sine.y, torch.sin(math.pi * sine.x) + 0.3 * noise)
    assert torch.equal(sine.f_new, torch.sin(math.pi * sine.x_new))
    assert sine.x_new.shape == (NEW_POINTS, 1) and bool((sine.x_new.abs() <= 1).all())


def test_friedman1_by_hand_and_its_standardisation():
    x = torch.tensor([[0.5, 1.0, 0.5, 0.0, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9]])
    # 10 sin(pi/2) + 0 + 0 + 5 * 0.2 = 11
    assert truth(x, "friedman1").item() == pytest.approx((11 - FRIEDMAN_MEAN) / FRIEDMAN_SD, abs=1e-6)
    from scipy.integrate import dblquad
    m1 = dblquad(lambda u, v: math.sin(math.pi * u * v), 0, 1, 0, 1)[0]
    m2 = dblquad(lambda u, v: math.sin(math.pi * u * v) ** 2, 0, 1, 0, 1)[0]
    # independent terms: Var(20 (x3 - 1/2)^2) = 400 (1/80 - 1/144) = 20/9; Var(10 x4) + Var(5 x5) = 125/12
    assert FRIEDMAN_MEAN == pytest.approx(10 * m1 + 20 / 12 + 5 + 2.5, rel=1e-9)
    assert FRIEDMAN_SD ** 2 == pytest.approx(100 * (m2 - m1 ** 2) + 20 / 9 + 125 / 12, rel=1e-9)
    d = make_data(TrialConfig(task="friedman1", seed=0, n_train=2000, noise_std=0.0))
    assert d.x.shape == (2000, 10) and bool(((d.x >= 0) & (d.x < 1)).all())
    assert d.y.mean().item() == pytest.approx(0.0, abs=0.08) and d.y.std().item() == pytest.approx(1.0, abs=0.05)
    assert make_data(TrialConfig(task="friedman1", n_features=5)).x.shape == (20, 5)


def test_diabetes_split_is_disjoint_and_standardised_on_training_rows():
    cfg = TrialConfig(task="diabetes", seed=1, n_train=100, test_size=50)
    d = make_data(cfg)
    train, test = set(d.rows_train.tolist()), set(d.rows_test.tolist())
    assert len(train) == 100 and len(test) == 50 and not train & test
    assert d.x.shape == (100, 10) and d.x_test.shape == (50, 10) and d.f_x is None and d.x_new is None
    torch.testing.assert_close(d.x.double().mean(0), torch.zeros(10, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(d.y.double().std(unbiased=False), torch.tensor(1.0, dtype=torch.float64))
    other = make_data(cfg.replace(seed=2))
    assert set(other.rows_train.tolist()) != train
    assert make_data(cfg.replace(n_features=3)).x.shape == (100, 3)


def test_diabetes_never_lets_test_rows_into_training(monkeypatch):
    """Scramble every held-out row of the data set: the training inputs, targets and the nets'
    training are unchanged, and only the test error moves."""
    cfg = TrialConfig(task="diabetes", seed=3, n_train=40, width=16, steps=30)
    clean = make_data(cfg)
    inputs, target = task_module.diabetes_table()
    held = torch.ones(len(target), dtype=torch.bool)
    held[clean.rows_train] = False
    bad_inputs, bad_target = inputs.clone(), target.clone()
    bad_inputs[held] = 1e6
    bad_target[held] = -1e6
    monkeypatch.setattr(task_module, "diabetes_table", lambda: (bad_inputs, bad_target))
    scrambled = make_data(cfg)
    assert torch.equal(clean.x, scrambled.x) and torch.equal(clean.y, scrambled.y)
    assert not torch.equal(clean.y_test, scrambled.y_test)
    after = run_trials([cfg], engine="single")[0]
    monkeypatch.undo()
    before = run_trials([cfg], engine="single")[0]
    assert before.plain.curve_train_mse == after.plain.curve_train_mse
    assert before.dropout.train_mse == after.dropout.train_mse
    assert before.plain.test_mse != after.plain.test_mse


@pytest.mark.parametrize("bad, message", [
    (dict(task="sine2d"), "task"),
    (dict(task="toy1d", n_features=3), "one input"),
    (dict(task="friedman1", n_features=4), "5 to 100"),
    (dict(task="diabetes", n_features=11), "1-10"),
    (dict(task="friedman1", test_size=10), "only the diabetes task"),
    (dict(task="diabetes", n_train=400), "at most the 442 rows"),
])
def test_task_settings_are_checked_with_one_line(bad, message):
    with pytest.raises(ConfigError, match=message):
        TrialConfig(**bad)


def test_new_fields_leave_old_identities_alone():
    """Fields at their defaults are left out of the canonical JSON: a stored seed-config trial keeps its id."""
    assert TrialConfig().config_hash() == "8a82df70a19bdef3"
    assert "arms" not in TrialConfig().to_dict()
    assert TrialConfig(task="sine1d").config_hash() != TrialConfig().config_hash()


def _values(result):
    arms = [result.plain, result.dropout, *result.comparators.values()]
    return [tuple(repr(v) for v in (a.train_mse, a.test_mse, a.train_loss_last, *a.curve_test_mse, a.excess_risk,
                                    a.new_mse, a.best_step, a.stopped_step)) for a in arms]


@pytest.mark.parametrize("task", TASKS)
def test_batched_equals_single_for_every_arm_and_task(task):
    arms = ["plain", "dropout", "early_stop", "weight_decay"]
    cfgs = [TrialConfig(task=task, seed=s, n_train=24, width=24, steps=60, arms=arms, dropout=r, patience=2)
            for s in range(2) for r in (0.2, 0.5)]
    single = run_trials(cfgs, engine="single")
    assert {a.group_size for r in single for a in (r.plain, r.dropout, *r.comparators.values())} == {1}
    for size in (3, 64):
        batched = run_trials(cfgs, engine="batched", group_size=size)
        assert [_values(r) for r in batched] == [_values(r) for r in single]
    assert np.isfinite(single[0].comparators["early_stop"].test_mse)


@pytest.mark.parametrize("n_train", [19, 40])
def test_batched_equals_single_with_few_inputs_and_a_narrow_first_layer(n_train):
    """MKL rounds the first layer's weight gradient with 3 inputs differently where its output is not
    16-byte aligned; each arm's slice of that product is aligned, as a lone arm's is."""
    cfgs = [TrialConfig(task="diabetes", n_features=3, seed=s, n_train=n_train, width=w, depth=d, steps=30,
                        dropout=r) for s in range(2) for r in (0.3, 0.5) for w, d in ((17, 2), (33, 3))]
    single = run_trials(cfgs, engine="single")
    for size in (3, 8):
        assert [_values(r) for r in run_trials(cfgs, engine="batched", group_size=size)] == \
            [_values(r) for r in single]
