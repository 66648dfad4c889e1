"""Where the variance comes from: a crossed design's components, against statsmodels' ANOVA,
recovered from simulated designs with known components, and on a real crossed sweep."""
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.inference.variance import SOURCES, mean_squares, split


def _design(rng, sizes, sd):
    """One value per (data, init, masks) combination with known component SDs."""
    D, I, M = sizes
    return (rng.normal(0, sd["data"], (D, 1, 1)) + rng.normal(0, sd["init"], (1, I, 1))
            + rng.normal(0, sd["masks"], (1, 1, M)) + rng.normal(0, sd["interactions"], (D, I, 1))
            + rng.normal(0, sd["residual"], (D, I, M)))


def test_mean_squares_are_statsmodels_anova():
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    y = _design(np.random.default_rng(3), (4, 3, 2), dict(data=1, init=1, masks=1, interactions=0.5, residual=1))
    d, i, m = np.meshgrid(range(4), range(3), range(2), indexing="ij")
    frame = pd.DataFrame({"y": y.ravel(), "d": d.ravel(), "i": i.ravel(), "m": m.ravel()})
    fit = smf.ols("y ~ C(d) + C(i) + C(m) + C(d):C(i) + C(d):C(m) + C(i):C(m)", frame).fit()
    table = sm.stats.anova_lm(fit, typ=1)
    ms = mean_squares(y, 3)
    for term, s in (("C(d)", (0,)), ("C(i)", (1,)), ("C(m)", (2,)), ("C(d):C(i)", (0, 1)),
                    ("C(d):C(m)", (0, 2)), ("C(i):C(m)", (1, 2)), ("Residual", (0, 1, 2))):
        assert ms[s][0] == pytest.approx(table.loc[term, "mean_sq"]), term
        assert ms[s][1] == table.loc[term, "df"]


@pytest.mark.parametrize("sizes", [(10, 5, 4), (6, 4, 4)], ids=["10x5x4", "6x4x4"])
def test_known_components_are_recovered_within_their_intervals(sizes):
    """Simulated designs, no training: each interval covers its true variance in >= 88% of 300 draws
    (the interactions' true variance is the data x init one; the others are 0 in this model)."""
    sd = dict(data=1.0, init=1.0, masks=0.3, interactions=0.3, residual=1.0)
    rng = np.random.default_rng(2026)
    covered = dict.fromkeys(sd, 0)
    draws = 300
    for _ in range(draws):
        t = split(_design(rng, sizes, sd), SOURCES).set_index("component")
        for k, v in sd.items():
            covered[k] += t.loc[k, "var_low"] <= v ** 2 <= t.loc[k, "var_high"]
    rates = {k: v / draws for k, v in covered.items()}
    assert all(r >= 0.88 for r in rates.values()), rates


def test_a_source_with_two_seeds_gets_an_estimate_but_no_interval():
    sd = dict(data=2.0, init=1.0, masks=0.5, interactions=0.0, residual=0.7)
    t = split(_design(np.random.default_rng(0), (10, 5, 2), sd), SOURCES).set_index("component")
    assert list(t.index) == ["data", "init", "masks", "interactions", "residual"]
    assert np.isnan(t.loc["masks", "var_low"]) and np.isfinite(t.loc["masks", "variance"])
    assert t.loc["data", "var_low"] <= 4.0 <= t.loc["data", "var_high"]
    assert t["share"].sum() == pytest.approx(1.0)
    # a source seeded once is not varied: no component for it
    t2 = split(_design(np.random.default_rng(0), (10, 5, 1), sd), SOURCES)
    assert set(t2["component"]) == {"data", "init", "residual"}


def test_a_crossed_sweep_splits_the_variance(tmp_path):
    """A real crossed sweep: each combination once per cell; the plain arm has no masks, so every
    masks share of its error is exactly 0, and trials that share a data seed share their data."""
    from analysis.pages.report import build_report
    from sweeps.records import load_manifest, load_records
    from sweeps.run import run_sweep
    from sweeps.spec import parse_spec

    spec = parse_spec('name = "crossed"\nseeds = { data = 4, init = 4, masks = 2 }\n'
                      "[base]\nwidth = 16\nsteps = 40\n[grid]\ndropout = [0.5]\n")
    out = tmp_path / "crossed"
    run_sweep(spec, out, workers=1, progress=False)
    records = load_records(out)
    assert len(records) == 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = build_report(records, load_manifest(out), figures=False)
    v = rep.variance.set_index(["quantity", "component"])
    assert v.loc[("plain", "masks"), "variance"] == 0.0
    assert set(v.loc["plain"].index) == {"data", "init", "masks", "interactions", "residual"}
    assert v.loc[("delta", "data"), "share"] > 0
    known = rep.known.set_index("predictor")
    assert known.loc["oracle", "n_seeds"] == 4          # 4 data seeds, however many trials share each
    assert any(s.startswith("Where the variance of delta comes from") for s in rep.findings)
