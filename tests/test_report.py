"""The report renders on sweep-like records and a real store, and its headline numbers are scipy's."""
import argparse
import copy
import math
import re

import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from _records import sweep_manifest, sweep_records
from analysis.records.frame import records_frame
from analysis.pages.report import build_report, write_report
from bench import ConfigError, TrialConfig, run_trials



@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_report(out, records=sweep_records(), manifest=sweep_manifest())
    return out


def test_report_files_and_self_contained_html(report_dir):
    html = (report_dir / "report.html").read_text()
    pngs = sorted(p.stem for p in (report_dir / "figures").glob("*.png"))
    # no step-time figure: the sweep does not vary width, what a step's cost depends on
    # the trend model needs three rates for its p^2 term: two rates here give a line, still drawn
    assert pngs == ["arms_test_mse", "delta_heatmap", "delta_vs_dropout", "delta_vs_n_train",
                    "learning_curves", "seed_picture", "trend"]
    assert html.count("src='data:image/png;base64,") == len(pngs)
    assert not re.search(r"(src|href)=['\"](?!data:)", html)  # nothing to fetch: opens from disk
    assert {p.name for p in (report_dir / "tables").glob("*.csv")} == {"cells.csv", "known_answers.csv", "trials.csv",
                                                                       "versus_line.csv"}
    md = (report_dir / "report.md").read_text()
    assert all(f"figures/{name}.png" in md for name in pngs)
    # the first screen: three lines (where, how much, at what cost) and the figure that carries them
    first = [line for line in md.split("## ")[0].splitlines()[1:] if line.strip()]
    assert first[0].startswith("- Dropout lowers test MSE in ") and "seeds per cell" in first[0]
    assert first[1].startswith(("- Most at ", "- By how much: "))
    assert first[2].startswith("- At what cost: a dropout training step takes ")
    assert first[3].startswith("![") and "figures/delta_heatmap.png" in first[3]
    # then the summary, the verdicts, details, design and tables
    order = ["figures/delta_heatmap.png", "## Summary", "## Decision per cell", "## Details", "## Design",
             "## More statistics per cell"]
    assert [md.index(h) for h in order] == sorted(md.index(h) for h in order)
    summary = md.split("## Summary")[1].split("## ")[0].strip().splitlines()
    assert 4 <= len(summary) <= 10
    assert summary[0].startswith("- Verdicts are on test MSE, the outcome declared before the run")
    assert "excess risk" in summary[0]          # the other outcomes the records hold are named
    # symbols, not code: no sigma^2, p2, logN2 in the words of either page (figures' base64 aside)
    for text in (re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html), md):
        assert not re.search(r"sigma\^2|\bp2\b|\blogN2?\b|\bp\*", text), re.search(
            r".{60}(sigma\^2|\bp2\b|\blogN2?\b|\bp\*).{60}", text)


