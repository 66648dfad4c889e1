"""Executors: move work units (lists of trial configs) to workers and results back.

A work unit is a list of configs that suit one stacked computation (same network
shape and training settings) and keeps every dropout rate of a (seed, settings) family
together, so its plain arm (and any comparator arms) is trained once and paired with each rate. Workers return
plain data; only the driver writes the store.

- ``InProcessExecutor``: runs units in the driver (n_jobs = 1; the debugging path).
- ``ProcessExecutor``: joblib/loky process workers, one torch thread each, results
  streamed back as they finish. A worker that dies (killed, out of memory) is noticed:
  the units it may have held are retried once, each alone so the culprit is known, and
  a unit that kills its worker again is recorded as failed.
"""
from __future__ import annotations

import math
import os
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence

from bench import TrialConfig, TrialResult, plain_arm
from bench.results import trial_arms

from .parent_watch import exit_with_parent

if TYPE_CHECKING:
    from bench.trial import GroupSize   # bench.trial imports torch: the driver's status and --help do not

RETRIES_AFTER_WORKER_DEATH = 1


@dataclass(frozen=True)
class WorkUnit:
    index: int
    cfgs: tuple[TrialConfig, ...]


@dataclass
class Outcome:
    """What a worker sends back for one trial: plain data only."""
    status: str                    # "ok", "diverged", "failed"
    result: dict | None            # TrialResult.to_dict()
    error: str | None
    seconds: float                 # share of the unit's compute time
    worker: str = ""               # what trained it, "host:pid:thread"
    span: tuple[float, float] | None = None   # its unit's time in the training code: (start, end), epoch seconds


def make_units(cfgs: Sequence[TrialConfig], arms_per_unit: int) -> list[WorkUnit]:
    """Pack trials into units of about ``arms_per_unit`` distinct arms.

    Families (trials sharing a plain arm) are never split; families are packed in the
    order of their group key, so a unit rarely mixes network shapes.
    """
    from bench.engine import group_key  # torch: only when work is made

    families: dict = defaultdict(list)
    for c in cfgs:
        families[plain_arm(c)].append(c)
    ordered = sorted(families.items(), key=lambda kv: (repr(group_key(kv[0])), kv[0].cfg.seed))
    units: list[list[TrialConfig]] = []
    current: list[TrialConfig] = []
    current_key, arms = None, 0
    for plain, members in ordered:
        key = group_key(plain)
        size = len({a for c in members for a in trial_arms(c).values()})
        if current and (arms + size > arms_per_unit or key != current_key):
            units.append(current)
            current, arms = [], 0
        current.extend(members)
        arms += size
        current_key = key
    if current:
        units.append(current)
    # Longest first: the last units to finish are short ones, so workers idle less at the end.
    units.sort(key=_unit_cost, reverse=True)
    return [WorkUnit(i, tuple(u)) for i, u in enumerate(units)]


def _unit_cost(cfgs: Sequence[TrialConfig]) -> float:
    """Relative training cost: distinct arms x steps x the multiply-adds of one forward pass."""
    arms = {a for c in cfgs for a in trial_arms(c).values()}
    return sum(a.cfg.steps * a.cfg.n_train * (a.cfg.width ** 2 * (a.cfg.depth - 1) + 2 * a.cfg.width)
               for a in arms)


UNIT_ARMS = 8  # about a second of work at the seed config: dispatch and commit costs stay small, the tail short


def arms_per_unit(n_trials: int, n_workers: int, cap: int = UNIT_ARMS) -> int:
    """Big enough to amortise dispatch and storing, small enough to keep every worker busy.

    Units are how work is handed out; inside a unit the engine stacks arms in groups
    sized for the machine (perf.tune: measured once per network shape, by the driver), so the two compose.
    """
    balanced = math.ceil(2 * n_trials / max(1, 4 * n_workers))
    return max(2, min(cap, balanced))


