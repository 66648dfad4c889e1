"""Executors: move work units to workers and their outcomes back to the driver.

``InProcessExecutor`` and ``ProcessExecutor`` (``_local``) run on this machine,
``DaskExecutor`` (``_dask``) on a Dask cluster.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from ..execute import UnitDone, WorkUnit
from ._local import InProcessExecutor, ProcessExecutor


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