def test_headline_equals_a_recomputation_with_scipy():
    records, manifest = sweep_records(), sweep_manifest()
    rep = build_report(records, manifest, seed_picture=False, figures=False)
    frame = records_frame(records)
    ok = frame[frame.status == "ok"]
    focus = rep.cells.loc[rep.focus]
    assert (focus["n_train"], focus["dropout"]) == (20, 0.5)  # nearest the seed experiment
    d = ok[(ok.n_train == 20) & (ok.dropout == 0.5)].sort_values("seed")["delta_test_mse"].to_numpy()
    low, high = sps.ttest_1samp(d, 0).confidence_interval()  # the default interval: Student's t
    assert focus["delta_mean"] == pytest.approx(d.mean())
    assert (focus["delta_ci_low"], focus["delta_ci_high"]) == pytest.approx((low, high))
    assert focus["delta_p_wilcoxon"] == pytest.approx(sps.wilcoxon(d).pvalue)   # shown, unadjusted
    assert focus["delta_p"] >= sps.ttest_1samp(d, 0).pvalue                    # the verdict's test: t, guarded
    assert focus["delta_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    sentence = rep.findings[1]
    assert f"{d.mean():.4f}" in sentence and f"[{low:.4f}, {high:.4f}]" in sentence
    from analysis.inference.mean_test import mean_test
    p = [float(mean_test(g.sort_values("seed")["delta_test_mse"].to_numpy())[0])
         for _, g in ok.groupby(["n_train", "dropout"])]
    assert rep.cells["p_holm"].to_numpy() == pytest.approx(multipletests(p, method="holm")[1])
    assert rep.cells["p_bh"].to_numpy() == pytest.approx(multipletests(p, method="fdr_bh")[1])


def test_partial_cells_say_how_complete_they_are():
    rep = build_report(sweep_records(), sweep_manifest(), seed_picture=False, figures=False)
    c = rep.cells.set_index(["n_train", "dropout"])
    assert c.loc[(20, 0.5), ["n_trials", "n_ok", "n_failed", "n_expected"]].tolist() == [7, 6, 1, 7]
    assert c.loc[(10, 0.2), "complete"] == pytest.approx(6 / 7)
    assert "0 of 4 cells have every planned seed finished" in rep.findings[0]


def test_diverged_trials_are_counted_not_averaged():
    records = sweep_records()
    bad = copy.deepcopy(next(r for r in records if r["config"]["n_train"] == 10 and r["config"]["dropout"] == 0.2))
    bad["config"]["seed"] = 99
    bad["trial_id"] = TrialConfig.from_dict(bad["config"]).config_hash()
    bad["status"] = "diverged"
    bad["result"]["dropout"]["test_mse"] = float("nan")
    bad["result"]["delta_test_mse"] = float("nan")
    rep = build_report(records + [bad], sweep_manifest(), seed_picture=False, figures=False)
    row = rep.cells.set_index(["n_train", "dropout"]).loc[(10, 0.2)]
    assert (row["n_diverged"], row["delta_n"]) == (1, 6)
    assert math.isfinite(row["delta_mean"])


def _small(grid: dict, seeds: int = 3) -> list[dict]:
    import itertools
    cfgs = [TrialConfig(**{"width": 16, "steps": 40, "eval_every": 10, "seed": s, **dict(zip(grid, values))})
            for values in itertools.product(*grid.values()) for s in range(seeds)]
    return [{"trial_id": c.config_hash(), "status": r.status, "error": None, "config": c.to_dict(),
             "result": r.to_dict()} for c, r in zip(cfgs, run_trials(cfgs, engine="batched"))]


@pytest.mark.parametrize("grid", [{}, {"dropout": [0.2, 0.5]},
                                  {"n_train": [8, 12], "dropout": [0.2, 0.5], "width": [8, 16]}],
                         ids=["0 axes", "1 axis", "3 axes"])
def test_any_number_of_swept_axes(grid):
    import matplotlib.pyplot as plt

    records = _small(grid)
    manifest = {"kind": "sweep", "name": "axes", "grid_axes": list(grid), "seeds": [0, 1, 2]}
    rep = build_report(records, manifest, seed_picture=False)
    names = [name for name, _, fig in rep.figures]
    for _, _, fig in rep.figures:
        plt.close(fig)
    assert rep.axes == list(grid)
    assert len(rep.cells) == max(1, 2 ** len(grid)) and (rep.cells["delta_n"] == 3).all()
    assert ("delta_heatmap" in names) == (len(grid) >= 2)
    assert {"arms_test_mse", "learning_curves"} <= set(names)
    assert ("step_time" in names) == ("width" in grid)  # cost is drawn only where it can vary
    assert {f"delta_vs_{a}" for a in grid} <= set(names) if grid else "delta" in names


def test_no_finished_trial_yet(tmp_path):
    cfg = TrialConfig(width=16, steps=40)
    records = [{"trial_id": cfg.replace(seed=s).config_hash(), "status": "failed", "error": "boom",
                "config": cfg.replace(seed=s).to_dict(), "result": None} for s in range(3)]
    path = write_report(tmp_path, records=records, manifest={"name": "empty", "seeds": [0, 1, 2]})
    html = path.read_text()
    assert "No cell has a finished trial" in html
    assert "3 failed" in html


def test_report_from_a_real_store(tmp_path):
    """A tiny sweep through the store, reported by loading it back (sweeps.records)."""
    from sweeps.run import run_sweep
    from sweep_helpers import tiny_spec

    out = tmp_path / "sweep"
    run_sweep(tiny_spec(tmp_path, seeds=4), out, workers=1, progress=False)
    from sweeps.records import load_manifest, load_records, load_trials
    path = write_report(out, records=load_records(out), manifest=load_manifest(out),
                        seed_picture=False)
    trials = load_trials(out)
    rep = build_report(load_records(out), load_manifest(out), seed_picture=False, figures=False)
    assert rep.axes == ["dropout", "n_train"]
    assert len(rep.cells) == 4 and (rep.cells["n_expected"] == 4).all()
    f = rep.cells.loc[rep.focus]
    d = trials[(trials.dropout == f["dropout"]) & (trials.n_train == f["n_train"])].sort_values("seed")
    assert f["delta_mean"] == pytest.approx(d["delta_test_mse"].mean())
    assert f["delta_p_wilcoxon"] == pytest.approx(sps.wilcoxon(d["delta_test_mse"].to_numpy()).pvalue)
    assert path == out / "report.html" and "tiny" in path.read_text()
    from bench.engine import ENGINE_REVISION
    assert f"engine auto (revision {ENGINE_REVISION})" in path.read_text()   # the step that trained it


def _cli(argv):
    from sweeps.commands.report import add_report_command
    parser = argparse.ArgumentParser(prog="dropout-bench")
    add_report_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_refuses_missing_and_foreign_folders(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        _cli(["report", str(tmp_path / "absent")])
    (tmp_path / "notes.txt").write_text("not a sweep")
    with pytest.raises(ConfigError, match="store"):
        _cli(["report", str(tmp_path)])
    assert not (tmp_path / "report.html").exists()


def test_cli_writes_the_report(tmp_path, capsys):
    from sweeps.run import run_sweep
    from sweep_helpers import tiny_spec

    out = tmp_path / "sweep"
    run_sweep(tiny_spec(tmp_path, seeds=3, grid={"dropout": [0.5]}), out, workers=1, progress=False)
    assert _cli(["report", str(out), "--out", str(tmp_path / "r"), "--resamples", "199", "--no-seed-picture"]) == 0
    assert (tmp_path / "r" / "report.html").exists() and not (out / "report.html").exists()
    assert "wrote" in capsys.readouterr().err
    cells = (tmp_path / "r" / "tables" / "cells.csv").read_text().splitlines()
    assert len(cells) == 2  # header + one cell
    # an outcome other than the declared one, chosen now: the report says it is exploratory, first
    assert _cli(["report", str(out), "--out", str(tmp_path / "x"), "--outcome", "excess_risk", "--no-seed-picture"]) == 0
    assert (tmp_path / "x" / "report.md").read_text().splitlines()[2].startswith("**Exploratory: the outcome was "
                                                                                 "changed after the run")
    assert "Exploratory" not in (tmp_path / "r" / "report.md").read_text()


def test_the_outcome_can_be_the_noise_free_excess_risk():
    from analysis.numbers.estimates import StatsOptions

    records, manifest = sweep_records(), sweep_manifest()
    rep = build_report(records, manifest, options=StatsOptions(outcome="excess_risk"), figures=False)
    ok = records_frame(records).query("status == 'ok'")
    d = ok[(ok.n_train == 20) & (ok.dropout == 0.5)].sort_values("seed")
    excess = (d["excess_risk_plain"] - d["excess_risk_dropout"]).to_numpy()
    focus = rep.cells.loc[rep.focus]
    assert focus["delta_mean"] == pytest.approx(excess.mean())
    assert (focus["delta_ci_low"], focus["delta_ci_high"]) == pytest.approx(sps.ttest_1samp(excess, 0).confidence_interval())
    assert rep.lead[1].startswith("Dropout lowers excess risk in ")
    # the test noise is gone: excess risk = test MSE - the test noise's share, so the deltas are less spread
    noisy = build_report(records, manifest, figures=False)
    assert rep.noise_free_ratio == noisy.noise_free_ratio and 0 < rep.noise_free_ratio < 1
    assert any(s.startswith("Noise-free outcome:") and f"{rep.noise_free_ratio:.2f}x" in s for s in noisy.findings)
    # a store written before the outcome existed says so in one line
    old = copy.deepcopy(records)
    for r in old:
        for arm in ("plain", "dropout"):
            if r["result"]:
                for m in ("excess_risk", "new_mse", "new_excess_risk"):
                    r["result"][arm].pop(m, None)
    with pytest.raises(ValueError, match="do not hold it"):
        build_report(old, manifest, options=StatsOptions(outcome="excess_risk"), figures=False)
    assert build_report(old, manifest, figures=False).noise_free_ratio is None


def _declaring(report: dict) -> dict:
    """The test manifest, with a spec that declared ``report`` as its [report] table before the run."""
    manifest = sweep_manifest()
    manifest["spec"] = {**manifest["spec"], "report": report}
    return manifest


@pytest.mark.parametrize("declared, options, reason", [
    ({}, {"outcome": "excess_risk"}, "the outcome was changed after the run (declared: test MSE; shown: excess risk)"),
    ({"outcome": "excess_risk"}, {"outcome": "test_mse"},
     "the outcome was changed after the run (declared: excess risk; shown: test MSE)"),
    ({"smallest_effect": 0.009}, {"smallest_effect": 0.02},
     "the smallest effect of interest was changed after the run (declared: 0.009; shown: 0.02)"),
    ({}, {"smallest_effect": 0.02}, "the smallest effect of interest was changed after the run (declared: none"),
], ids=["outcome, default declared", "outcome, declared", "smallest effect", "smallest effect, none declared"])
def test_a_choice_made_after_the_run_is_exploratory_on_the_first_screen(declared, options, reason):
    from analysis.numbers.estimates import StatsOptions

    rep = build_report(sweep_records(), _declaring(declared), options=StatsOptions(**options), figures=False)
    assert rep.lead[0].startswith("Exploratory: " + reason), rep.lead[0]
    assert rep.lead[0].endswith("its verdicts are not the sweep's pre-declared ones.")
    assert rep.lead[1].startswith("Dropout lowers ")          # then the three lines, as always


@pytest.mark.parametrize("declared, options", [({}, {}), ({"outcome": "excess_risk"}, {}),
                                               ({"outcome": "excess_risk"}, {"outcome": "excess_risk"}),
                                               ({"smallest_effect": 0.02}, {"smallest_effect": 0.02})],
                         ids=["defaults", "declared outcome", "declared outcome, repeated", "declared effect"])
def test_the_declared_analysis_is_not_exploratory(declared, options):
    from analysis.numbers.estimates import StatsOptions

    rep = build_report(sweep_records(), _declaring(declared), options=StatsOptions(**options), figures=False)
    assert rep.exploratory == [] and not any("xploratory:" in s for s in rep.lead)
    assert rep.lead[0].startswith(f"Dropout lowers {rep.outcome.label} in ")
    assert rep.summary[0].startswith(f"Verdicts are on {rep.outcome.label}, the outcome declared before the run")


def test_the_exploratory_line_leads_both_pages(tmp_path):
    from analysis.numbers.estimates import StatsOptions

    write_report(tmp_path, records=sweep_records(), manifest=sweep_manifest(), seed_picture=False,
                 options=StatsOptions(outcome="excess_risk"))
    md = (tmp_path / "report.md").read_text().splitlines()
    assert md[2].startswith("**Exploratory: the outcome was changed after the run")   # under the title
    html = (tmp_path / "report.html").read_text()
    assert "<p class='exploratory'>Exploratory: the outcome was changed" in html
    assert html.index("class='exploratory'") < html.index("<figure")
    # the findings no longer invite choosing the outcome now: it is declared before the run
    assert "Choose it with" not in html and "declares it in its spec before the run" in html


def test_two_writes_of_one_report_draw_the_same_pictures(tmp_path):
    """Every random draw in a figure (the strip plots' jitter) comes from a seeded generator."""
    pngs = []
    for name in ("a", "b"):
        write_report(tmp_path / name, records=sweep_records(), manifest=sweep_manifest(), seed_picture=False)
        pngs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name / "figures").glob("*.png"))})
    assert "arms_test_mse.png" in pngs[0] and pngs[0] == pngs[1]


