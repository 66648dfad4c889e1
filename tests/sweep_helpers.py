"""Shared helpers for sweep tests: tiny specs and a comparable view of a store."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

TIMING_KEYS = ("step_seconds_median", "step_seconds_iqr", "group_size", "engine")


def tiny_spec(tmp_path: Path, *, name="tiny", seeds=3, steps=40, width=16, grid=None, extra="") -> Path:
    grid = grid or {"dropout": [0.2, 0.5], "n_train": [8, 12]}
    lines = [f'name = "{name}"', f"seeds = {seeds}", "[base]", f"width = {width}", f"steps = {steps}",
             "eval_every = 10", "[grid]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in grid.items()]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def science(out_dir: Path) -> dict[str, tuple]:
    """trial_id -> (status, metrics and curves without timing) for every stored trial."""
    conn = sqlite3.connect(out_dir / "store.sqlite")
    rows = conn.execute("SELECT trial_id, status, result_json FROM trials").fetchall()
    conn.close()
    out = {}
    for tid, status, res in rows:
        assert tid not in out, "duplicate trial id"
        r = json.loads(res) if res else None
        if r:
            for arm in ("plain", "dropout"):
                for k in TIMING_KEYS:
                    r[arm].pop(k)
            r.pop("env")
        out[tid] = (status, json.dumps(r, sort_keys=True))
    return out


def row_count(out_dir: Path) -> int:
    conn = sqlite3.connect(out_dir / "store.sqlite")
    n = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    conn.close()
    return n


def kill_group(proc) -> None:
    """SIGKILL a process started with start_new_session=True, and all its children, as a power cut would."""
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


# ---- for tests that kill or interrupt real processes -----------------------------------
#
# Such tests kill at a condition (rows stored, a worker started, ...) and never after a
# sleep alone, so that they hold on any machine. DROPOUT_BENCH_TEST_WORK_SCALE (default 1)
# scales their training steps: at 0.1 the work is ten times smaller, as on a machine ten
# times faster, and they must still pass. Only the tests read it.
def work_scale() -> float:
    import os

    text = os.environ.get("DROPOUT_BENCH_TEST_WORK_SCALE", "").strip()
    scale = float(text) if text else 1.0
    if not scale > 0:
        raise ValueError(f"DROPOUT_BENCH_TEST_WORK_SCALE={text!r}: must be a number > 0")
    return scale


def work(steps: int, eval_every: int = 10) -> int:
    """``steps`` times the test work scale, a multiple of ``eval_every``, at least one multiple."""
    return max(eval_every, round(steps * work_scale() / eval_every) * eval_every)


POLL = 0.003   # seconds between looks at a running process's output: a few ms


def wait_until(condition, timeout: float, proc=None, poll: float = POLL) -> bool:
    """Poll ``condition()`` until it is true (True), ``proc`` has exited or ``timeout`` s passed (False)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if (proc is not None and proc.poll() is not None) or time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def stored_rows(out_dir: Path) -> int:
    """Rows in the store; 0 while there is no store yet."""
    return row_count(out_dir) if (out_dir / "store.sqlite").exists() else 0


def attempts(out_dir: Path) -> list[int]:
    """The ``attempts`` column of every stored trial (2 or more: its unit was rerun after a worker died)."""
    conn = sqlite3.connect(out_dir / "store.sqlite")
    out = [r[0] for r in conn.execute("SELECT attempts FROM trials")]
    conn.close()
    return out


def freeze(pid: int, *, group: bool = False, timeout: float = 30):
    """A context manager: SIGSTOP a process (or its whole group) until the block ends, then SIGCONT.

    Inside the block the process is certainly stopped, so what it has written cannot
    change: a test can check a condition and kill it in that same state, with no race.
    """
    import contextlib
    import os
    import signal
    import time

    send = os.killpg if group else os.kill

    def members() -> list[int]:
        if not group:
            return [pid]
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == pid:
                    found.append(int(entry.name))
        return found

    def stopped(p: int) -> bool:
        try:
            return (Path("/proc") / str(p) / "stat").read_text().rsplit(")", 1)[1].split()[0] in "TtZX"
        except OSError:
            return True          # gone

    @contextlib.contextmanager
    def ctx():
        try:
            send(pid, signal.SIGSTOP)
        except ProcessLookupError:
            yield False
            return
        try:
            deadline = time.monotonic() + timeout
            while not all(stopped(p) for p in members()):
                assert time.monotonic() < deadline, f"process {pid} did not stop"
                time.sleep(0.001)
            yield True
        finally:
            try:
                send(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    return ctx()
