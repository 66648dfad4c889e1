"""Per-arm setting lists ([families]) and the best-of-family comparison on held-out seeds."""
import hashlib

import numpy as np
import pandas as pd
import pytest

from bench.results import plain_arm, trial_arms
from sweeps.identity import trial_id
from sweeps.spec import SpecError, load_spec, parse_spec

SPEC = '''name = "fam"
seeds = 8
arms = ["plain", "dropout", "early_stop", "weight_decay"]
[grid]
n_train = [20, 50]
[families]
dropout = [0.2, 0.5, 0.7]
weight_decay = [1e-4, 1e-3, 1e-2]
patience = [3, 5, 10]
'''
ARM = {"status": "ok", "diverged_at_step": None, "train_mse": 0.05, "train_loss_last": 0.05, "gap": 0.1,
       "curve_steps": [], "curve_train_mse": [], "curve_test_mse": [], "step_seconds_median": 1e-3,
       "step_seconds_iqr": 1e-4, "group_size": 1, "engine": "single"}


def test_families_zip_their_lists_and_train_the_plain_arm_once():
    spec = parse_spec(SPEC)
    cfgs = spec.configs()
    assert len(cfgs) == 2 * 3 * 8 and spec.axes == ["n_train", "dropout", "weight_decay", "patience"]
    settings = {(c.n_train, c.dropout, c.weight_decay, c.patience) for c in cfgs}
    assert settings == {(n, p, w, k) for n in (20, 50) for p, w, k in zip((0.2, 0.5, 0.7), (1e-4, 1e-3, 1e-2),
                                                                        (3, 5, 10))}
    # per (N, seed): one plain arm, three of each other family
    arms = {kind: {a for c in cfgs if (c.n_train, c.seed) == (20, 0) for k, a in trial_arms(c).items() if k == kind}
            for kind in ("plain", "dropout", "weight_decay", "early_stop")}
    assert {k: len(v) for k, v in arms.items()} == {"plain": 1, "dropout": 3, "weight_decay": 3, "early_stop": 3}
    assert spec.to_dict()["families"]["patience"] == [3, 5, 10]


@pytest.mark.parametrize("path, digest", [("sweeps/quick.toml", (360, "0edd254f2e1c866c")),
                                          ("sweeps/overnight.toml", (18000, "22b75e5ad48acc6d"))])
def test_specs_without_families_keep_their_trial_ids(path, digest):
    ids = [trial_id(c) for c in load_spec(path).configs()]   # digests from the code before [families]
    assert (len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]) == digest
    assert "families" not in load_spec(path).to_dict()


@pytest.mark.parametrize("families, message", [
    ('dropout = [0.2, 0.5]\nweight_decay = [1e-3]', r"families: lists of unequal length \(dropout: 2, weight_decay: 1\)"),
    ('lr = [0.1, 0.01]', r"families.lr: not an arm's setting; families take dropout, patience, val_fraction, weight_decay"),
    ('dropout = [0.2, 1.5]', r"families.dropout\[1\]: dropout=1.5: must be in \[0, 1\)"),
    ('dropout = [0.5, 0.5]', r"families.dropout: duplicate value 0.5"),
    ('dropout = []', r"families.dropout: must be a non-empty list of values"),
    ('n_train = [20]', r"families.n_train: not an arm's setting"),
])
def test_family_errors_are_one_line(families, message):
    with pytest.raises(SpecError, match=message) as err:
        parse_spec(SPEC.split("[families]")[0] + "[families]\n" + families + "\n")
    assert "\n" not in str(err.value)


def test_a_family_setting_needs_its_arm_and_is_not_also_a_grid_axis():
    with pytest.raises(SpecError, match=r"families.weight_decay\[0\]: .*add 'weight_decay' to arms"):
        parse_spec('name = "x"\nseeds = 2\n[families]\nweight_decay = [1e-3]\n')
    with pytest.raises(SpecError, match=r"families.dropout: also a \[grid\] axis"):
        parse_spec('name = "x"\nseeds = 2\n[grid]\ndropout = [0.1]\n[families]\ndropout = [0.2]\n')
    with pytest.raises(SpecError, match=r"families.patience: also set in \[base\]"):
        parse_spec(SPEC.replace("[grid]", "[base]\npatience = 4\n[grid]"))