def _grid_cells(verdicts: dict, small=()) -> "pd.DataFrame":
    """A 3 x 4 cell table (N x p) with chosen verdicts; every other cell 'not detected'."""
    import pandas as pd

    rows = []
    for n in (10, 20, 50):
        for p in (0.1, 0.3, 0.5, 0.7):
            v = verdicts.get((n, p), "not detected")
            m = {"helps": 0.02, "hurts": -0.02}.get(v, 0.001)
            rows.append({"n_train": n, "dropout": p, "verdict": v, "below_margin": (n, p) in small,
                         "delta_mean": m, "delta_ci_low": m - 0.01, "delta_ci_high": m + 0.01,
                         "delta_n": 30, "margin": 0.009})
    return pd.DataFrame(rows)


def test_the_first_line_says_where_in_few_words():
    from analysis.numbers.estimates import Estimates
    from analysis.pages.first_screen import where
    import pandas as pd

    helps = {(n, p): "helps" for n in (20, 50) for p in (0.1, 0.3, 0.5)}
    cells = _grid_cells({**helps, (10, 0.7): "hurts", (20, 0.7): "withheld"}, small={(50, 0.5)})
    rep = Estimates(trials=pd.DataFrame(), cells=cells, axes=["dropout", "n_train"], focus=0,
                    known=pd.DataFrame(), beside=pd.DataFrame())
    assert where(rep) == ("Dropout lowers test MSE in 6 of 12 cells: at p ≤ 0.5 for N = 20 and 50 (1 of them by "
                          "less than the smallest effect of interest, 0.009); it raises it in 1: at p = 0.7 for "
                          "N = 10; 4 not detected, 1 withheld (30 seeds per cell).")
    # one axis: a run at either end, a run in the middle, every value, scattered values
    from analysis.pages.first_screen import places
    one = cells[cells["n_train"] == 10]
    for chosen, said in (([0.1, 0.3], "at p ≤ 0.3"), ([0.5, 0.7], "at p ≥ 0.5"),
                         ([0.1, 0.3, 0.5, 0.7], "at every p"), ([0.1, 0.5], "at p = 0.1, 0.5"), ([0.3], "at p = 0.3")):
        assert places(one[one["dropout"].isin(chosen)], one, ["dropout"]) == said


