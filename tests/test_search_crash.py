"""Searches under real kills and real parallel workers.

A search killed with SIGKILL (its whole process group, as a power cut would) at moments
when trials are running, then rerun, must use exactly its budget with no trial left
RUNNING or WAITING, every seed that any trial finished in the store once, and every
complete trial's seeds stored. Two workers on the journal must do the same without errors.

Kills and interrupts wait for a condition read from the journal (a trial finished, another
training), then a random part of a trial's training time measured in the same run; the
process is stopped (SIGSTOP) while the condition is checked once more and the signal sent,
so the signal lands in training on any machine. DROPOUT_BENCH_TEST_WORK_SCALE scales the
training steps (see tests/sweep_helpers.py).
"""
import fcntl
import os
import random
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep_helpers import POLL, freeze, kill_group as _kill_group, wait_until, work
from search_helpers import (
    CLI, TINY_SPACE, JournalWatch, journal_seed_ids, journal_study, store_ids, tiny_search,
)
from sweeps.identity import trial_id
from sweeps.search import load_search_spec, run_search
from sweeps.search._backends import ASK_LOCK, JOURNAL_FILE
from sweeps.search._study import STALE, used_budget

pytestmark = pytest.mark.slow


def check_complete_and_exact(spec_path: Path, out: Path) -> None:
    """Budget used exactly, nothing RUNNING or WAITING, every finished seed stored once, nothing else."""
    spec = load_search_spec(spec_path)
    study = journal_study(out, spec.name)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert used_budget(trials) == spec.n_trials
    assert sum(s == TrialState.COMPLETE for s in states) == spec.n_trials
    ids = store_ids(out)
    assert len(ids) == len(set(ids)), "a seed stored twice"
    assert journal_seed_ids(study) <= set(ids), "a finished seed missing from the store"
    assert len(ids) == len(journal_seed_ids(study))
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert {trial_id(spec.config(t.params, s)) for s in spec.seeds} <= set(ids)
            assert t.user_attrs["n_seeds"] == len(spec.seeds)


