"""Crash safety with real processes and real signals.

A sweep driver killed with SIGKILL at random moments (its whole process group, workers
included, as a power cut would) and rerun must end with exactly the expected trials,
no duplicates, nothing lost, and per-trial numbers identical to an uninterrupted run.

Every kill waits for a condition (the folder taken, rows stored, a worker started), then
at most a random fraction of a pace measured in the same test: never a fixed number of
seconds, which would assume a machine's speed. The work comes in many small units (many
commit points), so that the tests stay interruptible on a much faster machine; run them
with DROPOUT_BENCH_TEST_WORK_SCALE=0.1 to see (see tests/sweep_helpers.py).
"""
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sweeps import run_sweep, trial_id
from sweeps.spec import load_spec
from tests.sweep_helpers import (
    POLL, attempts, kill_group as _kill_group, row_count, science, stored_rows, tiny_spec, wait_until, work,
)

pytestmark = pytest.mark.slow

# (plain + 3 rates) x 2 training-set sizes per seed: two families of 4 arms make one
# work unit of 8 arms (sweeps.execute.UNIT_ARMS), 6 trials: as many units as seeds.
GRID = {"dropout": [0.2, 0.5, 0.8], "n_train": [8, 16]}
ROWS_PER_UNIT = 6
GROUPS_OF_4 = ("--group-size", "4")   # the killed runs' stacking; the final run's is the default


def _start(spec: Path, out: Path, n_jobs: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out), "--n-jobs", str(n_jobs),
         "--no-report", "--quiet", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


@dataclass
class Pace:
    """How an uninterrupted run went on this machine, now: what random delays are fractions of."""
    start_seconds: float        # from the folder's lock file appearing to the first stored row
    unit_seconds: float         # one worker's time for one work unit


def _uninterrupted(spec: Path, out: Path, n_jobs: int, *extra: str) -> Pace:
    """Run the sweep through the CLI without interruption, noting when its lock and its rows appeared."""
    proc = _start(spec, out, n_jobs, *extra)
    try:
        lock_at, commits, last = None, [], 0
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            now = time.monotonic()
            if lock_at is None and (out / ".lock").exists():
                lock_at = now
            rows = stored_rows(out)
            if rows != last:
                commits.append((now, rows))
                last = rows
            time.sleep(POLL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 0, err.decode()
    assert lock_at is not None and len(commits) >= 2, "the uninterrupted run was not seen working"
    (t0, rows0), (t1, rows1) = commits[0], commits[-1]
    return Pace(start_seconds=t0 - lock_at,
                unit_seconds=(t1 - t0) / (rows1 - rows0) * ROWS_PER_UNIT * n_jobs)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path, n_jobs):
    # 48 units of 6 trials: five kills, each after at most a few units, leave most of the work
    spec = tiny_spec(tmp_path, seeds=48, steps=work(300), width=64, grid=GRID)
    expected_ids = {trial_id(c) for c in load_spec(spec).configs()}
    reference = tmp_path / "reference"
    pace = _uninterrupted(spec, reference, n_jobs, *GROUPS_OF_4)
    assert row_count(reference) == len(expected_ids)

    out = tmp_path / "killed"
    rng = random.Random(1234 + n_jobs)
    kills = 0
    for attempt in range(5):
        before = stored_rows(out)
        proc = _start(spec, out, n_jobs, *GROUPS_OF_4)
        try:
            if attempt == 0:
                # during start-up, before any result: once the driver has taken the folder, a
                # random part of the time an uninterrupted run then took to store its first rows
                assert wait_until(lambda: (out / ".lock").exists(), 120, proc), "the driver never took the folder"
                wait_until(lambda: stored_rows(out) > 0, rng.uniform(0.0, 1.0) * pace.start_seconds, proc)
            else:
                # during training and writing: once this run has stored rows, a random part of
                # two units' time, and at once if it stored more than a few units meanwhile
                assert wait_until(lambda: stored_rows(out) > before, 120, proc), "the rerun stored nothing"
                first = stored_rows(out)
                wait_until(lambda: stored_rows(out) >= first + 2 * n_jobs * ROWS_PER_UNIT,
                           rng.uniform(0.0, 2.0) * pace.unit_seconds, proc)
            if proc.poll() is not None:
                break
            _kill_group(proc)
            kills += 1
        finally:
            if proc.poll() is None:
                _kill_group(proc)
        stored = science(out) if (out / "store.sqlite").exists() else {}
        assert set(stored) <= expected_ids           # never a trial that should not be there
    assert kills >= 4, "the sweep finished before it could be killed four times; make it longer"

    final = subprocess.run([sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out),
                            "--n-jobs", str(n_jobs), "--no-report", "--quiet"],
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert row_count(out) == len(expected_ids)
    assert science(out) == science(reference)


def _loky_workers(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and "loky" in cmdline and "resource_tracker" not in cmdline:
            pids.append(int(entry.name))
    return pids


def test_a_killed_worker_does_not_stop_the_sweep(tmp_path):
    # plain + 2 rates x 2 sizes per seed: two families of 3 arms per unit, 4 trials; 24 units
    spec = tiny_spec(tmp_path, seeds=24, steps=work(200), width=48,
                     grid={"dropout": [0.2, 0.5], "n_train": [8, 16]})
    total = 24 * 4
    out = tmp_path / "out"
    proc = _start(spec, out, n_jobs=2)
    try:
        workers: list[int] = []

        def two_workers() -> bool:
            workers[:] = _loky_workers(proc.pid)
            return len(workers) >= 2

        assert wait_until(two_workers, 120, proc), "no worker processes appeared"
        # once the first unit is stored, both workers hold units (joblib hands out more
        # than there are workers) and almost all the work remains: kill one of them
        assert wait_until(lambda: stored_rows(out) > 0, 120, proc), "nothing was stored"
        stored = stored_rows(out)
        assert proc.poll() is None and stored <= total // 2, "the sweep was nearly done before the kill"
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 0, err.decode()
    assert row_count(out) == total
    assert max(attempts(out)) > 1, "no unit was rerun: the worker did not die holding work"
    reference = tmp_path / "reference"
    run_sweep(spec, out_dir=reference, workers=1, progress=False)
    assert science(out) == science(reference)


def test_ctrl_c_stops_cleanly_keeps_finished_trials_and_says_how_to_resume(tmp_path):
    """SIGINT to the whole foreground group, as a terminal's Ctrl-C sends it."""
    spec = tiny_spec(tmp_path, seeds=24, steps=work(300), width=64, grid=GRID)
    total = 24 * ROWS_PER_UNIT
    out = tmp_path / "out"
    proc = _start(spec, out, n_jobs=2)
    try:
        # the first unit is stored, 23 are not: Ctrl-C in the middle of the sweep
        assert wait_until(lambda: stored_rows(out) > 0, 120, proc), "nothing was stored"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Resume with:" in err and f"--out {out}" in err
    stored = row_count(out)
    assert 0 < stored < total
    resumed = run_sweep(spec, out_dir=out, workers=1, progress=False)
    assert resumed.skipped == stored and row_count(out) == total
