"""Executors: move work units to workers and their outcomes back; one factory, one registry.

Every driver (a sweep, the search's confirmation, ``validate``) gets its executor from
:func:`make_executor`; :data:`BACKENDS` is the one list of backends, and the option
check, the CLI's ``--backend`` choices and the dispatch all read it. Adding a backend is
one entry here and one class with ``run``/``close`` (see :class:`Executor`).

- ``inprocess``: units run one after another in the driver (the debugging path);
- ``local``: joblib/loky worker processes on this machine (``_local``); one worker
  runs in the driver, as ``inprocess`` does;
- ``dask``: the units of a sweep on a Dask cluster (``_dask``), at ``scheduler``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ..execute import Outcome, UnitDone, WorkUnit, run_unit
from ._local import InProcessExecutor, ProcessExecutor

Work = Callable[..., list[Outcome]]   # (cfgs, engine, group_size, threads) -> one outcome per config; picklable


class RunOptions(Protocol):
    """What the factory reads of a resolved ``sweeps.options.ExecutionOptions``.

    A protocol, not an import: the options check backend names against :data:`BACKENDS`,
    so this package stays below them. Read-only, as the frozen options are.
    """
    @property
    def backend(self) -> str: ...

    @property
    def workers(self) -> int: ...

    @property
    def engine(self) -> str: ...

    @property
    def group_size(self) -> int | str | None: ...

    @property
    def scheduler(self) -> str | None: ...


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


@dataclass(frozen=True)
class Backend:
    """One way to run work units: its name (``--backend``), a line for ``--help``, its maker."""
    name: str
    help: str
    make: Callable[[RunOptions, Work], Executor]
    needs_scheduler: bool = False     # the address of a cluster goes with it (--scheduler)


def _in_process(opts: RunOptions, work: Work) -> Executor:
    return InProcessExecutor(opts.engine, opts.group_size, work=work)


def _local(opts: RunOptions, work: Work) -> Executor:
    if opts.workers == 1:                 # one worker: the driver itself, no process to start
        return _in_process(opts, work)
    return ProcessExecutor(opts.workers, opts.engine, opts.group_size, work=work)


def _dask(opts: RunOptions, work: Work) -> Executor:
    from ._dask import DaskExecutor       # distributed: only where it is asked for

    return DaskExecutor(opts.scheduler, opts.engine, opts.group_size, work=work)


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("inprocess", "in the driver, one unit after another (debugging)", _in_process),
    Backend("local", "worker processes on this machine (default)", _local),
    Backend("dask", "a Dask cluster, at --scheduler tcp://HOST:PORT", _dask, needs_scheduler=True),
)}


def make_executor(opts: RunOptions, work: Work = run_unit) -> Executor:
    """The executor of ``opts.backend`` for resolved ``opts``; its workers call ``work`` on each unit.

    A Dask scheduler that cannot be reached fails here (ConfigError), before anything is written.
    """
    return BACKENDS[opts.backend].make(opts, work)


def backend_help() -> str:
    """The ``--backend`` help text, from the registry."""
    return "; ".join(f"{b.name}: {b.help}" for b in BACKENDS.values())
