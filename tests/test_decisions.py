"""The report's words follow its intervals: one decision rule, the best cell chosen with care,
the known-answer comparison said in words, and seeds planned from a stated smallest effect."""
import numpy as np
import pytest
from scipy import stats as sps

from _records import synthetic_records
from analysis.inference.decisions import best_cell, decide, verdict_words
from analysis.numbers.estimates import StatsOptions
from analysis.pages.report import build_report, decisions_display

BASE = {"n_train": 20}


def _normal(mean: float, sd: float, n: int, seed: int) -> np.ndarray:
    """n values with exactly this sample mean and SD (so each cell's verdict is known in advance)."""
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


def _report(deltas: dict, focus=None, **kw):
    records = synthetic_records(deltas, base=BASE)
    axes = sorted({k for cell in deltas for k, _ in cell})
    manifest = {"name": "words", "grid_axes": axes, "seeds": list(range(max(len(v) for v in deltas.values())))}
    return build_report(records, manifest, figures=False, focus=focus, options=StatsOptions(**kw))


def _cell(rep, **where):
    c = rep.cells
    for k, v in where.items():
        c = c[c[k] == v]
    assert len(c) == 1
    return c.iloc[0]


def test_words_follow_each_cells_interval():
    deltas = {
        (("dropout", 0.5),): _normal(0.03, 0.02, 30, 1),    # interval well above 0
        (("dropout", 0.2),): _normal(0.004, 0.03, 30, 2),   # interval spans 0
        (("dropout", 0.8),): _normal(-0.03, 0.02, 30, 3),   # interval below 0
        (("dropout", 0.1),): _normal(0.0, 0.002, 30, 4),    # tiny: within +-0.009 (10% of sigma^2)
    }
    rep = _report(deltas, focus={"dropout": 0.2, "n_train": 20})
    helps, spans, hurts, equal = (_cell(rep, dropout=p) for p in (0.5, 0.2, 0.8, 0.1))
    assert helps["delta_ci_low"] > 0 and helps["verdict"] == "helps"
    assert spans["delta_ci_low"] < 0 < spans["delta_ci_high"] and spans["verdict"] == "not detected"
    assert hurts["delta_ci_high"] < 0 and hurts["verdict"] == "hurts"
    assert equal["verdict"] == "no effect" and equal["p_tost_holm"] < 0.05
    # the focus cell's interval spans 0: no direction in its sentence
    sentence = rep.findings[1]
    assert "no effect of dropout is detected" in sentence
    assert "lowers" not in sentence and "raises" not in sentence
    assert f"[{spans['delta_ci_low']:.4f}, {spans['delta_ci_high']:.4f}]" in sentence
    # the summary names each cell under its verdict, in one line
    where = next(s for s in rep.summary if s.startswith("Where"))
    assert "helps at p = 0.5" in where and "hurts at p = 0.8" in where
    assert "no effect at p = 0.1" in where and "not detected at p = 0.2" in where
    assert rep.lead[0].startswith("Dropout lowers test MSE in 1 of 4 cells: at p = 0.5; it raises it in 1: at p = 0.8")
    # table and text use the same verdicts
    assert decisions_display(rep)["verdict"].tolist() == rep.cells["verdict"].tolist()
    # the same focus cell helps: the sentence says so, with its number
    rep2 = _report(deltas, focus={"dropout": 0.5, "n_train": 20})
    assert f"dropout lowers test MSE by {helps['delta_mean']:.4f}" in rep2.findings[1]


