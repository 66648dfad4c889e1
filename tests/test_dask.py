"""A sweep on a real Dask cluster on loopback: a scheduler and two worker processes.

The worker is lost at a condition (rows stored, most units not), never after a sleep;
DROPOUT_BENCH_TEST_WORK_SCALE scales the training steps (see tests/sweep_helpers.py).
"""
import os
import signal
import socket
import subprocess
import sys

import pytest

from sweeps import run_sweep
from tests.sweep_helpers import kill_group, row_count, science, stored_rows, tiny_spec, wait_until, work

distributed = pytest.importorskip("distributed", reason="dask.distributed not installed "
                                  "(pip install 'dropout-bench[distributed]')")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture
def cluster():
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_spawn("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                    "--no-dashboard")]
    workers = [_spawn("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                      "--no-dashboard", "--host", "127.0.0.1") for _ in range(2)]
    procs += workers
    try:
        client = distributed.Client(address, timeout=60)
        client.wait_for_workers(2, timeout=90)
        client.close()
        yield address, workers
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=60)


def test_dask_sweep_survives_a_lost_worker_and_equals_the_local_run(tmp_path, cluster):
    address, workers = cluster
    # 24 units of 6 trials (two families of plain + 3 rates each): many commit points
    spec = tiny_spec(tmp_path, seeds=24, steps=work(300), width=64,
                     grid={"dropout": [0.2, 0.5, 0.8], "n_train": [8, 16]})
    total = 24 * 6
    out = tmp_path / "dask"
    proc = subprocess.Popen([sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out),
                             "--backend", "dask", "--scheduler", address, "--group-size", "4",
                             "--no-report", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        # the first unit is stored and most are not: both workers hold units; lose one mid-run
        assert wait_until(lambda: stored_rows(out) > 0, 120, proc), "nothing was stored"
        assert proc.poll() is None and stored_rows(out) <= total // 2, "the sweep was nearly done before the kill"
        os.killpg(workers[0].pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode == 0, err.decode()
    assert row_count(out) == total
    local = tmp_path / "local"
    run_sweep(spec, out_dir=local, workers=1, progress=False)
    assert science(out) == science(local)


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    spec = tiny_spec(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(tmp_path / "o"),
                           "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{_free_port()}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot connect" in proc.stderr
    assert not (tmp_path / "o").exists()
