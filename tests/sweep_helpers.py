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
    proc.wait()