def _records(outcome, spec_text=SPEC, diverged=()):
    """Records of the spec's configs with outcome(kind, cfg) as each arm's test MSE; ``diverged``:
    (kind, n_train, setting value, seed) whose arm diverged (its test MSE NaN)."""
    records = []
    setting = {"dropout": "dropout", "weight_decay": "weight_decay", "early_stop": "patience", "plain": None}
    for cfg in parse_spec(spec_text).configs():
        arms = {}
        for kind in ("plain", "dropout", "early_stop", "weight_decay"):
            value = outcome(kind, cfg)
            bad = (kind, cfg.n_train, getattr(cfg, setting[kind]) if setting[kind] else None, cfg.seed) in diverged
            arms[kind] = {**ARM, "rate": cfg.dropout if kind == "dropout" else 0.0,
                          "test_mse": float("nan") if bad else value, "status": "diverged" if bad else "ok",
                          "diverged_at_step": 7 if bad else None}
        status = "diverged" if "diverged" in (arms["plain"]["status"], arms["dropout"]["status"]) else "ok"
        result = {"config": cfg.to_dict(), "delta_test_mse": arms["plain"]["test_mse"] - arms["dropout"]["test_mse"],
                  "env": {}, "schema_version": 3, "plain": arms["plain"], "dropout": arms["dropout"],
                  "comparators": {"early_stop": {**arms["early_stop"], "best_step": 40, "stopped_step": 90},
                                  "weight_decay": arms["weight_decay"]}}
        records.append({"trial_id": cfg.config_hash(), "status": status, "error": None, "config": cfg.to_dict(),
                        "result": result})
    return records


KIND = {"plain": 1, "dropout": 2, "early_stop": 3, "weight_decay": 4}


def _noise(*key):
    """A fixed draw per key: (kind name or number, ...)."""
    return 0.002 * np.random.default_rng([KIND[k] if isinstance(k, str) else int(round(k * 10000))
                                          for k in key]).standard_normal()


def OWN(cfg):
    """The settings each arm reads, besides n_train: an outcome must depend on these only."""
    return {"plain": (), "dropout": (cfg.dropout,), "weight_decay": (cfg.weight_decay,), "early_stop": (cfg.patience,)}


def _families(records, axes=("n_train", "dropout", "weight_decay", "patience")):
    from analysis.numbers.families import best_of_families
    from analysis.records.frame import records_frame

    return best_of_families(records_frame(records), list(axes))


def test_the_choice_is_made_on_the_even_seeds_and_judged_on_the_odd():
    """dropout 0.2 is best on the even seeds; 0.7 is best on all seeds (far better on the odd ones)."""
    def outcome(kind, cfg):
        base = 0.2 + _noise(kind, cfg.n_train, cfg.seed)
        if kind == "dropout":
            even = cfg.seed % 2 == 0
            return base - {0.2: 0.03, 0.5: 0.0, 0.7: 0.01 if even else 0.2}[cfg.dropout] + _noise(cfg.dropout, cfg.seed)
        if kind == "weight_decay":
            return base - 0.01 * (cfg.weight_decay == 1e-3) + _noise(cfg.weight_decay, cfg.seed)
        if kind == "early_stop":
            return base + _noise(kind, cfg.patience, cfg.seed)
        return base

    t = _families(_records(outcome))
    assert set(t["dropout_choice"]) == {"dropout=0.2"} and set(t.loc[t["question"] == "weight_decay", "rival_choice"]) \
        == {"weight_decay=0.001"}
    assert (t["n"] == 4).all() and (t["n_select"] == 4).all() and (t["dropout_settings"] == 3).all()
    # the confirmation deltas are the odd seeds' own: recompute one by hand
    row = t[(t["question"] == "plain") & (t["n_train"] == 20)].iloc[0]
    odd = [outcome("plain", c) - outcome("dropout", c) for c in parse_spec(SPEC).configs()
           if c.n_train == 20 and c.dropout == 0.2 and c.seed % 2 == 1]
    assert row["delta_mean"] == pytest.approx(np.mean(odd), rel=1e-12)
    from analysis.inference.mean_test import mean_test
    assert row["p"] == pytest.approx(float(mean_test(np.array(odd))[0]), rel=1e-9)   # the verdicts' test
    assert row["p"] >= __import__("scipy").stats.ttest_1samp(odd, 0).pvalue - 1e-15