def test_one_test_at_one_level_no_mixed_verdict():
    """One cell's own interval excludes 0, but after Holm over 10 cells the test does not: not detected,
    and its simultaneous (Bonferroni) interval, the one at the test's level, includes 0."""
    deltas = {(("dropout", round(0.05 * i, 2)),): _normal(0.0, 0.03, 20, i) for i in range(1, 10)}
    deltas[(("dropout", 0.5),)] = _normal(0.016, 0.03, 20, 11)   # unadjusted t p about 0.03
    rep = _report(deltas)
    c = _cell(rep, dropout=0.5)
    d = deltas[(("dropout", 0.5),)]
    assert (c["delta_ci_low"], c["delta_ci_high"]) == pytest.approx(sps.ttest_1samp(d, 0).confidence_interval())
    bonf = sps.ttest_1samp(d, 0).confidence_interval(confidence_level=1 - 0.05 / 10)
    assert (c["delta_bonf_low"], c["delta_bonf_high"]) == pytest.approx(bonf)
    assert c["delta_ci_low"] > 0 and c["delta_bonf_low"] < 0 and c["p_holm"] >= 0.05
    assert c["verdict"] == "not detected" and "Holm p" in c["reason"]
    assert "mixed" not in rep.cells["verdict"].tolist()
    # the rule's branches, on one row: the direction is the mean's, from the same test's Holm p
    row = c.copy()
    row["p_holm"], row["delta_mean"], row["p_tost_holm"] = 0.01, 0.004, 0.5
    one = lambda r: {k: v.iloc[0] for k, v in decide(r.to_frame().T).items()}
    assert one(row)["verdict"] == "helps" and not one(row)["below_margin"]
    row["delta_mean"] = -0.004
    assert one(row)["verdict"] == "hurts"
    row["p_tost_holm"] = 0.01                       # a direction, and inside +-the smallest effect
    assert one(row)["verdict"] == "hurts" and one(row)["below_margin"]
    assert verdict_words("hurts", True) == "hurts, below the smallest effect of interest"
    row["p_holm"] = 0.2
    assert one(row)["verdict"] == "no effect"
    row["p_tost_holm"] = 0.2
    assert one(row)["verdict"] == "not detected"


def test_an_effect_inside_the_smallest_effect_of_interest_says_so():
    """Mean 0.004, SD 0.006 at 200 seeds: clearly above 0, and clearly inside +-0.009 (10% of sigma^2)."""
    rep = _report({(("dropout", 0.5),): _normal(0.004, 0.006, 200, 3), (("dropout", 0.3),): _normal(0.03, 0.02, 200, 4)})
    small, large = _cell(rep, dropout=0.5), _cell(rep, dropout=0.3)
    assert small["verdict"] == "helps" and small["below_margin"] and "TOST" in small["reason"]
    assert large["verdict"] == "helps" and not large["below_margin"]


def test_thirty_cells_of_eight_seeds_decide_a_large_effect():
    """The old rule (exact Wilcoxon, smallest p 2/2^8 > 0.05/30) could not; a t-based test can."""
    rng = np.random.default_rng(5)
    deltas = {(("dropout", p), ("n_train", n)): rng.normal(0.0, 0.02, 8)
              for p in (0.1, 0.3, 0.5, 0.7, 0.9) for n in (10, 20, 50, 100, 200, 500)}
    for n in (10, 20, 50, 100, 200, 500):                   # p = 0.9 underfits: 2-3x the plain net's error
        deltas[(("dropout", 0.9), ("n_train", n))] = rng.normal(-0.29, 0.03, 8)
    deltas[(("dropout", 0.3), ("n_train", 20))] = rng.normal(0.08, 0.02, 8)
    records = synthetic_records(deltas)
    rep = build_report(records, {"name": "30x8", "grid_axes": ["dropout", "n_train"], "seeds": list(range(8))},
                       figures=False)
    c = rep.cells
    assert len(c) == 30 and (c["delta_n"] == 8).all()
    assert (c.loc[c["dropout"] == 0.9, "verdict"] == "hurts").all()
    assert _cell(rep, dropout=0.3, n_train=20)["verdict"] == "helps"
    assert not c["verdict"].isin(["helps", "hurts"])[(c["dropout"] != 0.9) & ~((c["dropout"] == 0.3) & (c["n_train"] == 20))].any()


def test_directions_against_a_strong_skew_are_withheld_with_the_seeds_that_would_do():
    """Right-skewed deltas (gamma, skewness 2.3) in every cell at 6 seeds: a 'hurts' there is what the skew
    fakes, so it is withheld; 'helps' stays (the skew makes that side conservative)."""
    rng = np.random.default_rng(9)
    k = (2 / 2.3) ** 2
    deltas = {(("dropout", round(0.1 * i, 1)),): 0.02 * (rng.gamma(k, size=6) - k) for i in range(1, 9)}
    deltas[(("dropout", 0.9),)] = 0.004 * (rng.gamma(k, size=6) - k) - 0.05
    deltas[(("dropout", 0.05),)] = 0.004 * (rng.gamma(k, size=6) - k) + 0.05
    rep = _report(deltas)
    hurt, helped = _cell(rep, dropout=0.9), _cell(rep, dropout=0.05)
    assert hurt["p_holm"] < 0.05 and hurt["verdict"] == "withheld"
    assert "skewness" in hurt["reason"] and "seeds per cell would do" in hurt["reason"]
    assert hurt["seeds_needed"] > 6
    assert helped["verdict"] == "helps"


