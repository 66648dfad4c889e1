"""Worker processes end with their driver.

A driver killed alone (the OOM killer, ``kill -9``) cannot shut its workers down; left
alone they idle for minutes holding memory (loky keeps idle workers 300 s). Each local
worker process runs :func:`exit_with_parent` once at start: a daemon thread that checks
every second whether the process that started it is still its parent, and ends the
worker when it is not (the kernel re-parents orphans). A polling thread is used rather
than ``PR_SET_PDEATHSIG``, which fires when the parent *thread* that forked the worker
ends, and joblib may start workers from a helper thread. Dask workers belong to the
cluster and never call this.
"""
from __future__ import annotations

import os
import threading
import time

CHECK_SECONDS = 1.0
ORPHAN_EXIT_CODE = 70      # what an orphaned worker exits with (EX_SOFTWARE): no one reads it

_watching: set[int] = set()


def exit_with_parent(parent_pid: int, every: float = CHECK_SECONDS) -> None:
    """Start (once per process) a thread that ends this process when ``parent_pid`` is no longer its parent."""
    if parent_pid in _watching:
        return
    _watching.add(parent_pid)
    if os.getppid() != parent_pid:           # the driver is already gone
        os._exit(ORPHAN_EXIT_CODE)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every)
        os._exit(ORPHAN_EXIT_CODE)           # no cleanup to do: only the driver writes the store

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
