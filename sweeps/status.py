"""Progress of a running or stopped sweep, read from its store alone."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import spec_from_dict
from .store import Store, folder_in_use


@dataclass
class SweepStatus:
    out_dir: str
    name: str
    total: int
    counts: dict[str, int]
    running: bool                  # a driver holds the folder's lock
    rate_per_second: float | None  # trials stored per second in the latest run
    eta_seconds: float | None
    failures: list[tuple[str, str]]   # (trial label, error), first few

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def text(self) -> str:
        pct = 100 * self.done / self.total if self.total else 100.0
        state = "running" if self.running else ("finished" if self.done >= self.total else "stopped")
        lines = [f"{self.name} ({self.out_dir}): {state}, {self.done}/{self.total} trials ({pct:.1f}%)",
                 "  " + ", ".join(f"{k} {self.counts.get(k, 0)}" for k in ("ok", "diverged", "failed"))]
        if self.rate_per_second:
            lines.append(f"  latest run: {self.rate_per_second * 60:.1f} trials/min")
        if self.eta_seconds is not None and self.done < self.total:
            lines.append(f"  remaining: {self.total - self.done} trials, ETA {_duration(self.eta_seconds)}"
                         + ("" if self.running else " once resumed"))
        for label, err in self.failures:
            lines.append(f"  failed: {label}: {err}")
        if not self.running and self.done < self.total:
            lines.append(f"  resume: dropout-bench sweep <spec> --out {self.out_dir}")
        return "\n".join(lines)


def sweep_status(out_dir: str | Path, max_failures: int = 5) -> SweepStatus:
    out_dir = Path(out_dir)
    with Store.open(out_dir, readonly=True) as store:
        meta = store.meta()
        spec_dict = json.loads(meta["spec"])
        spec = spec_from_dict({k: v for k, v in spec_dict.items() if v not in ("", {})}, source=str(out_dir))
        total = len(spec.configs())
        counts: dict[str, int] = {}
        for st in store.statuses().values():
            counts[st] = counts.get(st, 0) + 1
        failures = [(_label(r["config"]), (r["error"] or "")[:160])
                    for r in store.records(status=["failed"])][:max_failures]
        runs = store.runs()
        rate = _latest_rate(store, runs)
    running = folder_in_use(out_dir)
    remaining = max(0, total - sum(counts.values()))
    eta = remaining / rate if rate else None
    return SweepStatus(str(out_dir), meta.get("name", "?"), total, counts, running, rate, eta, failures)


def _latest_rate(store: Store, runs: list[dict[str, Any]]) -> float | None:
    if not runs:
        return None
    run = runs[-1]
    rows = store.conn.execute("SELECT COUNT(*), MAX(finished_at) FROM trials WHERE run_id = ?",
                              (run["id"],)).fetchone()
    n, last = rows
    if not n or not last:
        return None
    elapsed = _parse(last) - _parse(run["started_at"])
    return n / elapsed if elapsed > 0 else None


def _parse(stamp: str) -> float:
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))


def _label(config: dict[str, Any]) -> str:
    return f"seed {config.get('seed')}, dropout {config.get('dropout')}, width {config.get('width')}, n_train {config.get('n_train')}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
