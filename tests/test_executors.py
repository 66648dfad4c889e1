"""One way to run work: the executor factory, its registry, and the drivers that use it.

The search's confirmation and ``validate`` get their executors from
``sweeps.executors.make_executor``, as sweeps do: each runs here on the in-process and on
the local-process backend, and the executor it got is looked at. A validation folder in the
format older versions wrote (setup file, rows file, lock file) resumes.
"""
import json

import pytest

from bench import TrialConfig
from bench.validate import validation_rows
from search_helpers import journal_study, store_ids, tiny_search
from sweeps import executors
from sweeps.executors import BACKENDS, InProcessExecutor, ProcessExecutor, make_executor
from sweeps.options import ExecutionOptions
from sweeps.spec import SpecError

# (backend, workers) -> the executor class the factory must give
CASES = [("inprocess", 1, InProcessExecutor), ("local", 2, ProcessExecutor)]
VALIDATE = TrialConfig(width=16, steps=30)
SOURCES = ("engine", "masked")


def _spy(monkeypatch, module) -> list:
    """Record every executor ``module`` gets from the factory."""
    made = []

    def spying(opts, *args, **kwargs):
        made.append(make_executor(opts, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(module, "make_executor", spying)
    return made


def test_the_backend_names_are_the_registrys():
    from sweeps.cli import build_parser

    assert list(BACKENDS) == ["inprocess", "local", "dask"]
    sweep = next(a for a in build_parser()._subparsers._group_actions[0].choices["sweep"]._actions
                 if a.dest == "backend")
    assert tuple(sweep.choices) == tuple(BACKENDS)
    with pytest.raises(SpecError, match="--backend 'ray': must be one of inprocess, local, dask"):
        ExecutionOptions(backend="ray").check()
    with pytest.raises(SpecError, match="--backend dask and --scheduler"):
        ExecutionOptions(backend="dask").check()


@pytest.mark.parametrize("backend, workers, kind", CASES)
def test_the_factory_gives_each_backend_its_executor_with_the_options(backend, workers, kind):
    opts = ExecutionOptions(backend=backend, workers=workers, group_size=3).resolve({}, default_workers=1)
    executor = make_executor(opts)
    try:
        assert type(executor) is kind and executor.n_workers == workers and executor.local
        assert (executor.engine, executor.group_size) == ("auto", 3)
    finally:
        executor.close()


@pytest.mark.parametrize("backend, workers, kind", CASES)
def test_confirmation_runs_on_the_shared_factory(tmp_path, monkeypatch, backend, workers, kind):
    from sweeps.search import load_search_spec, run_search
    from sweeps.search import _confirm
    from sweeps.session import folder_session
    from sweeps.store import Store

    path = tiny_search(tmp_path, n_trials=2, seeds=2, steps=30, confirm="top = 1\nseeds = 2")
    out = tmp_path / "out"
    run_search(path, out_dir=out, progress=False, confirm=False)
    spec = load_search_spec(path)
    made = _spy(monkeypatch, _confirm)
    opts = ExecutionOptions(backend=backend, workers=workers, group_size=2).resolve({}, default_workers=1)
    with folder_session(out, Store.open) as session:
        plan = _confirm.confirm_best(session, journal_study(out, spec.name), spec, opts, progress=False)
    assert [type(e) for e in made] == [kind] and made[0].group_size == 2   # the group size goes through
    assert len(plan) == 1 and len(plan[0]["confirm_ids"]) == 2
    assert set(plan[0]["confirm_ids"]) <= set(store_ids(out))


@pytest.mark.parametrize("backend, workers, kind", CASES)
def test_validate_runs_on_the_shared_factory(tmp_path, monkeypatch, backend, workers, kind):
    from sweeps import validate

    made = _spy(monkeypatch, validate)
    rows = validate.run_validation(VALIDATE, range(6), tmp_path / "v", sources=SOURCES, progress=False,
                                   options=ExecutionOptions(backend=backend, workers=workers))
    assert [type(e) for e in made] == [kind]
    assert rows == validation_rows(VALIDATE, range(6), sources=SOURCES)   # as one unbroken run in here
    runs = [json.loads(x) for x in (tmp_path / "v" / validate.RUNS).read_text().splitlines()]
    assert [r["run"] for r in runs] == [1, 1] and runs[0]["info"]["backend"] == backend


def _old_folder(out, cfg, seeds):
    """A validation folder as the code before the shared session wrote it, killed mid-write."""
    out.mkdir()
    plan = {"config": cfg.replace(seed=0, device="cpu").to_dict(), "sources": list(SOURCES),
            "engine_lr_scale": 1.0}
    (out / "validation-setup.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    rows = validation_rows(cfg, seeds, sources=SOURCES)
    for row in rows:
        row["engine"]["plain_test_mse"] = -1.0   # a mark: a row read back, not trained again
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"seed": 9, "engine": {"plain_tr'
    (out / "validation.jsonl").write_text(text)
    (out / ".lock").write_text("pid 12345")      # its lock file, left by a finished run
    return rows


def test_a_validation_folder_of_the_old_format_loads_and_resumes(tmp_path):
    from sweeps.validate import run_validation, write_validation

    out = tmp_path / "old"
    old = _old_folder(out, VALIDATE, [0, 1])
    loaded = run_validation(VALIDATE, [0, 1], out, sources=SOURCES, progress=False)
    assert loaded == old                          # read back, nothing trained
    rows = run_validation(VALIDATE, range(4), out, sources=SOURCES, progress=False)
    assert rows[:2] == old and rows[2:] == validation_rows(VALIDATE, [2, 3], sources=SOURCES)
    lines = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in lines) == [0, 1, 2, 3]   # each seed once, the torn line gone
    assert "Engine validation: 4 seeds" in write_validation(out, rows, rel_margin=0.02, sd_margin=0.2)


def test_a_folder_that_is_not_a_validation_is_refused(tmp_path):
    from sweeps.store import StoreError
    from sweeps.validate import run_validation

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="holds no dropout-bench store"):
        run_validation(VALIDATE, [0], tmp_path / "mine", sources=SOURCES, progress=False)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_the_registry_is_the_dispatch(monkeypatch):
    """A backend added to the registry alone is accepted by the options and built by the factory."""
    made = []
    toy = executors.Backend("toy", "a test's own", lambda opts, work: made.append(work) or "toy-executor")
    monkeypatch.setitem(BACKENDS, "toy", toy)
    opts = ExecutionOptions(backend="toy").resolve({}, default_workers=1)
    assert make_executor(opts) == "toy-executor" and made == [executors.run_unit]
