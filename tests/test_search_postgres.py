"""A search on a real PostgreSQL server on loopback: two workers, one kill, a resume.

The study is shared through PostgreSQL; the whole process group is SIGKILLed mid-run
and the search rerun. Afterwards: the budget used exactly, nothing RUNNING or WAITING,
every finished seed stored once, and the URL's password in no file the run wrote and in
none of its output.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from pg_server import PASSWORD, postgres_url  # noqa: F401 - the PostgreSQL server fixture
from search_helpers import journal_seed_ids, store_ids, tiny_search

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "sweeps.cli"]


def _study(name, url):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from sweeps.search import open_storage
    return optuna.load_study(study_name=name, storage=open_storage(".", url))


def test_search_on_postgresql_killed_mid_run_and_resumed(tmp_path, postgres_url):  # noqa: F811
    pytest.importorskip("psycopg", reason="psycopg (the 'distributed' extra) talks to PostgreSQL")
    from optuna.trial import TrialState

    from sweeps.search._study import used_budget

    spec = tiny_search(tmp_path, name="pgkill", seeds=3, n_trials=10, steps=400, width=32, workers=2)
    out = tmp_path / "out"
    env = {**os.environ, "DROPOUT_BENCH_STORAGE": postgres_url}
    args = [*CLI, "search", str(spec), "--out", str(out), "--no-report", "--no-confirm"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.time() + 180
    complete = 0
    while first.poll() is None and time.time() < deadline and complete < 2:
        time.sleep(0.2)
        try:
            complete = sum(t.state == TrialState.COMPLETE for t in _study("pgkill", postgres_url).trials)
        except KeyError:        # the study is not created yet
            complete = 0
    assert first.poll() is None, "the search finished before it could be killed; make it longer"
    os.killpg(first.pid, signal.SIGKILL)
    out1, err1 = first.communicate()

    second = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()

    study = _study("pgkill", postgres_url)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert used_budget(study.trials) == 10
    ids = store_ids(out)
    assert len(ids) == len(set(ids)), "a seed stored twice"
    assert journal_seed_ids(study) == set(ids), "a finished seed missing from the store, or one too many"
    for text in (out1, err1, second.stdout, second.stderr):
        assert PASSWORD.encode() not in text
    for path in out.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
