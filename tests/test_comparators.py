"""The comparator arms: early stopping by a fixed rule, weight decay as Adam's coupled L2, paired on one seed."""
import math

import pytest
import torch
from torch import nn

from bench import ConfigError, TrialConfig, run_trials
from bench.engine import _EarlyStop, early_stop_point, train_group
from bench.reference import build_net
from bench.results import comparator_arm, plain_arm, trial_arms
from bench.task import make_data, validation_rows

ALL = ["plain", "dropout", "early_stop", "weight_decay"]


@pytest.mark.parametrize("curve, patience, expected", [
    ([5, 4, 3, 3.5, 3.2, 3.1, 2.9], 3, (2, 5)),     # best at 2; checks 3, 4, 5 bring nothing: stop at 5
    ([5, 4, 3, 3.5, 3.2, 2.9, 2.0], 3, (6, 6)),     # improves at 5 (2.9 < 3) and 6: never stops
    ([1, 2, 3, 4], 1, (0, 1)),                      # patience 1: stop at the first check without improvement
    ([3, 3, 3, 3], 2, (0, 2)),                      # equal is not an improvement
    ([math.nan, math.nan, 1.0], 2, (-1, 1)),        # nothing finite yet: stops without a best
])
def test_early_stop_rule_on_crafted_curves(curve, patience, expected):
    assert early_stop_point(curve, patience) == expected


def test_the_engines_early_stop_follows_the_rule_on_a_crafted_curve():
    """Feed _EarlyStop validation MSEs by hand (Y = 0, outputs sqrt(v) on the held rows)."""
    cfgs = [TrialConfig(seed=s, n_train=8, width=4, patience=p, arms=ALL) for s, p in ((0, 3), (1, 1))]
    arms = [comparator_arm(c, "early_stop") for c in cfgs]
    early = _EarlyStop(arms, 0, torch.device("cpu"))
    held = torch.stack([validation_rows(c) for c in cfgs]).unsqueeze(2)       # (2, 8, 1)
    curves = [[5, 4, 3, 3.5, 3.2, 3.1, 2.9], [1, 2, 0.5, 4, 4, 4, 4]]
    params = [torch.zeros(2, 1, 4)]
    for slot in range(7):
        v = torch.tensor([c[slot] for c in curves]).view(2, 1, 1)
        out = torch.where(held, v.sqrt(), 0.0)
        params[0].fill_(slot)                                                   # weights that name their step
        early.check(slot, out, torch.zeros(2, 8, 1), params)
    assert early.best.tolist() == [2, 0] and early.stop.tolist() == [5, 1]
    assert [early_stop_point(c, p) for c, p in zip(curves, (3, 1))] == [(2, 5), (0, 1)]
    early.restore(params)
    assert params[0][0].unique().tolist() == [2.0] and params[0][1].unique().tolist() == [0.0]


def test_early_stop_arm_results_agree_with_its_own_validation_curve():
    cfg = TrialConfig(seed=2, n_train=20, width=32, steps=300, arms=ALL, patience=3)
    es = run_trials([cfg], engine="single")[0].comparators["early_stop"]
    best, stop = early_stop_point(es.curve_val_mse, 3)
    assert es.best_step == best * cfg.eval_every and es.stopped_step == stop * cfg.eval_every
    assert es.curve_steps[-1] == es.stopped_step and len(es.curve_test_mse) == stop + 1
    # its weights are the best ones: the kept step's curve point is the arm's final result
    assert es.test_mse == pytest.approx(es.curve_test_mse[best], rel=1e-6)
    assert validation_rows(cfg).sum() == cfg.n_val == 5