def _hit_while_training(proc: subprocess.Popen, watch: JournalWatch, rng: random.Random, hit,
                       *, group: bool, timeout: float = 120) -> dict | None:
    """Wait for a trial to train, then a random part of a trial's training time (as measured
    in this run); stop the process (``group``: the whole group, else the trial's worker) and,
    if that trial is still training, ``hit(trial)`` while nothing moves. Returns the trial hit,
    or None if the process ended or ``timeout`` passed first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not wait_until(lambda: watch.update().training(), deadline - time.monotonic(), proc):
            return None
        trial = rng.choice(watch.training())
        pace = watch.train_seconds() or 0.0

        def finished() -> bool:
            watch.update()
            return bool(trial["seeds"]) or trial["state"] != watch.RUNNING

        wait_until(finished, rng.uniform(0.0, 0.5) * pace, proc)
        with freeze(proc.pid if group else trial["pid"], group=group) as frozen:
            if frozen and any(t is trial for t in watch.update().training()):
                hit(trial)
                return trial
    return None


def test_sigkill_mid_search_then_rerun_uses_the_budget_and_loses_nothing(tmp_path):
    spec = tiny_search(tmp_path, seeds=3, n_trials=8, steps=work(2000), width=64)
    out = tmp_path / "out"
    rng = random.Random(20261127)
    watch = JournalWatch(out)
    kills = 0
    for attempt in range(2):
        seeds_before = watch.update().seed_writes
        proc = subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--quiet", "--no-report"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # after this run has finished a trial, and the next one has started: kill it while it trains
            assert wait_until(lambda: watch.update().seed_writes > seeds_before, 120, proc), "no trial finished"
            if _hit_while_training(proc, watch, rng, lambda trial: _kill_group(proc), group=True) is None:
                break
            kills += 1
        finally:
            if proc.poll() is None:
                _kill_group(proc)
    assert kills == 2, "the search finished before it could be killed twice; make it longer"
    study = journal_study(out, "tiny")
    stale_before = [t for t in study.trials if t.state == TrialState.RUNNING]

    final = subprocess.run([*CLI, "search", str(spec), "--out", str(out), "--quiet", "--no-report"],
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    check_complete_and_exact(spec, out)
    study = journal_study(out, "tiny")
    stale = [t for t in study.trials if t.user_attrs.get("fail_reason") == STALE]
    assert stale and len(stale) >= len(stale_before)            # the kills left trials running
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    # each was queued again and run; one killed before its parameters were all drawn
    # evaluated nothing and is, by design, not retried (its budget was never used)
    drawn = {t.number for t in stale if set(t.params) == set(TINY_SPACE)}
    assert drawn and drawn <= retried


def _holds_no_lock(out: Path) -> bool:
    """Is the study's ask lock free, and the journal's write lock? (Each taken for an instant.)"""
    for path in (out / ASK_LOCK, out / f"{JOURNAL_FILE}.flock"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)             # closing releases it
    return True


@contextmanager
def _each_worker_takes_a_trial(out: Path, timeout: float = 120):
    """While the block runs: a worker that trains before the other has taken any trial is held
    (SIGSTOP, at a moment it holds no lock) until the other has taken one.

    Two workers start together, but one may be ready long after the other (a busy machine);
    with small trials the first would use the whole budget alone. Held, it cannot.
    """
    done = threading.Event()

    def hold() -> None:
        watch = JournalWatch(out)
        deadline = time.monotonic() + timeout

        def both() -> bool:
            return len({t["pid"] for t in watch.update().trials if t["pid"]}) >= 2

        while not done.is_set() and time.monotonic() < deadline and not both():
            training = watch.training()
            if training:
                trial = training[0]
                with freeze(trial["pid"]) as frozen:
                    if frozen and any(t is trial for t in watch.update().training()) and _holds_no_lock(out):
                        while not done.is_set() and time.monotonic() < deadline and not both():
                            time.sleep(POLL)
                        return
            time.sleep(POLL)

    thread = threading.Thread(target=hold, name="hold-first-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=60)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_two_workers_on_the_journal_complete_a_study_without_errors_or_duplicates(tmp_path, sampler):
    spec = tiny_search(tmp_path, seeds=3, n_trials=10, steps=work(400), width=16, sampler=sampler)
    out = tmp_path / "out"
    with _each_worker_takes_a_trial(out):
        summary = run_search(spec, out_dir=out, workers=2, progress=False)
    assert summary.worker_deaths == 0 and not summary.incomplete and not summary.interrupted
    check_complete_and_exact(spec, out)
    study = journal_study(out, "tiny")
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["worker"]["pid"] for t in study.trials}) == 2, "both workers took trials"
    proposed = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(proposed)) == len(proposed), "two workers proposed the same configuration"


@pytest.mark.parametrize("sig, reason", [(signal.SIGKILL, STALE), (signal.SIGINT, "interrupted")],
                         ids=["SIGKILL", "SIGINT"])
def test_a_killed_worker_is_replaced_and_its_trial_retried(tmp_path, sig, reason):
    """SIGKILL leaves the trial RUNNING (the driver fails it); SIGINT lets the worker fail it itself."""
    spec = tiny_search(tmp_path, seeds=3, n_trials=5, steps=work(2000), width=64)
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--quiet", "--no-report",
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    watch = JournalWatch(out)
    try:
        # once a trial has finished, a worker training another one: signal that worker then
        assert wait_until(lambda: watch.update().seed_writes > 0, 120, proc), "no trial finished"
        victim = _hit_while_training(proc, watch, random.Random(int(sig)), lambda trial: os.kill(trial["pid"], sig),
                                     group=False)
        assert victim, "no worker was seen running a trial"
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 0, err.decode()
    check_complete_and_exact(spec, out)
    study = journal_study(out, "tiny")
    stopped = [t for t in study.trials if t.user_attrs.get("fail_reason") == reason]
    assert len(stopped) == 1, [(t.number, t.state, t.user_attrs.get("fail_reason")) for t in study.trials]
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == stopped[0].number]
    assert [(t.state, t.params) for t in retry] == [(TrialState.COMPLETE, stopped[0].params)], "retried once, same point"


def test_ctrl_c_stops_cleanly_prints_how_to_resume_and_the_rerun_finishes(tmp_path):
    spec = tiny_search(tmp_path, seeds=3, n_trials=6, steps=work(2000), width=64)
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    watch = JournalWatch(out)
    try:
        # once a trial has finished, while the next one trains
        assert wait_until(lambda: watch.update().seed_writes > 0, 120, proc), "no trial finished"
        hit = _hit_while_training(proc, watch, random.Random(6), lambda trial: os.killpg(proc.pid, signal.SIGINT),
                                  group=True)                # what a terminal's Ctrl-C sends
        assert hit, "the search finished before it could be interrupted; make it longer"
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 130, err.decode()
    assert f"dropout-bench search {spec} --out {out}" in err.decode()
    study = journal_study(out, "tiny")
    assert not study.get_trials(states=(TrialState.RUNNING,))   # the interrupted trial was failed, not left
    rerun = subprocess.run([*CLI, "search", str(spec), "--out", str(out), "--quiet", "--no-report"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    check_complete_and_exact(spec, out)