def test_a_diverged_seed_counts_against_its_arm():
    def outcome(kind, cfg):
        own = {"plain": (), "dropout": (cfg.dropout,), "weight_decay": (cfg.weight_decay,), "early_stop": (cfg.patience,)}
        return 0.2 - 0.02 * (kind == "dropout") + _noise(kind, cfg.n_train, *own[kind], cfg.seed)

    clean = _families(_records(outcome))
    # dropout 0.2 at N = 20 diverges on seed 3 (a confirmation seed) whatever it was chosen on
    records = _records(outcome, diverged={("dropout", 20, p, 3) for p in (0.2, 0.5, 0.7)})
    t = _families(records)
    mine = t[(t["n_train"] == 20) & (t["question"] == "plain")].iloc[0]
    assert mine["n"] == clean[(clean["n_train"] == 20) & (clean["question"] == "plain")].iloc[0]["n"] == 4
    assert mine["diverged_dropout"] == 1 and mine["diverged_rival"] == 0
    cfgs = [c for c in parse_spec(SPEC).configs() if c.n_train == 20 and f"dropout={c.dropout:g}" == mine["dropout_choice"]]
    odd = {c.seed: outcome("dropout", c) for c in cfgs if c.seed % 2 == 1}
    worst = max(v for s, v in odd.items() if s != 3)
    plain = {c.seed: outcome("plain", c) for c in cfgs}
    expected = np.mean([plain[s] - (worst if s == 3 else v) for s, v in odd.items()])
    assert mine["delta_mean"] == pytest.approx(expected, rel=1e-12)
    # the main plain-versus-dropout comparison is unchanged in kind: the trial there is "diverged"


def test_holm_runs_across_the_groups_of_one_question():
    from analysis.inference.stats import adjust_pvalues

    def outcome(kind, cfg):
        shift = {"dropout": -0.004, "weight_decay": 0.0, "early_stop": 0.003, "plain": 0.001}[kind]
        return 0.2 + shift + 3 * _noise(kind, cfg.n_train, *OWN(cfg)[kind], cfg.seed)

    spec = SPEC.replace("n_train = [20, 50]", "n_train = [20, 50, 100]").replace("seeds = 8", "seeds = 12")
    t = _families(_records(outcome, spec))
    assert len(t) == 9
    for q, g in t.groupby("question"):
        assert len(g) == 3
        np.testing.assert_allclose(g["p_holm"], adjust_pvalues(g["p"].to_numpy(), method="holm"))
    pooled = adjust_pvalues(t["p"].to_numpy(), method="holm")
    assert not np.allclose(pooled, t["p_holm"])


def test_estimates_carry_the_families_table():
    from analysis.numbers.estimates import estimate

    def outcome(kind, cfg):
        return 0.2 + _noise(kind, cfg.n_train, *OWN(cfg)[kind], cfg.seed)

    spec = parse_spec(SPEC)
    rep = estimate(_records(outcome), {"grid_axes": spec.axes, "seeds": list(spec.seeds)})
    assert rep.families.attrs["group_axes"] == ["n_train"] and len(rep.families) == 6
    assert rep.axes == ["n_train", "dropout"] and (rep.cells["delta_n"] == 8).all()
    assert rep.comparisons["weight_decay"].attrs["axes"] == ["n_train", "dropout", "weight_decay"]


def test_the_summary_leads_the_comparators_with_the_best_of_each_family():
    """The report's words for the best-of-family comparison: each rival's choice, the groups, the largest
    difference with its interval and Holm p."""
    from analysis.pages.report import build_report

    def outcome(kind, cfg):
        base = 0.2 + _noise(kind, cfg.n_train, cfg.seed)
        return base - 0.05 if kind == "weight_decay" else base   # weight decay is far better everywhere

    spec = parse_spec(SPEC)
    manifest = {"name": "fam", "grid_axes": spec.axes, "spec": spec.to_dict(), "seeds": list(range(8))}
    rep = build_report(_records(outcome), manifest, figures=False)
    lines = [s for s in rep.summary if s.startswith("Against weight decay (best lambda")]
    assert len(lines) == 1, rep.summary
    assert "dropout better in 0 of 2 (N) groups, worse in 2" in lines[0] and "Holm p" in lines[0]
    assert "dropout in [0.2, 0.5, 0.7]" in dict(rep.design)["Cells"]


def test_families_refuse_crossed_seeds():
    """Crossed seeds 2j and 2j+1 share data and initial weights: the even (choosing) and odd (judging)
    halves would not be independent."""
    text = SPEC.replace("seeds = 8", "seeds = {data = 2, init = 2, masks = 2}")
    with pytest.raises(SpecError, match="families: not with crossed seeds") as err:
        parse_spec(text)
    assert "\n" not in str(err.value)
