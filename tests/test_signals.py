"""Stopping on any signal, with real processes and real signals.

SIGTERM (what ``timeout``, systemd, Slurm and Kubernetes send first) and SIGHUP stop a
sweep or a search as Ctrl-C does: exit 128 + the signal's number, the resume command
printed, nothing stored lost, no leaked-resource warnings, and the resumed run equals an
uninterrupted one. A driver SIGKILLed alone takes its worker processes with it.
Every wait is on a condition (rows stored, seeds written), bounded by a deadline; the
workloads scale with DROPOUT_BENCH_TEST_WORK_SCALE (see sweep_helpers.work).
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from search_helpers import CLI, journal_study, store_ids, tiny_search
from sweep_helpers import kill_group, row_count, science, stored_rows, tiny_spec, wait_until, work
from sweeps import run_sweep

pytestmark = pytest.mark.slow

SWEEP_GRID = {"dropout": [0.2, 0.5, 0.8], "n_train": [8, 16]}
N_SEARCH_TRIALS = 80


def _sweep(spec: Path, out: Path, n_jobs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out), "--n-jobs", str(n_jobs),
         "--no-report", "--quiet", "--group-size", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _search(spec: Path, out: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "search", str(spec), "--out", str(out), "--workers", str(workers),
                             "--quiet", "--no-report"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_until(condition, proc: subprocess.Popen) -> None:
    assert wait_until(condition, 120, proc), (
        "the run ended before the condition held; make it longer" if proc.poll() is not None
        else "the condition never held")


def _spawned_workers(pid: int) -> int:
    """Search worker processes of driver ``pid`` that exist, started or still starting."""
    n = 0
    for child in _descendants(pid):
        try:
            n += b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
    return n


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _gone_soon(pids: set[int], within: float) -> set[int]:
    """Those of ``pids`` still alive after waiting up to ``within`` seconds for them to exit."""
    deadline = time.monotonic() + within
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":                               # a zombie has exited; only its reaping is left
            alive.add(pid)
    return alive


@pytest.mark.parametrize("signum, n_jobs", [(signal.SIGTERM, 1), (signal.SIGTERM, 2), (signal.SIGHUP, 2)])
def test_a_signal_stops_a_sweep_like_ctrl_c_and_the_resumed_run_equals_a_clean_one(tmp_path, signum, n_jobs):
    # 30 seeds x 2 sample counts = 60 families of 4 arms, 2 families per unit: 30 units
    spec = tiny_spec(tmp_path, seeds=30, steps=work(400), width=64, grid=SWEEP_GRID)
    out = tmp_path / "out"
    proc = _sweep(spec, out, n_jobs)
    try:
        _wait_until(lambda: stored_rows(out) > 0, proc)      # training and storing: the first unit is in
        workers = _descendants(proc.pid)
        os.kill(proc.pid, signum)                      # the driver alone, as `timeout` or a scheduler does
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    err = stderr.decode()
    assert proc.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert "Resume with:" in err and f"--out {out}" in err
    assert "leaked" not in err and "Traceback" not in err, err
    assert not _gone_soon(workers, within=10), "worker processes outlived the stopped driver"
    stored = row_count(out)
    assert 0 < stored < 180, "the signal should have landed mid-sweep"

    resumed = run_sweep(spec, out_dir=out, workers=1, progress=False)
    assert resumed.skipped == stored and row_count(out) == 180
    reference = tmp_path / "reference"
    run_sweep(spec, out_dir=reference, workers=1, progress=False)
    assert science(out) == science(reference)


def test_a_second_signal_stops_at_once():
    """The first signal starts a clean stop; a second one while stopping exits with 128 + its number."""
    code = (
        "import os, signal, time\n"
        "from sweeps.signals import Stopped, stop_on_signals\n"
        "with stop_on_signals():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(60)\n"
        "    except Stopped as exc:\n"
        "        print('stopping on', exc.signum, flush=True)\n"
        "        os.kill(os.getpid(), signal.SIGHUP)\n"
        "        time.sleep(60)\n"
        "        print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP, proc.stderr
    assert proc.stdout.split("\n")[0] == f"stopping on {int(signal.SIGTERM)}"
    assert "not reached" not in proc.stdout


@pytest.mark.parametrize("moment", ["workers-starting", "seeds-written"])
def test_sigterm_stops_a_search_and_the_rerun_finishes_it_exactly(tmp_path, moment):
    # a budget of many short trials: after the first seed is written most of it is left
    spec = tiny_search(tmp_path, seeds=3, n_trials=N_SEARCH_TRIALS, steps=work(600), width=64)
    out = tmp_path / "out"
    proc = _search(spec, out, workers=2)
    journal = out / "optuna.journal"
    try:
        if moment == "workers-starting":     # both worker processes exist, neither has trained yet
            _wait_until(lambda: _spawned_workers(proc.pid) >= 2, proc)
        else:                                # a seed is written: trials run, the study is mid-budget
            _wait_until(lambda: journal.exists() and '"result_seed_' in journal.read_text(), proc)
        workers = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    err = stderr.decode()
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "Resume with:" in err and f"--out {out}" in err
    assert "leaked" not in err and "Traceback" not in err, err
    assert not _gone_soon(workers, within=10), "worker processes outlived the stopped driver"
    study = journal_study(out, "tiny")
    assert TrialState.RUNNING not in [t.state for t in study.trials]    # the driver failed its in-flight trials
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) < N_SEARCH_TRIALS / 2

    rerun = subprocess.run([*CLI, "search", str(spec), "--out", str(out), "--workers", "2", "--quiet",
                            "--no-report"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trials = journal_study(out, "tiny").trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == N_SEARCH_TRIALS
    assert TrialState.RUNNING not in [t.state for t in trials]
    ids = store_ids(out)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("command", ["sweep", "search"])
def test_workers_end_when_their_driver_is_killed_alone(tmp_path, command):
    """SIGKILL to the driver only (the OOM killer, kill -9): its workers are gone within 15 s."""
    out = tmp_path / "out"
    if command == "sweep":
        proc = _sweep(tiny_spec(tmp_path, seeds=30, steps=work(400), width=64, grid=SWEEP_GRID), out, 2)
        started = lambda: stored_rows(out) > 0                                       # noqa: E731
    else:
        # a budget the workers could not use up in 15 s on any machine: they must stop because
        # their driver died, not because the study is done
        proc = _search(tiny_search(tmp_path, seeds=3, n_trials=100_000, steps=work(600), width=32), out, 2)
        journal = out / "optuna.journal"
        started = lambda: journal.exists() and '"result_seed_' in journal.read_text()  # noqa: E731
    try:
        _wait_until(started, proc)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, "no worker processes to watch"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left = _gone_soon(workers, within=15)
    finally:
        kill_group(proc)                               # whatever is left, so the test leaves nothing behind
    assert not left, f"worker processes {sorted(left)} outlived their driver by 15 s"