def run_unit(cfgs: Sequence[TrialConfig], engine: str, group_size: GroupSize, threads: int) -> list[Outcome]:
    """Worker entry point: train a unit; a failing trial becomes a 'failed' outcome. Pure.

    ``group_size`` is what the driver chose (perf.choice.worker_sizes): a worker measures nothing.
    """
    import torch

    from bench import run_trials

    torch.set_num_threads(threads)
    start, wall_start = time.perf_counter(), time.time()
    try:
        results: list[TrialResult | Exception] = list(
            run_trials(list(cfgs), engine=engine, group_size=group_size))
    except Exception:  # isolate the failing trial(s): rerun one by one
        results = []
        for c in cfgs:
            try:
                results.append(run_trials([c], engine="single")[0])
            except Exception as exc:  # noqa: BLE001 - any error is a result
                results.append(exc)
    elapsed = time.perf_counter() - start
    share, span, worker = elapsed / max(1, len(cfgs)), (wall_start, wall_start + elapsed), _worker_name()
    out = []
    for r in results:
        if isinstance(r, Exception):
            msg = "".join(traceback.format_exception_only(type(r), r)).strip()
            out.append(Outcome("failed", None, msg, share, worker, span))
        else:
            out.append(Outcome(r.status, r.to_dict(), None, share, worker, span))
    return out


def _worker_name() -> str:
    """host:pid:thread: a Dask worker process may run units in several threads at once."""
    import socket
    import threading

    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


UnitDone = Callable[[WorkUnit, list[Outcome], int], None]  # (unit, outcomes, attempts)


class Executor(Protocol):
    """What a driver needs of an executor: run units, report each as it finishes, close.

    ``run`` calls ``on_done(unit, outcomes, attempts)`` in the driver's thread once per
    unit, in completion order; a KeyboardInterrupt (a stop signal) leaves it with the
    in-flight units abandoned. ``close`` releases workers or connections; it is safe to
    call twice. Implemented by InProcessExecutor, ProcessExecutor and DaskExecutor.
    ``local``: its workers run on this machine, so their clocks are the driver's.
    """

    n_workers: int
    local: bool

    def run(self, units: Sequence[WorkUnit], on_done: UnitDone) -> None: ...

    def close(self) -> None: ...


class InProcessExecutor:
    """Units run one after another in the driver: n_jobs = 1, and the debugging path."""

    n_workers = 1
    local = True   # its workers share the driver's clock

    def __init__(self, engine: str = "auto", group_size: int | str | None = None, threads: int = 1) -> None:
        self.engine, self.group_size, self.threads = engine, group_size, threads

    def run(self, units: Sequence[WorkUnit], on_done: UnitDone) -> None:
        for unit in units:
            on_done(unit, run_unit(unit.cfgs, self.engine, self.group_size, self.threads), 1)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """joblib/loky worker processes; see the module docstring for what happens when one dies."""

    local = True

    def __init__(self, n_workers: int, engine: str = "auto", group_size: int | str | None = None,
                 threads: int = 1) -> None:
        self.n_workers = n_workers
        self.engine, self.group_size, self.threads = engine, group_size, threads

    def _stream(self, units: Sequence[WorkUnit], n_jobs: int,
                dispatched: set[int]) -> Iterator[tuple[int, list[Outcome]]]:
        from joblib import Parallel, delayed

        def tasks():
            for u in units:  # joblib pulls lazily: what was pulled is what may be running
                dispatched.add(u.index)
                yield delayed(_indexed)(u.index, u.cfgs, self.engine, self.group_size, self.threads)

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


def _indexed(index: int, cfgs, engine, group_size, threads) -> tuple[int, list[Outcome]]:
    return index, run_unit(cfgs, engine, group_size, threads)


def _death_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = next((line for line in text if "exit code" in line.lower() or "signal" in line.lower()), "")
    return ("worker terminated: " + detail.strip())[:200] if detail else "worker terminated abruptly"
