"""Executors on this machine: in the driver, or in joblib/loky worker processes.

- ``InProcessExecutor``: runs units in the driver (n_jobs = 1; the debugging path).
- ``ProcessExecutor``: joblib/loky process workers, one torch thread each, results
  streamed back as they finish. A worker that dies (killed, out of memory) is noticed:
  the units it may have held are retried once, each alone so the culprit is known, and
  a unit that kills its worker again is recorded as failed.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator, Sequence

from ..execute import Outcome, UnitDone, WorkUnit, run_unit
from ..parent_watch import exit_with_parent

RETRIES_AFTER_WORKER_DEATH = 1


class InProcessExecutor:
    """Units run one after another in the driver: n_jobs = 1, and the debugging path."""

    n_workers = 1
    local = True   # its workers share the driver's clock

    def __init__(self, engine: str = "auto", group_size: int | str | None = None, threads: int = 1, *,
                 work: Callable[..., list[Outcome]] = run_unit) -> None:
        self.engine, self.group_size, self.threads, self.work = engine, group_size, threads, work

    def run(self, units: Sequence[WorkUnit], on_done: UnitDone) -> None:
        for unit in units:
            on_done(unit, self.work(unit.cfgs, self.engine, self.group_size, self.threads), 1)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """joblib/loky worker processes; see the module docstring for what happens when one dies."""

    local = True

    def __init__(self, n_workers: int, engine: str = "auto", group_size: int | str | None = None,
                 threads: int = 1, *, work: Callable[..., list[Outcome]] = run_unit) -> None:
        self.n_workers = n_workers
        self.engine, self.group_size, self.threads, self.work = engine, group_size, threads, work

    def _stream(self, units: Sequence[WorkUnit], n_jobs: int,
                dispatched: set[int]) -> Iterator[tuple[int, list[Outcome]]]:
        from joblib import Parallel, delayed

        def tasks():
            for u in units:  # joblib pulls lazily: what was pulled is what may be running
                dispatched.add(u.index)
                yield delayed(_indexed)(self.work, u.index, u.cfgs, self.engine, self.group_size, self.threads)

        # every worker ends itself if this driver dies without shutting it down (kill -9, OOM)
        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered",
                            pre_dispatch="2*n_jobs", initializer=exit_with_parent, initargs=(os.getpid(),))
        yield from parallel(tasks())

    def run(self, units: Sequence[WorkUnit], on_done: UnitDone) -> None:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        remaining = list(units)
        while remaining:
            dispatched: set[int] = set()
            done: set[int] = set()
            by_index = {u.index: u for u in remaining}
            try:
                for index, outcomes in self._stream(remaining, self.n_workers, dispatched):
                    done.add(index)
                    on_done(by_index[index], outcomes, 1)
                return
            except TerminatedWorkerError as exc:
                death = _death_message(exc)
            # A worker died. Units never handed out go back in the queue; those that were
            # handed out but not returned may have been on it: rerun each alone, so a unit
            # that kills its worker again is identified and recorded as failed.
            suspects = [u for u in remaining if u.index in dispatched and u.index not in done]
            remaining = [u for u in remaining if u.index not in dispatched]
            for unit in suspects:
                self._run_alone(unit, on_done, death)

    def _run_alone(self, unit: WorkUnit, on_done: UnitDone, death: str) -> None:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        deaths = 1
        while True:
            try:
                # n_jobs=2 for one task: joblib runs n_jobs=1 in this very process, and a unit
                # that kills its process must not take the driver with it
                (_, outcomes), = list(self._stream([unit], 2, set()))
                on_done(unit, outcomes, deaths + 1)
                return
            except TerminatedWorkerError as exc:
                deaths += 1
                death = _death_message(exc)
                if deaths > RETRIES_AFTER_WORKER_DEATH:
                    msg = f"worker process died twice running this trial's work unit ({death})"
                    on_done(unit, [Outcome("failed", None, msg, 0.0) for _ in unit.cfgs], deaths)
                    return

    def close(self) -> None:
        """Workers are loky's reusable pool: left for the next run in this process, reaped at exit."""


def _indexed(work, index: int, cfgs, engine, group_size, threads) -> tuple[int, list[Outcome]]:
    return index, work(cfgs, engine, group_size, threads)


def _death_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = next((line for line in text if "exit code" in line.lower() or "signal" in line.lower()), "")
    return ("worker terminated: " + detail.strip())[:200] if detail else "worker terminated abruptly"
