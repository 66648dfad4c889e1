"""Searches under real kills and real parallel workers.

A search killed with SIGKILL (its whole process group, as a power cut would) at moments
when trials are running, then rerun, must use exactly its budget with no trial left
RUNNING or WAITING, every seed that any trial finished in the store once, and every
complete trial's seeds stored. Two workers on the journal must do the same without errors.
"""
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep_helpers import kill_group as _kill_group
from search_helpers import CLI, TINY_SPACE, journal_seed_ids, journal_study, store_ids, tiny_search
from sweeps.identity import trial_id
from sweeps.search import load_search_spec, run_search
from sweeps.search._study import STALE, used_budget

pytestmark = pytest.mark.slow


def _journal_count(out: Path, text: str) -> int:
    path = out / "optuna.journal"
    return path.read_text().count(text) if path.exists() else 0


def _seed_writes(out: Path) -> int:
    return _journal_count(out, '"result_seed_')


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


def test_sigkill_mid_search_then_rerun_uses_the_budget_and_loses_nothing(tmp_path):
    spec = tiny_search(tmp_path, seeds=3, n_trials=8, steps=600, width=32)
    out = tmp_path / "out"
    rng = random.Random(20261127)
    kills = 0
    for attempt in range(2):
        seeds_before = _seed_writes(out)
        proc = subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--quiet", "--no-report"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        # after this run has finished a trial, and the next one has started: kill it while it trains
        while proc.poll() is None and _seed_writes(out) <= seeds_before and time.time() < deadline:
            time.sleep(0.02)
        started = _journal_count(out, '"worker"')
        while proc.poll() is None and _journal_count(out, '"worker"') <= started and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.15))
        if proc.poll() is not None:
            break
        _kill_group(proc)
        kills += 1
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


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_two_workers_on_the_journal_complete_a_study_without_errors_or_duplicates(tmp_path, sampler):
    spec = tiny_search(tmp_path, seeds=3, n_trials=10, steps=400, width=16, sampler=sampler)
    out = tmp_path / "out"
    summary = run_search(spec, out_dir=out, workers=2, progress=False, report=False)
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
    spec = tiny_search(tmp_path, seeds=3, n_trials=5, steps=400, width=32)
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--quiet", "--no-report",
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        victim = None
        while victim is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if _seed_writes(out):
                victim = _running_worker(out)
        assert victim, "no worker was seen running a trial"
        os.kill(victim, sig)
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


def _running_worker(out: Path) -> int | None:
    study = journal_study(out, "tiny")
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("worker", {}).get("pid")
        # training, not just asked: a trial stopped before its parameters are drawn is not retried
        if pid and set(t.params) == set(TINY_SPACE):
            return pid
    return None


def test_ctrl_c_stops_cleanly_prints_how_to_resume_and_the_rerun_finishes(tmp_path):
    spec = tiny_search(tmp_path, seeds=3, n_trials=6, steps=400, width=32)
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 120
        while proc.poll() is None and not _seed_writes(out) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)            # what a terminal's Ctrl-C sends
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
