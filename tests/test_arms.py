"""Arm kinds are objects (bench.arms): a kind added at run time is checked, trained and identified
like the built-in ones, and a config that does not use it keeps its identity."""
import pytest

from bench import ConfigError, TrialConfig, arms
from bench.results import trial_arms
from bench.trial import run_trials
from sweeps.identity import trial_id


def _l1(p, g, c):
    g.add_(p.sign() * c)


TOY = arms.ArmKind("toy_l1", "a toy L1 penalty", "The toy_l1 arm adds lambda * sign(theta) to its gradient.",
                   settings=(arms.Setting("toy_lambda", 1e-3, "float", lambda v: v >= 0, "must be >= 0"),),
                   gradient=_l1, coefficient="toy_lambda")


@pytest.fixture
def toy():
    arms.register_arm(TOY)
    yield TOY
    del arms.ARMS[TOY.name]


def test_an_added_setting_is_left_out_of_the_identity_at_its_default(toy):
    base = TrialConfig(arms=["plain", "dropout", "toy_l1"])
    same = TrialConfig(arms=["plain", "dropout", "toy_l1"], toy_lambda=1e-3)
    other = TrialConfig.from_dict({"arms": ["plain", "dropout", "toy_l1"], "toy_lambda": 0.1})
    assert base == same and trial_id(base) == trial_id(same)
    assert "toy_lambda" not in base.to_dict() and other.to_dict()["toy_lambda"] == 0.1
    assert other.toy_lambda == 0.1 and base.toy_lambda == 1e-3
    assert other.replace(toy_lambda=1e-3) == base
    assert TrialConfig.from_dict(other.to_dict()) == other          # round trip through a record


def test_an_added_setting_is_checked_by_its_arm(toy):
    with pytest.raises(ConfigError, match="toy_lambda=-1.0: must be >= 0"):
        TrialConfig(arms=["plain", "dropout", "toy_l1"], toy_lambda=-1.0)
    with pytest.raises(ConfigError, match="changes only the toy_l1 arm"):
        TrialConfig(toy_lambda=0.5)
    with pytest.raises(ConfigError, match="unknown arm 'nope'"):
        TrialConfig(arms=["plain", "dropout", "nope"])


def test_a_kind_cannot_shadow_a_setting_or_a_name(toy):
    with pytest.raises(arms.ArmError, match="already defined"):
        arms.register_arm(arms.ArmKind("toy_l1", "again"))
    with pytest.raises(arms.ArmError, match="'width' is already a config setting"):
        arms.register_arm(arms.ArmKind("wide", "wide", settings=(arms.Setting("width", 1),)))
    with pytest.raises(arms.ArmError, match="'weight_decay' is already a config setting"):
        arms.register_arm(arms.ArmKind("wd2", "wd2", settings=(arms.Setting("weight_decay", 0.1),)))
    arms.register_arm(TOY)   # the same kind again: a module imported twice


def test_an_added_arm_trains_alike_in_a_group_and_alone(toy):
    """Its hook touches its own slice only: batched (with plain, dropout and weight decay beside it)
    equals one arm at a time, bit for bit, and its lambda changes what it learns."""
    cfgs = [TrialConfig(arms=["plain", "dropout", "weight_decay", "toy_l1"], toy_lambda=lam, width=16, steps=30,
                        n_train=10, seed=s) for lam in (1e-3, 0.05) for s in (0, 1)]
    batched = run_trials(cfgs, engine="batched", group_size=8)
    single = run_trials(cfgs, engine="single")
    for b, s in zip(batched, single):
        for kind in ("toy_l1", "weight_decay"):
            assert b.comparators[kind].test_mse == s.comparators[kind].test_mse
        assert b.plain.test_mse == s.plain.test_mse
    assert batched[0].comparators["toy_l1"].test_mse != batched[2].comparators["toy_l1"].test_mse
    assert batched[0].plain.test_mse == batched[2].plain.test_mse   # the plain arm reads no lambda
    assert set(trial_arms(cfgs[0])) == {"plain", "dropout", "weight_decay", "toy_l1"}