def test_a_one_seed_cell_is_never_named_best():
    deltas = {
        (("dropout", 0.5),): _normal(0.03, 0.02, 20, 1),
        (("dropout", 0.3),): _normal(0.02, 0.02, 20, 2),
        (("dropout", 0.9),): np.array([0.5]),             # the largest mean, on one seed
    }
    rep = _report(deltas)
    lone = _cell(rep, dropout=0.9)
    assert lone["delta_mean"] == rep.cells["delta_mean"].max()
    assert lone["verdict"] == "too few seeds" and np.isnan(lone["delta_ci_low"])
    best = rep.best
    assert rep.cells.loc[best.index, "dropout"] == 0.5 and best.family == 2
    how = next(s for s in rep.summary if s.startswith("By how much"))
    assert "most at p = 0.5" in how and "0.9" not in how
    # the chosen cell's interval is simultaneous over the 2 eligible cells (Bonferroni)
    d = deltas[(("dropout", 0.5),)]
    lo, hi = sps.ttest_1samp(d, 0).confidence_interval(confidence_level=1 - 0.05 / 2)
    assert (best.low, best.high) == pytest.approx((lo, hi))
    assert f"[{lo:.4f}, {hi:.4f}]" in how


def test_no_best_cell_until_enough_seeds():
    rep = _report({(("dropout", 0.5),): np.array([0.03, 0.02])})
    assert rep.best is None and best_cell(rep.cells) is None
    assert any("no cell has enough seeds yet" in s for s in rep.summary)


def test_the_least_squares_line_is_the_reference_where_the_truth_is_a_line():
    """toy1d's truth is a line: each net is compared with the line on the same seeds, paired, in words that
    follow the paired difference's interval (not a count of cells where the line's mean is lower)."""
    from analysis.numbers.estimates import _data_keys
    from analysis.records.frame import records_frame
    from analysis.numbers.known_answers import known_answer_trials

    deltas = {(("dropout", 0.5),): _normal(0.03, 0.02, 12, 1)}
    rep = _report(deltas)
    ok = records_frame(synthetic_records(deltas, base=BASE)).sort_values("seed")
    ka = known_answer_trials(_data_keys(ok))
    line = ka[ka["predictor"] == "least_squares"].set_index("seed").loc[ok["data_stream"], "test_mse"].to_numpy()
    plain = ok["test_mse_plain"].to_numpy() - line
    r = rep.line.iloc[0]
    assert r["plain_minus_line"] == pytest.approx(plain.mean())
    assert (r["plain_minus_line_low"], r["plain_minus_line_high"]) == pytest.approx(
        sps.ttest_1samp(plain, 0).confidence_interval())
    said = next(s for s in rep.summary if "least-squares line" in s)
    assert said.startswith("Reference: on toy1d the truth is a line, so the least-squares line is the correctly "
                           "specified model")
    assert f"the plain net is {plain.mean():.3f} [{r['plain_minus_line_low']:.3f}, " in said and "worse" in said
    assert "of 1 cells" not in said
    # nets far better than any line: the words turn round with the interval
    good = build_report(synthetic_records({(("dropout", 0.5),): _normal(0.0, 0.001, 12, 1)}, plain=0.01,
                                          base=BASE), {"name": "x", "grid_axes": ["dropout"]}, figures=False)
    said = next(s for s in good.summary if "least-squares line" in s)
    assert "the plain net is" in said and "better" in said and "worse" not in said


def test_seed_planning_uses_the_stated_smallest_effect_and_the_family():
    deltas = {(("dropout", p),): _normal(0.01, 0.03, 30, i) for i, p in enumerate((0.1, 0.3, 0.5, 0.7))}
    rep = _report(deltas, smallest_effect=0.01)
    p = rep.plan
    assert (p.margin, p.family, p.seeds) == (0.01, 4, 30)
    assert p.sd_typical == pytest.approx(0.03)
    from statsmodels.stats.power import TTestPower
    n_t = TTestPower().solve_power(effect_size=0.01 / 0.03, alpha=0.05 / 4, power=0.8, alternative="two-sided")
    assert np.ceil(n_t) <= p.detect_typical <= 1.25 * np.ceil(n_t) + 2   # the t count, raised for the guard
    seeds = next(s for s in rep.summary if s.startswith("Seeds:"))
    assert f"about {int(p.detect_typical)} seeds" in seeds and "Holm over 4 cells" in seeds
    assert "0.01, as set for this report" in seeds
    assert "'not detected' does not mean 'no effect'" in seeds


