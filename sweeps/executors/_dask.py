"""Run work units on a Dask cluster: the cluster schedules, the driver alone writes the store.

Workers need only the installed package; units and outcomes travel as plain data.
Dask reschedules the units of a lost worker on the others; a unit that keeps killing
workers comes back as ``KilledWorker`` and is recorded as failed. Requires the
``distributed`` extra: ``pip install 'dropout-bench[distributed]'``.
"""
from __future__ import annotations

import uuid
from typing import Callable, Sequence

from bench import ConfigError

from ..execute import Outcome, UnitDone, WorkUnit, run_unit


class DaskExecutor:
    local = False   # workers on other machines: their clocks are not the driver's

    def __init__(self, scheduler: str, engine: str = "auto", group_size: int | None = None,
                 threads: int = 1, timeout: float = 10, *, work: Callable[..., list[Outcome]] = run_unit) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--backend dask needs the 'distributed' package: "
                              "pip install 'dropout-bench[distributed]'") from None
        try:
            self.client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        self.engine, self.group_size, self.threads, self.work = engine, group_size, threads, work
        self.n_workers = max(1, sum(w.get("nthreads", 1)
                                    for w in self.client.scheduler_info()["workers"].values()))

    def run(self, units: Sequence[WorkUnit], on_done: UnitDone) -> None:
        from distributed import as_completed

        run_id = uuid.uuid4().hex[:8]  # keys unique per run: a resumed sweep never reuses old results
        futures = {
            self.client.submit(self.work, u.cfgs, self.engine, self.group_size, self.threads,
                               key=f"dropout-bench-{run_id}-{u.index}", pure=False): u
            for u in units
        }
        try:
            for fut in as_completed(futures):
                unit = futures[fut]
                try:
                    outcomes = fut.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, lost data, ...
                    msg = f"{type(exc).__name__}: {exc}"[:300]
                    outcomes = [Outcome("failed", None, msg, 0.0) for _ in unit.cfgs]
                on_done(unit, outcomes, 1)
        finally:
            self.client.cancel(list(futures))
            self.close()

    def close(self) -> None:
        self.client.close()