def test_weight_decay_zero_is_the_plain_arm_bit_for_bit():
    cfg = TrialConfig(seed=1, width=32, steps=80, n_train=16, arms=ALL, weight_decay=0.0)
    for task in ("toy1d", "friedman1"):
        r = run_trials([cfg.replace(task=task)], engine="batched", group_size=8)[0]
        wd, plain = r.comparators["weight_decay"], r.plain
        assert (wd.curve_train_mse, wd.curve_test_mse, wd.test_mse, wd.train_loss_last) == \
            (plain.curve_train_mse, plain.curve_test_mse, plain.test_mse, plain.train_loss_last)
    decayed = run_trials([cfg.replace(weight_decay=0.05)])[0]
    assert decayed.comparators["weight_decay"].test_mse != decayed.plain.test_mse


def test_weight_decay_arm_matches_torch_adam_with_weight_decay():
    """The seed loop's net with torch.optim.Adam(weight_decay=lambda): the same training, to float rounding."""
    cfg = TrialConfig(seed=4, width=24, steps=50, n_train=12, arms=ALL, weight_decay=0.1)
    ours = train_group([comparator_arm(cfg, "weight_decay")])[0]
    data = make_data(cfg)
    net = build_net(cfg, 0.0)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=0.1)
    for _ in range(cfg.steps):
        loss = nn.functional.mse_loss(net(data.x), data.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        ref = nn.functional.mse_loss(net(data.x), data.y_test).item()
    assert ours.test_mse == pytest.approx(ref, rel=1e-4)
    unregularised = train_group([plain_arm(cfg)])[0]
    assert abs(ours.test_mse - unregularised.test_mse) > 1e-4


def test_arms_are_shared_and_paired():
    cfg = TrialConfig(arms=ALL, seed=7)
    arms = trial_arms(cfg)
    assert list(arms) == ALL
    # same data and initial weights: only the kind (and its own settings) differs
    assert {a.init_stream for a in arms.values()} == {"init"}
    assert arms["plain"] == trial_arms(cfg.replace(weight_decay=0.3, patience=9, dropout=0.1))["plain"]
    assert arms["early_stop"] == trial_arms(cfg.replace(weight_decay=0.3, dropout=0.1))["early_stop"]
    assert arms["weight_decay"] != trial_arms(cfg.replace(weight_decay=0.3))["weight_decay"]
    r = run_trials([cfg.replace(width=16, steps=20)])[0]
    assert set(r.comparators) == {"early_stop", "weight_decay"}
    again = type(r).from_dict(r.to_dict())
    assert again.comparators["early_stop"].best_step == r.comparators["early_stop"].best_step


@pytest.mark.parametrize("arms, message", [
    (["plain"], "must include 'plain' and 'dropout'"),
    (["plain", "dropout", "dropout"], "twice"),
    (["plain", "dropout", "mixup"], "unknown arm 'mixup'"),
])
def test_arms_are_checked(arms, message):
    with pytest.raises(ConfigError, match=message):
        TrialConfig(arms=arms)


def test_comparator_settings_are_checked():
    for bad, message in ((dict(weight_decay=-1.0), "weight_decay"), (dict(patience=0), "patience"),
                         (dict(val_fraction=1.0), "val_fraction")):
        with pytest.raises(ConfigError, match=message):
            TrialConfig(**bad)


def _records_with_comparators(shift: dict) -> list[dict]:
    """Synthetic records: per task, early_stop's test MSE = dropout's + shift[task] + seed noise."""
    import numpy as np

    rng = np.random.default_rng(0)
    records = []
    for task, d in shift.items():
        for seed in range(12):
            cfg = TrialConfig(task=task, seed=seed, arms=["plain", "dropout", "early_stop"])
            arm = {"status": "ok", "diverged_at_step": None, "train_mse": 0.05, "train_loss_last": 0.05, "gap": 0.1,
                   "curve_steps": [], "curve_train_mse": [], "curve_test_mse": [], "step_seconds_median": 1e-3,
                   "step_seconds_iqr": 1e-4, "group_size": 1, "engine": "single"}
            drop = 0.15 + 0.01 * rng.standard_normal()
            result = {"config": cfg.to_dict(), "delta_test_mse": 0.0, "env": {}, "schema_version": 3,
                      "plain": {**arm, "rate": 0.0, "test_mse": drop},
                      "dropout": {**arm, "rate": 0.5, "test_mse": drop},
                      "comparators": {"early_stop": {**arm, "rate": 0.0, "best_step": 40, "stopped_step": 90,
                                                     "test_mse": drop + d + 0.002 * rng.standard_normal()}}}
            records.append({"trial_id": cfg.config_hash(), "status": "ok", "error": None, "config": cfg.to_dict(),
                            "result": result})
    return records


def test_report_says_where_dropout_beats_each_comparator():
    from analysis import build_report
    from analysis.records.frame import records_frame

    shift = {"toy1d": 0.02, "sine1d": -0.02, "friedman1": 0.0}
    records = _records_with_comparators(shift)
    frame = records_frame(records)
    assert frame["arms"].unique().tolist() == ["plain,dropout,early_stop"]
    assert frame["weight_decay"].unique().tolist() == [0.01]          # left out of the record: its default
    rep = build_report(records, {"grid_axes": ["task"]}, figures=False)
    table = rep.comparisons["early_stop"].set_index("task")
    assert table.loc["toy1d", "verdict"] == "helps" and table.loc["sine1d", "verdict"] == "hurts"
    assert table.loc["friedman1", "verdict"] in ("not detected", "no effect")
    for task, d in shift.items():   # the mean paired delta is the shift, to the seeds' noise
        assert table.loc[task, "delta_mean"] == pytest.approx(d, abs=0.003)
    said = [s for s in rep.summary if "early stopping" in s]
    # first the best of each family on the odd seeds (one setting each here), then every cell on all seeds
    assert said[0].startswith("Against early stopping (one setting each, judged on the odd seeds): dropout better "
                              "in 1 of 3 (task) groups, worse in 1")
    assert said[1].startswith("Per setting, against early stopping") and "better in 1 of 3 cells of task and worse in 1" in said[1]
    assert "dropout better at task = toy1d" in said[2] and "dropout worse at task = sine1d" in said[2]
    assert "weight decay" not in " ".join(rep.summary)                # no arm, no sentence


def test_report_page_shows_the_comparisons_table_and_figure(tmp_path):
    from analysis import build_report
    from analysis.pages.report import page_blocks

    rep = build_report(_records_with_comparators({"toy1d": 0.02, "sine1d": -0.02}), {"grid_axes": ["task"]},
                       seed_picture=False)
    titles = [b[0] for b in page_blocks(rep)]
    at = titles.index("Dropout against the alternatives")
    assert titles[at + 1] == "Dropout against the alternatives, at a glance"
    table = dict(page_blocks(rep)[at][2].iloc[:, :2].itertuples(index=False))
    assert set(table) == {"early stopping"}


def test_old_trials_keep_their_ids():
    """Ids of configs that existed before the comparators: computed by the previous release, as literals."""
    from sweeps import trial_id

    assert trial_id(TrialConfig()) == "de7e4bdc00c8b16c0981"
    assert trial_id(TrialConfig(seed=7, n_train=50, dropout=0.2)) == "34ff6b7e477cd5fbd967"
    assert trial_id(TrialConfig(arms=ALL)) != trial_id(TrialConfig())


def test_a_setting_without_its_arm_is_refused_and_task_defaults_share_an_identity():
    with pytest.raises(ConfigError, match="add 'weight_decay' to arms"):
        TrialConfig(weight_decay=0.1)
    with pytest.raises(ConfigError, match="add 'early_stop' to arms"):
        TrialConfig(val_fraction=0.5, arms=["plain", "dropout", "weight_decay"])
    assert TrialConfig(task="friedman1", n_features=10) == TrialConfig(task="friedman1")
    assert TrialConfig(task="diabetes", test_size=142).config_hash() == TrialConfig(task="diabetes").config_hash()
    assert TrialConfig(n_features=1).config_hash() == TrialConfig().config_hash()


def test_a_sweep_over_a_comparator_setting_loads_and_checks_every_cell():
    from sweeps.spec import SpecError, parse_spec

    spec = parse_spec('name = "wd"\nseeds = 2\narms = ["plain", "dropout", "weight_decay"]\n'
                      '[grid]\nweight_decay = [0.001, 0.1]\ntask = ["toy1d", "diabetes"]\n')
    import json
    assert len(spec.configs()) == 8 and "weight_decay" not in json.loads(spec.shared_settings())["base"]
    with pytest.raises(SpecError, match=r"grid: the cell task=diabetes, n_train=400: n_train="):
        parse_spec('name = "x"\nseeds = 2\n[grid]\ntask = ["toy1d", "diabetes"]\nn_train = [20, 400]\n')
    with pytest.raises(SpecError, match="expected a list of arm names"):
        parse_spec('name = "x"\nseeds = 2\narms = "plain,dropout"\n')


def test_a_diverged_comparator_counts_against_it_and_leaves_the_main_comparison_alone():
    from analysis.numbers.comparisons import comparison_tables
    from analysis.numbers.cells import cell_table
    from analysis.records.frame import records_frame

    records = _records_with_comparators({"toy1d": 0.02})
    records[0]["result"]["comparators"]["early_stop"].update(status="diverged", test_mse=float("nan"))
    frame = records_frame(records)
    assert (frame["status"] == "ok").all() and frame["status_early_stop"].tolist().count("diverged") == 1
    main = cell_table(frame, ["task"])
    versus = comparison_tables(frame, ["task"])["early_stop"]
    assert main["n_ok"].tolist() == [12] and versus["n_ok"].tolist() == [12]
    assert versus["diverged_early_stop"].tolist() == [1] and versus["diverged_dropout"].tolist() == [0]
    # seed 0's early_stop outcome is its worst finite one on the other seeds: delta = that - dropout's
    worst = frame["test_mse_early_stop"].iloc[1:].max()
    expected = (worst - frame["test_mse_dropout"].iloc[0], *(frame["delta_test_mse_vs_early_stop"].iloc[1:]))
    assert versus["delta_values"].iloc[0].tolist() == pytest.approx(list(expected), abs=0, rel=0)


def test_the_trend_is_fitted_to_one_task_and_says_so():
    from analysis import build_report
    from tests._records import synthetic_records

    deltas = {}
    for task, shift in (("toy1d", 0.02), ("diabetes", 0.2)):
        for n in (20, 50):
            for p in (0.2, 0.5):
                deltas[(("task", task), ("n_train", n), ("dropout", p))] = [shift / n * 20 + 0.001 * i for i in range(6)]
    rep = build_report(synthetic_records(deltas), {"grid_axes": ["task", "n_train", "dropout"]}, figures=False)
    assert rep.trend is not None and rep.trend.scope == "task = toy1d only"
    assert rep.trend.n == 24                                   # the toy1d trials only
    assert any("task = toy1d only" in s for s in rep.summary if s.startswith("Trend"))


def test_a_diverged_dropout_arm_counts_against_dropout_in_the_comparison():
    from analysis.numbers.comparisons import comparison_tables
    from analysis.numbers.cells import cell_table
    from analysis.records.frame import records_frame

    records = _records_with_comparators({"toy1d": 0.02})
    records[5]["result"]["dropout"].update(status="diverged", test_mse=float("nan"), diverged_at_step=30)
    frame = records_frame(records)
    frame.loc[5, "status"] = "diverged"                      # the plain-and-dropout pair's status
    main = cell_table(frame, ["task"])
    versus = comparison_tables(frame, ["task"])["early_stop"]
    assert main["n_ok"].tolist() == [11]                     # the pair's own table leaves it out, as before
    assert versus["n_ok"].tolist() == [12] and versus["diverged_dropout"].tolist() == [1]
    worst = frame["test_mse_dropout"].drop(index=5).max()
    assert versus["delta_values"].iloc[0][5] == frame.loc[5, "test_mse_early_stop"] - worst
