"""Who is alive on a study: one lock for the whole study, worker identity, heartbeats, dead trials.

Several drivers may share one RDB study (from two folders, or two machines on one
PostgreSQL server). What keeps them exact:

- ``StudyLock`` (``_backends``): the budget check and ``ask`` (and the failing and
  requeueing of dead trials) run as one step for the whole study; each kind of storage
  holds it its own way (``StudyBackend.hold``).
- ``identify``: every asked trial records its first heartbeat and then its ``worker``
  (machine, pid, output folder, heartbeat interval) inside that step, so a trial RUNNING
  without a worker is an orphan of a process killed mid-step.
- ``heartbeat``: on an RDB a worker records Optuna's heartbeat every ``interval`` seconds
  while it trains; a RUNNING trial whose heartbeat is older than ``GRACE_BEATS`` of its own
  worker's intervals (by the database server's clock) belongs to a dead process on some
  machine.
- ``dead_trials``: the RUNNING trials that nobody will finish.
"""
from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from ._backends import GRACE_BEATS, backend_of
from ._optuna_compat import stale_trial_ids, storage_trial_id, study_storage


def _machine() -> str:
    """This machine and boot: the host name alone repeats across cloned VMs."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return f"{socket.gethostname()}/{fh.read().strip()}"
    except OSError:
        return socket.gethostname()


HOST = _machine()
WORKER = "worker"      # user attribute: {"host", "pid", "dir", "heartbeat"} of the process running the trial


def identify(trial: optuna.Trial, out_dir: Path) -> None:
    """First heartbeat (RDB), then who runs the trial: a kill between leaves an orphan, never a mute trial."""
    storage = study_storage(trial.study)
    backend = backend_of(storage, out_dir)
    interval = backend.heartbeat_interval(storage)
    if interval is not None:
        backend.rdb(storage).record_heartbeat(storage_trial_id(trial))
    # one attribute, one write: on an RDB each write is a commit
    trial.set_user_attr(WORKER, {"host": HOST, "pid": os.getpid(), "dir": str(Path(out_dir).resolve()),
                                 "heartbeat": interval})


def worker_of(t: FrozenTrial) -> dict:
    """The trial's worker record; {} if it was never identified."""
    return t.user_attrs.get(WORKER) or {}


def ran_here(t: FrozenTrial, out_dir: Path) -> bool:
    """Was this trial run by workers of this folder on this machine?"""
    w = worker_of(t)
    return w.get("host") == HOST and w.get("dir") == str(Path(out_dir).resolve())


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while the block runs (RDB with heartbeats only)."""
    backend = backend_of(storage)
    interval = backend.heartbeat_interval(storage)
    if interval is None:
        yield
        return
    rdb = backend.rdb(storage)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                rdb.record_heartbeat(trial_id)
            except Exception:  # noqa: BLE001 - a missed beat; the grace period allows GRACE_BEATS - 1
                pass

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def dead_trials(study: optuna.Study, running: list[FrozenTrial], out_dir: Path,
                dead_pids: set[int] | None) -> list[FrozenTrial]:
    """RUNNING trials nobody will finish. Call it holding the ``StudyLock``.

    ``dead_pids``: worker processes of this folder known to be dead; ``None`` means all of
    them (a starting driver that holds the folder's worker lock). On an RDB also trials
    whose heartbeat is stale, and orphans (RUNNING with no worker identity: no ask step is
    in flight while the lock is held).
    """
    running = [t for t in running if t.state == TrialState.RUNNING]
    storage = study_storage(study)
    backend = backend_of(storage, out_dir)
    if not backend.is_rdb:                  # a journal study has one folder and one driver
        # the lock is the folder's: no ask is in flight while it is held, so a trial with
        # no worker identity was asked by a process stopped before it could record one
        return [t for t in running
                if dead_pids is None or not worker_of(t) or worker_of(t).get("pid") in dead_pids]
    # an orphan is certain only where the lock covers every process that may be mid-ask
    orphans = backend.orphans_certain
    stale = _stale_ids(backend.rdb(storage), study, running)
    out = []
    for t in running:
        w = worker_of(t)
        if (storage_trial_id(t) in stale or (not w and orphans)
                or (w and ran_here(t, out_dir) and (dead_pids is None or w.get("pid") in dead_pids))):
            out.append(t)
    return out


def _stale_ids(rdb: optuna.storages.RDBStorage, study: optuna.Study, running: list[FrozenTrial]) -> set[int]:
    """Trials whose last heartbeat is older than GRACE_BEATS of their own worker's intervals.

    Optuna judges every trial by the reader's grace period; drivers started with different
    ``--heartbeat`` would then fail each other's live trials. Ask Optuna for the trials stale
    at the shortest interval in use, then keep those stale at their own interval.
    """
    intervals = {storage_trial_id(t): worker_of(t).get("heartbeat") for t in running}
    known = [i for i in intervals.values() if i]
    if not known:
        return set()
    # Optuna's fail_stale_trials would fail them without our fail_reason (which keeps a
    # stopped trial off the budget and gets it retried), so ask the storage which are stale
    out: set[int] = set()
    for interval in sorted(set(known)):
        out |= {i for i in stale_trial_ids(rdb, study, interval, GRACE_BEATS * interval)
                if intervals.get(i) == interval}
    return out
