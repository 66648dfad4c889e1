"""Searches: spec validation, reproducibility, the store and the study, masking, the report."""
import base64
import html
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pg_server import postgres_url  # noqa: F401 - the PostgreSQL server fixture
from search_helpers import CLI, course, journal_seed_ids, journal_study, store_ids, tiny_search
from sweeps.search import load_search_spec, mask_argv, mask_url, parse_search_spec, run_search
from sweeps.spec import SpecError

GOOD = """name = "s"
objective = "dropout_benefit"
seeds = 4
n_trials = 3
[space]
dropout = { low = 0.0, high = 0.9 }
width = { low = 16, high = 1024, log = true }
"""


def test_a_good_spec_types_the_space_from_the_config_fields():
    spec = parse_search_spec(GOOD)
    dropout, width = spec.space
    assert (dropout.kind, dropout.low, dropout.high, dropout.log) == ("float", 0.0, 0.9, False)
    assert (width.kind, width.low, width.high, width.log) == ("int", 16, 1024, True)
    assert spec.directions == ("maximize",)
    # the seed experiment, clipped to the space, is the first point; confirmation seeds are fresh
    assert spec.seed_experiment_params() == {"dropout": 0.5, "width": 300}
    assert parse_search_spec(GOOD.replace("high = 1024", "high = 200")).seed_experiment_params()["width"] == 200
    assert set(spec.confirm_seeds).isdisjoint(spec.seeds) and len(spec.confirm_seeds) == 8


BAD = [
    ("unknown parameter", ("width = {", "widht = {"), "space.widht: unknown config field"),
    ("reserved parameter", ("width = {", "seed = {"), "space.seed: not allowed here; use the top-level 'seeds'"),
    ("parameter also fixed", ("[space]", "[base]\nwidth = 64\n[space]"),
     "space.width: also set in [base]; a field is either fixed or searched"),
    ("empty range", ("high = 0.9", "high = 0.0"), "space.dropout: empty range"),
    ("low > high", ("low = 16, high = 1024", "low = 1024, high = 16"), "space.width: low > high"),
    ("log with non-positive bound", ("dropout = { low = 0.0, high = 0.9 }",
                                     "dropout = { low = 0.0, high = 0.9, log = true }"),
     "space.dropout: log scale needs low > 0"),
    ("unknown objective", ('objective = "dropout_benefit"', 'objective = "accuracy"'),
     "objective: 'accuracy' is not an objective"),
    ("unknown sampler", ("seeds = 4", 'seeds = 4\nsampler = "bayes"'), "sampler: 'bayes' is not a sampler"),
    ("int field given a float", ("low = 16, high", "low = 16.5, high"), "space.width.low: 16.5"),
    ("bound outside the config's range", ("high = 0.9", "high = 1.0"), "space.dropout.high: dropout=1.0"),
]


@pytest.fixture
def cli_main():
    """sweeps.cli.main, in this process."""
    from sweeps import cli

    return cli.main


