"""Searches on a real PostgreSQL server on loopback: killed and resumed, and shared by two drivers.

1. One driver with two workers; its whole process group is SIGKILLed mid-run and the
   search rerun.
2. Two drivers with their own folders (as on two machines) share one study; one driver's
   process group is SIGKILLed while its trial runs. The other fails that trial once its
   heartbeat is stale, retries it and finishes; the killed driver's rerun only catches up.

Kills wait for a condition read from the study (trials complete, A training), and A is
stopped (SIGSTOP) while the condition is checked once more and it is killed, so it dies
mid-trial on any machine. DROPOUT_BENCH_TEST_WORK_SCALE scales the training steps (see
tests/sweep_helpers.py).

Afterwards: the budget used exactly, nothing RUNNING or WAITING, every finished seed
stored once in each folder, and the URL's password in no file the runs wrote and in none
of their output.
"""
import os
import random
import subprocess
import sys
import time

import pytest

from pg_server import PASSWORD, postgres_url  # noqa: F401 - the PostgreSQL server fixture
from search_helpers import TINY_SPACE, journal_seed_ids, store_ids, tiny_search
from sweep_helpers import freeze, kill_group, wait_until, work

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "sweeps.cli"]


def _study(name, url):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from sweeps.search import open_storage
    return optuna.load_study(study_name=name, storage=open_storage(".", url))


class _Trials:
    """``trials()``: the study's trials now ([] before it exists), through one storage kept open,
    cheap enough to poll every few ms. Made before the drivers start: its storage creates
    Optuna's tables, so no driver races another to create them."""

    def __init__(self, name, url):
        import optuna

        from sweeps.search import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.name, self.storage, self.study = name, open_storage(".", url), None

    def __call__(self) -> list:
        import optuna

        if self.study is None:
            try:
                self.study = optuna.load_study(study_name=self.name, storage=self.storage)
            except KeyError:        # the study is not created yet
                return []
        return self.study.get_trials(deepcopy=False)


def test_search_on_postgresql_killed_mid_run_and_resumed(tmp_path, postgres_url):  # noqa: F811
    from optuna.trial import TrialState

    from sweeps.search._study import used_budget

    spec = tiny_search(tmp_path, name="pgkill", seeds=3, n_trials=10, steps=work(2000), width=64, workers=2)
    out = tmp_path / "out"
    env = {**os.environ, "DROPOUT_BENCH_STORAGE": postgres_url}
    args = [*CLI, "search", str(spec), "--out", str(out), "--no-report", "--no-confirm"]
    read = _Trials("pgkill", postgres_url)
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        # two trials complete, eight to go (four each for two workers): kill it mid-run
        two_done = wait_until(lambda: sum(t.state == TrialState.COMPLETE for t in read()) >= 2, 180, first)
        assert first.poll() is None, "the search finished before it could be killed; make it longer"
        assert two_done, "no two trials completed"
        kill_group(first)
        out1, err1 = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            kill_group(first)

    second = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()

    study = _study("pgkill", postgres_url)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert used_budget(study.trials) == 10
    ids = store_ids(out)
    assert len(ids) == len(set(ids)), "a seed stored twice"
    assert journal_seed_ids(study) == set(ids), "a finished seed missing from the store, or one too many"
    _no_password([out1, err1, second.stdout, second.stderr], out)


def _no_password(texts, *folders):
    for text in texts:
        assert PASSWORD.encode() not in text
    for out in folders:
        for path in out.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path