def test_the_heatmap_marks_verdicts_in_line_not_only_in_colour():
    """Solid frames for helps / hurts, dashed where the effect is below the smallest one of interest,
    hatching where the verdict is withheld; each cell's text holds its interval."""
    import matplotlib.pyplot as plt
    from analysis.pages.figures import plot_delta_heatmap

    cells = _grid_cells({(20, 0.1): "helps", (20, 0.3): "helps", (50, 0.1): "hurts", (20, 0.7): "withheld"},
                        small={(20, 0.3)})
    fig, axs = plot_delta_heatmap(cells, "dropout", "n_train")
    patches = axs[0, 0].patches
    hatched = [p for p in patches if p.get_hatch()]
    framed = [p for p in patches if not p.get_hatch()]
    styles = sorted(str(p.get_linestyle()) for p in framed)
    texts = [t.get_text() for t in axs[0, 0].texts]
    plt.close(fig)
    assert len(hatched) == 1 and hatched[0].get_xy() == (3, 1)       # p = 0.7 (4th column), N = 20 (middle row)
    assert styles == ["-", "-", "--"], styles                         # two frames, one of them dashed
    assert "+0.020\n[+0.010, +0.030]\nhelps" in texts and "+0.001\n[-0.009, +0.011]\nwithheld" in texts
    assert "+0.020\n[+0.010, +0.030]\nhelps (< smallest effect)" in texts


