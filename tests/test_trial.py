"""The trial core against the seed's own loop, and its plain-data results."""
import json
import pickle

import numpy as np
import pytest
from scipy import stats

from bench import TrialConfig, TrialResult, run_reference_trial, run_trial, run_trials
from bench.engine import ENGINE_REVISION


TIMING = ("step_seconds_median", "step_seconds_iqr")


def _science(arm):
    return {k: v for k, v in arm.to_dict().items() if k not in TIMING}


def test_same_seed_gives_identical_results(small):
    a, b = run_trial(small), run_trial(small)
    assert _science(a.plain) == _science(b.plain) and _science(a.dropout) == _science(b.dropout)
    assert a.delta_test_mse == b.delta_test_mse
    assert run_trial(small.replace(seed=1)).plain.test_mse != a.plain.test_mse


def test_different_rate_shares_data_and_initial_weights(small):
    """The plain arm of two rates is the same computation; both dropout arms start from it."""
    a, b = run_trial(small.replace(dropout=0.2)), run_trial(small.replace(dropout=0.7))
    assert a.plain.curve_test_mse == b.plain.curve_test_mse
    # common random numbers: the untrained networks are identical, so step-0 losses agree
    assert a.dropout.curve_test_mse[0] == b.dropout.curve_test_mse[0] == a.plain.curve_test_mse[0]
    assert a.dropout.test_mse != b.dropout.test_mse


def test_separate_init_draws_other_weights_for_the_dropout_arm(small):
    shared, separate = run_trial(small), run_trial(small.replace(init="separate"))
    assert shared.plain.curve_test_mse == separate.plain.curve_test_mse
    assert separate.dropout.curve_test_mse[0] != separate.plain.curve_test_mse[0]


def test_plain_arm_follows_the_seed_loop_step_for_step(small):
    """Same data, same init, same Adam: the engine's plain net tracks nn.Sequential's."""
    ours, ref = run_trial(small), run_reference_trial(small)
    np.testing.assert_allclose(ours.plain.curve_test_mse[:4], ref.plain.curve_test_mse[:4], rtol=1e-4)
    assert ours.dropout.curve_test_mse[0] == pytest.approx(ref.dropout.curve_test_mse[0], rel=1e-5)


def test_result_is_plain_data(small):
    r = run_trial(small)
    assert TrialResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert pickle.loads(pickle.dumps(r)) == r
    assert r.delta_test_mse == r.plain.test_mse - r.dropout.test_mse
    assert r.plain.gap == r.plain.test_mse - r.plain.train_mse
    assert r.plain.curve_steps == list(range(0, small.steps + 1, small.eval_every))
    assert {"torch", "device", "threads"} <= set(r.env) and r.config == small.to_dict()
    assert r.env["engine_revision"] == ENGINE_REVISION   # which step trained it
    assert r.plain.step_seconds_median > 0 and r.plain.step_seconds_iqr >= 0


def test_batched_run_equals_one_at_a_time(small):
    cfgs = [small.replace(seed=s, dropout=p) for s in range(3) for p in (0.3, 0.6)]
    single = run_trials(cfgs, engine="single")
    for size in (2, 5, 64):
        batched = run_trials(cfgs, engine="batched", group_size=size)
        assert [r.dropout.curve_test_mse for r in batched] == [r.dropout.curve_test_mse for r in single]
        assert [r.plain.test_mse for r in batched] == [r.plain.test_mse for r in single]


def _bootstrap_ci(x, seed):
    res = stats.bootstrap((np.asarray(x),), np.mean, n_resamples=2000, method="percentile",
                          random_state=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


@pytest.mark.slow
def test_default_trial_reproduces_the_seed_in_distribution():
    """Over 30 seeds (200 steps here to keep CI short; README gives the 500-step check):
    the plain net fits its training points far better than the test points, dropout beats
    it on a clear majority of seeds, and the engine's mean test MSEs agree with the seed's
    own loop within bootstrap CIs."""
    cfgs = [TrialConfig(seed=s, steps=200) for s in range(30)]
    ours = run_trials(cfgs, engine="batched")
    ref = [run_reference_trial(c) for c in cfgs]
    plain_train = np.array([r.plain.train_mse for r in ours])
    plain_test = np.array([r.plain.test_mse for r in ours])
    drop_test = np.array([r.dropout.test_mse for r in ours])
    assert plain_train.mean() < 0.5 * plain_test.mean()
    assert (drop_test < plain_test).mean() >= 0.65
    for arm in ("plain", "dropout"):
        a = [getattr(r, arm).test_mse for r in ours]
        b = [getattr(r, arm).test_mse for r in ref]
        lo_a, hi_a = _bootstrap_ci(a, 1)
        lo_b, hi_b = _bootstrap_ci(b, 2)
        assert lo_b <= np.mean(a) <= hi_b and lo_a <= np.mean(b) <= hi_a, arm