@pytest.mark.parametrize("case, edit, message", BAD, ids=[b[0] for b in BAD])
def test_bad_specs_give_one_line_and_exit_2_with_nothing_created(tmp_path, capsys, cli_main, case, edit, message):
    spec = tmp_path / "bad.toml"
    assert edit[0] in GOOD
    spec.write_text(GOOD.replace(*edit))
    with pytest.raises(SpecError, match=re.escape(message)):
        load_search_spec(spec)
    out = tmp_path / "out"
    assert cli_main(["search", str(spec), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_the_good_spec_of_those_cases_is_accepted():
    """The bad cases above are edits of this spec; it must load, or they prove nothing."""
    assert parse_search_spec(GOOD).name == "s"


def test_two_objectives_refuse_a_pruner_and_cmaes():
    two = GOOD.replace('"dropout_benefit"', '"dropout_test_mse+step_time"')
    assert parse_search_spec(two).directions == ("minimize", "minimize")
    with pytest.raises(SpecError, match="pruner: pruning needs one objective"):
        parse_search_spec(two.replace("seeds = 4", 'seeds = 4\npruner = "wilcoxon"'))
    with pytest.raises(SpecError, match="sampler: cmaes optimises one objective"):
        parse_search_spec(two.replace("seeds = 4", 'seeds = 4\nsampler = "cmaes"'))


def test_the_bundled_example_spec_loads():
    spec = load_search_spec(Path(__file__).resolve().parent.parent / "sweeps" / "where_dropout_helps.toml")
    assert spec.name == "where-dropout-helps" and spec.pruner == "wilcoxon"


def test_a_storage_password_is_masked_everywhere():
    url = "postgresql://ann:s3cret@db.example:5432/optuna"
    assert mask_url(url) == "postgresql://ann:***@db.example:5432/optuna"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_argv(["search", "a.toml", "--storage", url]) == ["search", "a.toml", "--storage", mask_url(url)]
    assert "s3cret" not in " ".join(mask_argv([f"--storage={url}"]))


def test_an_unreachable_storage_fails_in_one_masked_line_before_anything_is_written(tmp_path, capsys, cli_main):
    out = tmp_path / "out"
    spec = tiny_search(tmp_path)
    rc = cli_main(["search", str(spec), "--out", str(out), "--storage", "mysql://ann:s3cret@127.0.0.1:1/none"])
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert "s3cret" not in captured.err + captured.out and "ann:***@" in captured.err
    assert not out.exists()


@pytest.mark.parametrize("flag, message", [(["--heartbeat", "0"], "--heartbeat 0: must be a whole number"),
                                           (["--workers", "0"], "--workers 0: must be >= 1")])
def test_bad_run_options_give_one_line_and_exit_2_with_nothing_created(tmp_path, capsys, cli_main, flag, message):
    out = tmp_path / "out"
    assert cli_main(["search", str(tiny_search(tmp_path)), "--out", str(out), *flag]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A tiny search run twice with the same sampler seed, once with another; confirmation on but for "other".

    "a" and "other" run through the CLI (``printed``: their stdout), "b" through ``run_search``.
    """
    tmp = tmp_path_factory.mktemp("search")
    spec = tiny_search(tmp, n_trials=5, confirm="top = 2\nseeds = 3", sampler_seed=7)
    outs, printed = {}, {}
    for label, seed in (("a", 7), ("b", 7), ("other", 8)):
        path = spec if seed == 7 else tiny_search(tmp, name="other", n_trials=4, sampler_seed=8)
        outs[label] = tmp / label
        if label == "b":
            run_search(path, out_dir=outs[label], progress=False)
            continue
        flags = ["--no-confirm"] if label == "other" else []
        proc = subprocess.run([*CLI, "search", str(path), "--out", str(outs[label]), "--quiet", "--no-report", *flags],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        printed[label] = proc.stdout
    return spec, outs, printed


def test_a_sequential_search_with_a_fixed_sampler_seed_is_reproducible(searched):
    _, outs, _ = searched
    a, b = journal_study(outs["a"], "tiny"), journal_study(outs["b"], "tiny")
    assert course(a) == course(b) and len(a.trials) == 5
    other = journal_study(outs["other"], "other")
    assert [t.params for t in other.trials][1:] != [t.params for t in a.trials][1:]   # the seed matters


def test_the_seed_experiment_is_the_first_trial_and_every_seed_is_stored_once(searched):
    from sweeps import load_trials
    from bench import TrialConfig

    spec_path, outs, _ = searched
    study = journal_study(outs["a"], "tiny")
    first = study.trials[0]
    assert first.params == {"dropout": 0.5, "n_train": TrialConfig().n_train}
    assert first.user_attrs["seed_experiment"] is True
    ids = store_ids(outs["a"])
    assert len(ids) == len(set(ids))
    assert journal_seed_ids(study) <= set(ids)
    trials = load_trials(outs["a"])          # the analysis reads a search store unchanged
    assert set(trials["seed"]) == {0, 1, 2, 3, 4, 5}   # search seeds 0-2, confirmation seeds 3-5
    assert (trials.groupby(["dropout", "n_train"])["seed"].nunique() >= 3).all()


def test_optuna_lists_the_study_from_the_journal(searched):
    import optuna
    from sweeps.search import open_storage

    _, outs, _ = searched
    summaries = optuna.get_all_study_summaries(open_storage(outs["a"], None))
    assert [(s.study_name, s.n_trials) for s in summaries] == [("tiny", 5)]
    optuna_cli = [sys.executable, "-c", "import sys; from optuna.cli import main; sys.exit(main())"]
    proc = subprocess.run([*optuna_cli, "studies", "--storage", str(outs["a"] / "optuna.journal"), "-f", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"tiny"' in proc.stdout


def test_rerunning_a_finished_search_trains_nothing(searched):
    spec, outs, _ = searched
    before = sorted(store_ids(outs["a"]))
    summary = run_search(spec, out_dir=outs["a"], progress=False)
    assert summary.ran == 0 and summary.used == 5 and sorted(store_ids(outs["a"])) == before


def _pick_values(out: Path) -> dict:
    """The rank-1 confirmed configuration's seed values, read straight from the stored records."""
    from sweeps import load_search

    search = load_search(out)
    pick = next(c for c in search.confirm if c["rank"] == 1)
    result = {r["trial_id"]: r["result"] for r in search.records}
    assert not set(pick["confirm_ids"]) & set(pick["search_ids"])          # the fresh seeds are fresh
    return {"number": pick["number"], "params": pick["params"],
            "fresh": np.array([result[i]["dropout"]["test_mse"] for i in pick["confirm_ids"]]),
            "own": np.array([result[i]["dropout"]["test_mse"] for i in pick["search_ids"]]),
            "delta": np.array([result[i]["delta_test_mse"] for i in pick["confirm_ids"]])}


def _t_scored(x: np.ndarray) -> str:
    from scipy import stats

    ci = stats.ttest_1samp(x, 0.0).confidence_interval()    # 95% by default
    return f"{x.mean():.4g} [{ci.low:.4g}, {ci.high:.4g}], 95% t-interval over {len(x)} fresh seeds"


def test_the_cli_leads_with_the_confirmed_score_on_fresh_seeds_and_its_interval(searched):
    _, outs, printed = searched
    v = _pick_values(outs["a"])
    assert len(v["fresh"]) == len(v["own"]) == 3
    lines = printed["a"].splitlines()
    assert len(lines) == 4, printed["a"]
    assert lines[0].startswith(f"confirmed best (the search's pick, trial {v['number']}: dropout=")
    assert all(f"{k}=" in lines[0] for k in v["params"])
    assert lines[0].endswith(f"): dropout test MSE {_t_scored(v['fresh'])}"), lines[0]
    assert (f"search's own score for it: {v['own'].mean():.4g} over 3 search seeds, "
            "optimistic (selected on those seeds); optimism ") in lines[1]
    assert f"{v['fresh'].mean():.4g}" != f"{v['own'].mean():.4g}"     # so the first check tells the two apart
    assert "delta test MSE (plain - dropout" in lines[2] and lines[2].endswith(_t_scored(v["delta"]))
    assert lines[3].startswith(f"{outs['a']}: study 'tiny': 5/5 trials") and "best" not in lines[3]


def test_the_cli_says_a_search_without_confirmation_is_not_confirmed(searched):
    from optuna.trial import TrialState

    _, outs, printed = searched
    lines = printed["other"].splitlines()
    assert lines[0] == "not confirmed on fresh seeds: confirmation skipped (--no-confirm)"
    done = [t for t in journal_study(outs["other"], "other").trials if t.state == TrialState.COMPLETE]
    best = min(done, key=lambda t: (t.value, t.number))
    assert lines[1].startswith(f"search's best: dropout test MSE {best.value:.4g} over 3 search seeds "
                               f"(trial {best.number}: ")
    assert lines[1].endswith(f"not confirmed on fresh seeds (optimistic: the best of {len(done)} trials, "
                             "selected on those seeds)")
    assert "confirmed best" not in printed["other"] and len(lines) == 3


@pytest.fixture(scope="module")
def report(searched):
    from analysis.pages.search_report import write_search_report
    from sweeps import load_search

    _, outs, _ = searched
    return write_search_report(outs["a"], load_search(outs["a"]), n_resamples=199)


def test_the_search_report_renders_with_loadable_images(searched, report):
    from PIL import Image

    _, outs, printed = searched
    path = report
    assert path == outs["a"] / "search_report.html"
    page = path.read_text()
    answer, design = page.index("<h2>Answer</h2>"), page.index("<h2>Design</h2>")
    assert answer < design and f"<b>{html.escape(printed['a'].splitlines()[0])}</b>" in page[answer:design]
    assert "95% Student&#x27;s t intervals of the mean (no interval below 3 seeds)" in page
    assert "bootstrap" not in page
    pngs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(pngs) >= 3
    for data in pngs:
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    assert "Confirmed best configurations" in page and "optimism" in page
    assert page.count("<tr>") >= 1 + 2      # header + the two confirmed configurations


def test_the_search_report_opens_in_a_browser(report, tmp_path):
    from test_browser import CHROMIUM, load_in_chromium

    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    _, counts = load_in_chromium(report, tmp_path)
    assert counts["broken"] == 0 and counts["errors"] == 0 and counts["images"] >= 3


def test_a_diverging_configuration_fails_its_trial_uses_budget_and_its_seeds_are_stored(tmp_path):
    from optuna.trial import TrialState

    spec = tiny_search(tmp_path, seeds=2, n_trials=2, steps=30, space={"lr": "{ low = 1e6, high = 1e7, log = true }"})
    out = tmp_path / "out"
    summary = run_search(spec, out_dir=out, progress=False, confirm=False)
    study = journal_study(out, "tiny")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL] and summary.used == 2
    assert all(t.user_attrs["fail_reason"].startswith("diverged") for t in study.trials)
    from sweeps import load_records
    records = load_records(out)
    assert len(records) == 4 and {r["status"] for r in records} == {"diverged"}


def test_a_postgresql_study_is_shared_by_two_workers_and_its_password_never_written(tmp_path, postgres_url):
    import optuna

    from pg_server import PASSWORD
    from sweeps.search import open_storage

    spec = tiny_search(tmp_path, name="pg", n_trials=4)
    out = tmp_path / "out"
    summary = run_search(spec, out_dir=out, storage=postgres_url, workers=2, progress=False,
                         argv=["dropout-bench", "search", str(spec), "--storage", postgres_url])
    assert summary.used == 4 and summary.worker_deaths == 0 and PASSWORD not in summary.line()
    study = optuna.load_study(study_name="pg", storage=open_storage(out, postgres_url))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert journal_seed_ids(study) <= set(store_ids(out)) and not (out / "optuna.journal").exists()
    for path in out.rglob("*"):                     # the store (the report's only source), locks: nowhere
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    from sweeps import load_manifest
    manifest = load_manifest(out)
    assert manifest["runs"][-1]["info"]["storage"].startswith("postgresql://postgres:***@127.0.0.1")
    assert "***" in " ".join(manifest["runs"][-1]["info"]["argv"])


def test_wilcoxon_stops_a_clearly_worse_configuration_after_the_startup_seeds():
    import optuna

    from sweeps.search._objective import SEED_ATTR, chunks, evaluate
    from sweeps.search._study import make_pruner

    spec = parse_search_spec('name = "w"\nobjective = "dropout_test_mse"\nseeds = 8\nn_trials = 2\n'
                             'pruner = "wilcoxon"\n[base]\nwidth = 16\nsteps = 60\n'
                             '[space]\ndropout = { low = 0.0, high = 0.95 }\n')
    assert list(chunks(spec)) == [[0, 1, 2, 3], [4, 5], [6, 7]]
    assert list(chunks(parse_search_spec(GOOD))) == [[0, 1, 2, 3]]          # no pruner: one batch
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=make_pruner(spec))
    study.enqueue_trial({"dropout": 0.0})
    study.enqueue_trial({"dropout": 0.95})     # keeps 1 unit in 20: underfits on every seed
    for _ in range(2):
        evaluate(study, study.ask(), spec, "cpu")
    good, bad = study.trials
    assert good.user_attrs["n_seeds"] == 8 and "pruned_after_seeds" not in good.user_attrs
    assert bad.user_attrs["pruned_after_seeds"] == 4
    assert sorted(bad.intermediate_values) == [0, 1, 2, 3]
    assert len([k for k in bad.user_attrs if k.startswith(SEED_ATTR)]) == 4
    assert bad.value > good.value


@pytest.mark.parametrize("sampler, objective", [("random", "dropout_test_mse+step_time"), ("gp", "dropout_benefit"),
                                                ("cmaes", "dropout_test_mse")])
def test_every_sampler_and_the_two_objective_search_run(tmp_path, sampler, objective):
    if sampler == "cmaes":
        pytest.importorskip("cmaes", reason="CmaEsSampler needs the cmaes package")
    from optuna.trial import TrialState

    from analysis.pages.search_report import build_search_figures, study_from_snapshot
    from sweeps.search import open_storage
    from sweeps.search._study import snapshot

    spec = tiny_search(tmp_path, seeds=2, n_trials=3, steps=30, sampler=sampler, objective=objective,
                       confirm="top = 1\nseeds = 2")
    out = tmp_path / "out"
    summary = run_search(spec, out_dir=out, progress=False)
    study = journal_study(out, "tiny")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 and len(summary.confirmed) == 1
    assert len(study.trials[0].values) == (2 if "+" in objective else 1)
    if "+" in objective:
        import optuna
        rebuilt = study_from_snapshot(snapshot(optuna.load_study(study_name="tiny", storage=open_storage(out, None))),
                                      ("minimize", "minimize"))
        figures = {name: png for name, _, png, _ in build_search_figures(rebuilt, objective)}
        assert figures["pareto"] is not None and figures["history"] is not None


def test_raising_n_trials_resumes_the_study_and_changing_the_space_is_refused(tmp_path):
    from sweeps.store import StoreError

    spec = tiny_search(tmp_path, seeds=2, n_trials=2, steps=30)
    out = tmp_path / "out"
    run_search(spec, out_dir=out, progress=False, confirm=False)
    spec.write_text(spec.read_text().replace("n_trials = 2", "n_trials = 4"))
    summary = run_search(spec, out_dir=out, progress=False, confirm=False)
    assert summary.ran == 2 and len(journal_study(out, "tiny").trials) == 4
    spec.write_text(spec.read_text().replace("high = 0.8", "high = 0.7"))
    with pytest.raises(StoreError, match="differ from the stored search"):
        run_search(spec, out_dir=out, progress=False)


def test_a_trial_asked_but_never_identified_is_failed_and_retried_by_its_driver(tmp_path):
    """A stop between ``study.ask()`` and recording the worker leaves a RUNNING trial with no owner.

    The journal's lock is the folder's, so nothing else can be mid-ask while it is held:
    the driver's recovery after Ctrl-C/SIGTERM (dead_pids = its own pid) fails it and
    queues it again instead of leaving it RUNNING until the next start.
    """
    import os

    from optuna.trial import TrialState

    from sweeps.search._backends import StudyLock, open_storage
    from sweeps.search._study import STALE, load_study, recover

    spec = load_search_spec(tiny_search(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    storage = open_storage(out, None)
    study = load_study(spec, storage, create=True)
    trial = study.ask()
    for p in spec.space:
        suggest = trial.suggest_int if p.kind == "int" else trial.suggest_float
        suggest(p.name, p.low, p.high, log=p.log)
    with StudyLock(storage, out, spec.name):
        failed, enqueued = recover(study, spec.param_names, out, dead_pids={os.getpid()})
    assert (failed, enqueued) == (1, 1)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    assert study.trials[0].user_attrs["fail_reason"] == STALE


def test_the_storage_string_chooses_one_backend_and_an_open_storage_finds_the_same(tmp_path):
    """Each kind answers what the search asks of it; a storage opened from it maps back to it."""
    from sweeps.search import study_backend
    from sweeps.search._backends import backend_of

    cases = {None: ("journal", False, True), "postgresql://ann:pw@127.0.0.1:1/db": ("postgresql", True, True),
             f"sqlite:///{tmp_path / 'a.db'}": ("sqlite", True, True), "sqlite://": ("machine", True, False),
             "mysql://ann:pw@127.0.0.1:1/db": ("machine", True, False)}
    for url, expected in cases.items():
        backend = study_backend(url, tmp_path)
        assert (backend.kind, backend.is_rdb, backend.orphans_certain) == expected, url
        assert "pw" not in backend.shown
    assert study_backend(None, tmp_path).shown == str(tmp_path / "optuna.journal")
    for url in (None, f"sqlite:///{tmp_path / 'a.db'}"):
        storage = study_backend(url, tmp_path, heartbeat=7).open()
        found = backend_of(storage, tmp_path)
        assert (found.kind, found.heartbeat_interval(storage)) == (study_backend(url, tmp_path).kind,
                                                                    7 if url else None)