def test_a_benefit_below_the_smallest_effect_says_so_on_the_first_screen():
    """Clearly above 0 and clearly inside ±0.009 (10% of σ²): 'helps', but not by an effect of interest."""
    import numpy as np
    from _records import synthetic_records

    z = np.random.default_rng(0).normal(size=30)
    deltas = {(("dropout", 0.5),): 0.003 + 0.001 * (z - z.mean()) / z.std(ddof=1)}
    rep = build_report(synthetic_records(deltas, base={"n_train": 20}), {"name": "small", "grid_axes": ["dropout"]},
                       figures=False)
    cell = rep.cells.iloc[0]
    assert cell["verdict"] == "helps" and bool(cell["below_margin"])
    assert "(1 of them by less than the smallest effect of interest, 0.009)" in rep.lead[0]
    assert "lower test MSE" in rep.lead[1] and "below the smallest effect of interest (0.009)" in rep.lead[1]


def test_a_figure_with_too_many_seeds_draws_a_seeded_subsample_and_says_so():
    """More seeds than a figure's dots: a random subset from the given seed, in frame order, named in the caption."""
    import pandas as pd

    from analysis.pages.report_figures import _subsample

    frame = pd.DataFrame({"seed": range(10)})
    kept, words = _subsample(frame, 4, seed=3)
    assert len(kept) == 4 and kept["seed"].is_monotonic_increasing and kept["seed"].is_unique
    assert kept.equals(_subsample(frame, 4, seed=3)[0])                 # the same seed draws the same dots
    assert not kept.equals(_subsample(frame, 4, seed=4)[0])             # and another seed others
    assert words == "; a random 4 of 10 seeds shown"
    whole, none = _subsample(frame, 10, seed=3)
    assert whole is frame and none == ""                               # within the limit: every seed, no words
