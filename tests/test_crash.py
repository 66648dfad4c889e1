"""Crash safety with real processes and real signals.

A sweep driver killed with SIGKILL at random moments (its whole process group, workers
included, as a power cut would) and rerun must end with exactly the expected trials,
no duplicates, nothing lost, and per-trial numbers identical to an uninterrupted run.
"""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps import run_sweep, trial_id
from sweeps.spec import load_spec
from tests.sweep_helpers import kill_group as _kill_group, row_count, science, tiny_spec

pytestmark = pytest.mark.slow


def _start(spec: Path, out: Path, n_jobs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out), "--n-jobs", str(n_jobs),
         "--no-report", "--quiet", "--group-size", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path, n_jobs):
    # 20 families of 4 arms (plain + 3 rates), 2 families per work unit: 10 units
    spec = tiny_spec(tmp_path, seeds=10, steps=300, width=64,
                     grid={"dropout": [0.2, 0.5, 0.8], "n_train": [8, 16]})
    expected_ids = {trial_id(c) for c in load_spec(spec).configs()}
    reference = tmp_path / "reference"
    run_sweep(spec, out_dir=reference, n_jobs=1, progress=False, report=False)

    out = tmp_path / "killed"
    rng = random.Random(1234 + n_jobs)
    kills = 0
    for attempt in range(6):
        before = row_count(out) if (out / "store.sqlite").exists() else 0
        proc = _start(spec, out, n_jobs)
        if attempt == 0:
            time.sleep(rng.uniform(0.5, 3.0))        # during start-up, before any result
        else:                                        # during training and writing: after progress
            _wait_for_rows(out, before, proc)
            time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is not None:
            break
        _kill_group(proc)
        kills += 1
        stored = science(out) if (out / "store.sqlite").exists() else {}
        assert set(stored) <= expected_ids           # never a trial that should not be there
    assert kills >= 4, "the sweep finished before it could be killed four times; make it longer"

    final = subprocess.run([sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out),
                            "--n-jobs", str(n_jobs), "--no-report", "--quiet"],
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert row_count(out) == len(expected_ids)
    assert science(out) == science(reference)


def _wait_for_rows(out: Path, before: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (out / "store.sqlite").exists() and row_count(out) > before:
            return
        time.sleep(0.05)


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
    spec = tiny_spec(tmp_path, seeds=6, steps=200, width=48,
                     grid={"dropout": [0.2, 0.5], "n_train": [8, 16]})
    out = tmp_path / "out"
    proc = _start(spec, out, n_jobs=2)
    try:
        deadline = time.time() + 60
        workers: list[int] = []
        while time.time() < deadline and not workers:
            time.sleep(0.2)
            workers = _loky_workers(proc.pid)
        assert workers, "no worker process appeared"
        time.sleep(1.5)
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    assert proc.returncode == 0, err.decode()
    reference = tmp_path / "reference"
    run_sweep(spec, out_dir=reference, n_jobs=1, progress=False, report=False)
    assert science(out) == science(reference)


def test_ctrl_c_stops_cleanly_keeps_finished_trials_and_says_how_to_resume(tmp_path):
    """SIGINT to the whole foreground group, as a terminal's Ctrl-C sends it."""
    spec = tiny_spec(tmp_path, seeds=6, steps=300, width=64,
                     grid={"dropout": [0.2, 0.5, 0.8], "n_train": [8, 16]})
    out = tmp_path / "out"
    proc = _start(spec, out, n_jobs=2)
    try:
        _wait_for_rows(out, 0, proc)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Resume with:" in err and f"--out {out}" in err
    stored = row_count(out)
    assert 0 < stored < 36
    resumed = run_sweep(spec, out_dir=out, n_jobs=1, progress=False, report=False)
    assert resumed.skipped == stored and row_count(out) == 36