def test_the_specs_smallest_effect_reaches_the_report():
    deltas = {(("dropout", 0.5),): _normal(0.01, 0.03, 30, 1)}
    records = synthetic_records(deltas, base=BASE)
    manifest = {"name": "m", "grid_axes": ["dropout"], "spec": {"report": {"smallest_effect": 0.02}}}
    rep = build_report(records, manifest, figures=False)
    assert rep.plan.margin == 0.02 and (rep.cells["margin"] == 0.02).all()
    assert build_report(records, manifest, figures=False, options=StatsOptions(smallest_effect=0.005)).plan.margin == 0.005
    assert build_report(records, {"name": "m"}, figures=False).plan.margin == pytest.approx(0.1 * 0.3 ** 2)


def test_where_the_simultaneous_interval_and_the_holm_test_differ_the_table_says_so():
    """Holm's second step tests at 0.05/(m-1): a cell can pass it while its Bonferroni (0.05/m) interval touches 0."""
    rng = np.random.default_rng(3)
    deltas = {(("dropout", 0.1),): _normal(0.05, 0.02, 30, 1)}                  # decided at Holm's first step
    for i in range(2, 8):
        deltas[(("dropout", round(0.1 * i, 1)),)] = _normal(0.0, 0.02, 30, i)
    # a cell whose t p lies between 0.05/7 (Bonferroni) and 0.05/6 (Holm's second threshold)
    t = sps.t.ppf(1 - 0.05 / 7 / 2 * 0.97, 29)
    deltas[(("dropout", 0.9),)] = _normal(t * 0.02 / np.sqrt(30), 0.02, 30, 9)
    rep = _report(deltas)
    c = _cell(rep, dropout=0.9)
    assert c["verdict"] == "helps" and c["delta_bonf_low"] < 0 < c["delta_mean"] and c["interval_differs"]
    row = decisions_display(rep).set_index("dropout").loc["0.9"]
    assert row["verdict"].endswith("†")
    assert not rep.cells.loc[rep.cells["dropout"] != 0.9, "interval_differs"].any()


def test_a_diverged_dropout_seed_counts_against_dropout_in_the_main_table():
    """Not dropped (which would flatter dropout): its test MSE becomes dropout's worst finite value in the cell."""
    deltas = {(("dropout", 0.5),): _normal(0.02, 0.01, 12, 1)}
    records = synthetic_records(deltas, base=BASE)
    bad = records[3]["result"]
    bad["dropout"].update(status="diverged", diverged_at_step=17, test_mse=float("nan"), gap=float("nan"),
                          train_mse=float("nan"))
    bad["delta_test_mse"] = float("nan")
    records[3]["status"] = "diverged"
    rep = build_report(records, {"name": "div", "grid_axes": ["dropout"], "seeds": list(range(12))}, figures=False)
    c = rep.cells.iloc[0]
    plain = np.array([r["result"]["plain"]["test_mse"] for r in records])
    drop = np.array([r["result"]["dropout"]["test_mse"] for r in records])
    drop[3] = np.nanmax(np.delete(drop, 3))                      # the worst finite value of dropout's other seeds
    assert c["delta_n"] == 12 and c["diverged_dropout"] == 1 and c["diverged_plain"] == 0
    assert c["delta_mean"] == pytest.approx(np.mean(plain - drop))
    assert "1 dropout diverged: counted against them" in decisions_display(rep)["seeds"].iloc[0]


def test_strongly_skewed_cells_are_flagged_in_the_table():
    from analysis.pages.report import cells_display

    rng = np.random.default_rng(4)
    deltas = {(("dropout", 0.5),): rng.gamma(0.3, size=30) - 0.3, (("dropout", 0.2),): _normal(0.0, 0.02, 30, 2)}
    rep = _report(deltas)
    shown = cells_display(rep).set_index("dropout")["skewness"]
    assert shown.loc["0.5"].endswith("(skewed)") and not shown.loc["0.2"].endswith("(skewed)")
    assert _cell(rep, dropout=0.5)["delta_skew"] == pytest.approx(sps.skew(deltas[(("dropout", 0.5),)], bias=False))
