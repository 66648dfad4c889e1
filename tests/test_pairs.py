"""A comparison's cells come from the settings its two arms read; each (seed, pair of arms) counts once."""
import numpy as np
import pandas as pd
import pytest

from bench import TrialConfig

ALL = ["plain", "dropout", "early_stop", "weight_decay"]
ARM = {"status": "ok", "diverged_at_step": None, "train_mse": 0.05, "train_loss_last": 0.05, "gap": 0.1,
       "curve_steps": [], "curve_train_mse": [], "curve_test_mse": [], "step_seconds_median": 1e-3,
       "step_seconds_iqr": 1e-4, "group_size": 1, "engine": "single"}


def _records(lambdas, patiences=(5,), seeds=8):
    """Plain and dropout outcomes depend on (n_train, dropout, seed) only; weight decay's on lambda too,
    early stopping's on patience: as the trained arms would."""
    records = []
    for n in (20, 50):
        for p in (0.2, 0.5):
            for lam in lambdas:
                for pat in patiences:
                    for seed in range(seeds):
                        g = np.random.default_rng([n, seed])            # shared by both rates: the plain net
                        plain = 0.15 + 0.02 * g.standard_normal()
                        h = np.random.default_rng([n, int(p * 10), seed])
                        drop = plain - (0.01 if n == 20 else -0.002) * (1 + p) - 0.01 * h.standard_normal()
                        wd = plain - 0.005 + lam + 0.003 * np.random.default_rng([n, seed, int(lam * 1e4)]).random()
                        es = plain + 0.001 * pat
                        cfg = TrialConfig(n_train=n, dropout=p, seed=seed, arms=ALL, weight_decay=lam, patience=pat)
                        result = {"config": cfg.to_dict(), "delta_test_mse": plain - drop, "env": {}, "schema_version": 3,
                                  "plain": {**ARM, "rate": 0.0, "test_mse": plain},
                                  "dropout": {**ARM, "rate": p, "test_mse": drop},
                                  "comparators": {"weight_decay": {**ARM, "rate": 0.0, "test_mse": wd},
                                                  "early_stop": {**ARM, "rate": 0.0, "test_mse": es,
                                                                 "best_step": 40, "stopped_step": 90}}}
                        records.append({"trial_id": cfg.config_hash(), "status": "ok", "error": None,
                                        "config": cfg.to_dict(), "result": result})
    return records


def _manifest(*axes):
    return {"grid_axes": list(axes), "seeds": list(range(8))}


COLUMNS = ["n_train", "dropout", "delta_n", "delta_mean", "delta_ci_low", "delta_ci_high", "p_holm", "p_bh",
           "verdict"]


def test_a_comparator_setting_splits_no_plain_versus_dropout_cell():
    from analysis.numbers.estimates import estimate

    one = estimate(_records([0.01]), _manifest("n_train", "dropout"))
    three = estimate(_records([1e-4, 1e-3, 1e-2]), _manifest("n_train", "dropout", "weight_decay"))
    assert one.axes == three.axes == ["n_train", "dropout"]
    assert len(three.cells) == 4
    pd.testing.assert_frame_equal(one.cells[COLUMNS], three.cells[COLUMNS])
    # the trend model sees each seed's pair once: the same rows, the same intervals
    assert one.trend is not None and three.trend is not None and one.trend.n == three.trend.n
    pd.testing.assert_frame_equal(one.trend.coefficients, three.trend.coefficients)
    pd.testing.assert_frame_equal(one.trend.cell_fit, three.trend.cell_fit)
    # the best cell, the seed plan and the line rows too
    assert one.best == three.best and one.best is not None and one.best.family == 4
    assert one.plan == three.plan and one.plan.family == 4
    pd.testing.assert_frame_equal(one.line, three.line)


def test_the_weight_decay_comparison_splits_by_lambda_and_not_by_patience():
    from analysis.numbers.comparisons import comparison_tables
    from analysis.records.frame import records_frame

    frame = records_frame(_records([1e-4, 1e-2], patiences=(3, 10)))
    tables = comparison_tables(frame, ["n_train", "dropout", "weight_decay", "patience"])
    wd, es = tables["weight_decay"], tables["early_stop"]
    assert wd.attrs["axes"] == ["n_train", "dropout", "weight_decay"] and len(wd) == 8
    assert es.attrs["axes"] == ["n_train", "dropout", "patience"] and len(es) == 8
    assert (wd["delta_n"] == 8).all() and (es["delta_n"] == 8).all()   # 8 seeds, not 16: no repeated pairs


def test_a_corrupted_copy_of_a_pair_raises():
    from analysis.numbers.estimates import estimate
    from analysis.records.pairs import DuplicateMismatch

    records = _records([1e-4, 1e-2])
    bad = next(r for r in records if r["config"].get("weight_decay") == 1e-4 and r["config"]["seed"] == 3)
    bad["result"]["delta_test_mse"] += 1e-12                     # the same pair of arms, another number
    with pytest.raises(DuplicateMismatch, match="delta_test_mse differs"):
        estimate(records, _manifest("n_train", "dropout", "weight_decay"))


def test_which_settings_an_arm_reads_comes_from_its_identity():
    from analysis.records.frame import records_frame
    from analysis.records.pairs import comparison_axes

    frame = records_frame(_records([1e-4, 1e-2], patiences=(3, 10), seeds=1))
    axes = ["n_train", "dropout", "weight_decay", "patience"]
    assert comparison_axes(frame, axes, "plain", "dropout") == ["n_train", "dropout"]
    assert comparison_axes(frame, axes, "plain", "weight_decay") == ["n_train", "weight_decay"]
    assert comparison_axes(frame, axes, "dropout", "early_stop") == ["n_train", "dropout", "patience"]