def test_two_drivers_share_one_study_and_survive_the_death_of_one(tmp_path, postgres_url):  # noqa: F811
    from optuna.trial import TrialState

    from sweeps.search._study import STALE, used_budget

    spec = tiny_search(tmp_path, name="pgtwo", seeds=3, n_trials=12, steps=work(1500), width=32)
    out_a, out_b = (tmp_path / "machine-a").resolve(), (tmp_path / "machine-b").resolve()
    env = {**os.environ, "DROPOUT_BENCH_STORAGE": postgres_url}

    def driver(out):
        return [*CLI, "search", str(spec), "--out", str(out), "--heartbeat", "1", "--no-report", "--no-confirm"]

    read = _Trials("pgtwo", postgres_url)
    a = subprocess.Popen(driver(out_a), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    b = subprocess.Popen(driver(out_b), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)

    def of_a(ts):
        return [t for t in ts if t.user_attrs.get("worker", {}).get("dir") == str(out_a)]

    def a_is_mid_trial() -> bool:
        """A has finished a trial (B must store its seeds) and is training the next one.

        Training, not just asked: a trial killed before its parameters are all drawn
        evaluated nothing and is, by design, not retried.
        """
        mine = of_a(read())
        return (any(t.state == TrialState.COMPLETE for t in mine)
                and any(t.state == TrialState.RUNNING and set(t.params) == set(TINY_SPACE)
                        and "result_seed_0" not in t.user_attrs for t in mine))

    rng = random.Random(12)
    try:
        deadline = time.monotonic() + 180
        hit = False
        while not hit and wait_until(a_is_mid_trial, deadline - time.monotonic(), a):
            # a random part of how long A's last trial took; then, with A stopped so that
            # nothing moves, kill it if it still trains
            done = [t for t in of_a(read()) if t.state == TrialState.COMPLETE]
            took = max(done, key=lambda t: t.number)
            pace = (took.datetime_complete - took.datetime_start).total_seconds()
            wait_until(lambda: not a_is_mid_trial(), rng.uniform(0.0, 0.5) * pace, a)
            with freeze(a.pid, group=True) as frozen:
                if frozen and a_is_mid_trial():
                    kill_group(a)
                    hit = True
        assert hit, "driver A finished before it could be killed; make the trials longer"
        out1, err1 = a.communicate(timeout=60)
        out2, err2 = b.communicate(timeout=150)
    finally:
        for p in (a, b):
            if p.poll() is None:
                kill_group(p)
    assert b.returncode == 0, err2.decode()
    study = _study("pgtwo", postgres_url)
    trials = study.trials
    assert [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)] == []
    assert used_budget(trials) == 12, "the two drivers together used more or less than the budget"
    killed = [t for t in trials if t.user_attrs.get("fail_reason") == STALE]
    assert [t.user_attrs["worker"]["dir"] for t in killed] == [str(out_a)], "A's running trial failed once, as stale"
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed[0].number]
    assert [(t.state, t.user_attrs["worker"]["dir"]) for t in retry] == [(TrialState.COMPLETE, str(out_b))]
    assert {t.user_attrs["worker"]["dir"] for t in trials if t.state == TrialState.COMPLETE} == {str(out_a), str(out_b)}

    seeds = journal_seed_ids(study)
    ids_b = store_ids(out_b)
    assert len(ids_b) == len(set(ids_b)) and set(ids_b) == seeds, "B's store holds every seed of the study once"

    rerun = subprocess.run(driver(out_a), env=env, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert len(_study("pgtwo", postgres_url).trials) == len(trials), "the rerun of A trained more trials"
    ids_a = store_ids(out_a)
    assert len(ids_a) == len(set(ids_a)) and set(ids_a) == seeds, "A's store caught up with the study"
    _no_password([out1, err1, out2, err2, rerun.stdout, rerun.stderr], out_a, out_b)


def test_the_password_can_come_from_pgpassword_and_is_never_written(tmp_path, postgres_url):  # noqa: F811
    bare = postgres_url.replace(f":{PASSWORD}@", "@")
    assert PASSWORD not in bare
    spec = tiny_search(tmp_path, name="pgenv", seeds=2, n_trials=2, steps=40, width=16)
    out = tmp_path / "out"
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    env.pop("DROPOUT_BENCH_STORAGE", None)
    run = subprocess.run([*CLI, "search", str(spec), "--out", str(out), "--storage", bare, "--no-confirm"],
                         env=env, capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    assert len(_study("pgenv", postgres_url).trials) == 2
    env.pop("PGPASSWORD")
    refused = subprocess.run([*CLI, "search", str(spec), "--out", str(tmp_path / "other"), "--storage", bare],
                             env=env, capture_output=True, timeout=300)
    assert refused.returncode == 2 and b"cannot open" in refused.stderr, "without a password the server says no"
    _no_password([run.stdout, run.stderr, refused.stdout, refused.stderr], out)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")
def test_a_trial_is_stale_by_its_own_workers_heartbeat_not_the_readers(postgres_url):  # noqa: F811
    """Drivers started with different --heartbeat must not fail each other's live trials."""
    import optuna
    from pathlib import Path

    from sweeps.search._liveness import dead_trials, identify
    from sweeps.search._backends import open_storage

    def worker_study(heartbeat):
        return optuna.load_study(study_name="beats", storage=open_storage(".", postgres_url, heartbeat))

    optuna.create_study(study_name="beats", storage=open_storage(".", postgres_url, 1))
    fast, slow = worker_study(1), worker_study(30)
    t_fast, t_slow = fast.ask(), slow.ask()
    identify(t_fast, Path("a"))
    identify(t_slow, Path("b"))
    reader = worker_study(1)      # a driver started with --heartbeat 1 looks at both

    def dead() -> list[int]:
        return [t.number for t in dead_trials(reader, reader.get_trials(deepcopy=False), Path("c"),
                                              dead_pids=set())]

    # Neither trial beats again. By the server's clock the fast one is stale 3 beats of 1 s
    # after its heartbeat, the slow one only after 3 beats of 30 s: wait until the reader
    # sees the fast one dead (a minute at most, well inside the slow one's 90 s), and the
    # slow one must not be dead then, nor ever before.
    seen: list[list[int]] = []

    def fast_is_dead() -> bool:
        seen.append(dead())
        return t_fast.number in seen[-1]

    wait_until(fast_is_dead, 60, poll=0.1)
    assert seen[-1] == [t_fast.number], "the fast worker's trial never went stale"
    assert all(t_slow.number not in d for d in seen)
