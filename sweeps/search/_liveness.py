"""Who is alive on a study: one lock for the whole study, worker identity, heartbeats, dead trials.

Several drivers may share one RDB study (from two folders, or two machines on one
PostgreSQL server). What keeps them exact:

- ``StudyLock``: the budget check and ``ask`` (and the failing and requeueing of dead
  trials) run as one step for the whole study. PostgreSQL: a transaction-level advisory
  lock, dropped by the server when its holder's connection closes or has been idle in the
  transaction for ``LOCK_IDLE_SECONDS`` (a machine that vanished mid-step); SQLite: an
  ``flock`` beside the database file; the journal file: an ``flock`` in the output folder
  (a journal study has one folder). Other RDBs: an ``flock`` in the machine's temporary
  folder, so one machine only.
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

import hashlib
import os
import socket
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.locks import FileLock
from ..options import HEARTBEAT_SECONDS  # noqa: F401 - the default, defined once, used here and by workers
from ._optuna_compat import stale_trial_ids, storage_trial_id, study_storage, uncached

ASK_LOCK = ".search-ask.lock"
LOCK_IDLE_SECONDS = 120      # PostgreSQL ends a lock holder idle this long in its transaction


def _machine() -> str:
    """This machine and boot: the host name alone repeats across cloned VMs."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return f"{socket.gethostname()}/{fh.read().strip()}"
    except OSError:
        return socket.gethostname()


HOST = _machine()
GRACE_BEATS = 3               # a trial is stale after this many intervals without a heartbeat


def rdb_of(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB under a storage (a study wraps its RDB in a cache), or None for a journal."""
    storage = uncached(storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def is_rdb(storage: optuna.storages.BaseStorage) -> bool:
    return rdb_of(storage) is not None


def rdb_storage(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    """An RDB storage with Optuna's heartbeat on: ``heartbeat`` seconds, stale after GRACE_BEATS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat,
                                          grace_period=GRACE_BEATS * heartbeat)


def lock_kind(storage: optuna.storages.BaseStorage) -> str:
    """journal, postgresql, sqlite (a file: one machine) or machine (another RDB: one machine)."""
    rdb = rdb_of(storage)
    if rdb is None:
        return "journal"
    engine = rdb.engine
    if engine.dialect.name == "postgresql":
        return "postgresql"
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return "sqlite"
    return "machine"


class StudyLock:
    """``with lock:`` makes a block one step for the whole study, across processes and drivers."""

    def __init__(self, storage: optuna.storages.BaseStorage, out_dir: Path, study_name: str) -> None:
        self.key, self.rdb, self.kind = _lock_key(study_name), rdb_of(storage), lock_kind(storage)
        self._file = Path(out_dir) / ASK_LOCK
        if self.kind == "sqlite":
            self._file = Path(f"{os.path.abspath(self.rdb.engine.url.database)}.lock")
        elif self.kind == "machine":
            where = self.rdb.engine.url.render_as_string(hide_password=True)
            self._file = Path(tempfile.gettempdir()) / f"dropout-bench-{_lock_key(where + study_name):x}.lock"
        self._held: list = []

    def __enter__(self) -> "StudyLock":
        if self.kind == "postgresql":
            import sqlalchemy

            ctx = self.rdb.engine.begin()           # the lock lives as long as this transaction
            conn = ctx.__enter__()
            try:
                conn.execute(sqlalchemy.text(f"SET LOCAL idle_in_transaction_session_timeout = "
                                             f"'{LOCK_IDLE_SECONDS}s'"))
                conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.key})
            except BaseException:
                ctx.__exit__(None, None, None)
                raise
        else:
            ctx = FileLock(self._file)
            ctx.__enter__()
        self._held.append(ctx)
        return self

    def __exit__(self, *exc) -> None:
        self._held.pop().__exit__(None, None, None)


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key (PostgreSQL's bigint)."""
    digest = hashlib.blake2b(f"dropout-bench study {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


WORKER = "worker"      # user attribute: {"host", "pid", "dir", "heartbeat"} of the process running the trial


def identify(trial: optuna.Trial, out_dir: Path) -> None:
    """First heartbeat (RDB), then who runs the trial: a kill between leaves an orphan, never a mute trial."""
    storage = study_storage(trial.study)
    rdb = rdb_of(storage)
    interval = rdb.get_heartbeat_interval() if rdb is not None else None
    if interval is not None:
        rdb.record_heartbeat(storage_trial_id(trial))
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
    rdb = rdb_of(storage)
    interval = rdb.get_heartbeat_interval() if rdb is not None else None
    if interval is None:
        yield
        return
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
    rdb = rdb_of(study_storage(study))
    if rdb is None:                         # a journal study has one folder and one driver
        # the lock is the folder's: no ask is in flight while it is held, so a trial with
        # no worker identity was asked by a process stopped before it could record one
        return [t for t in running
                if dead_pids is None or not worker_of(t) or worker_of(t).get("pid") in dead_pids]
    # an orphan is certain only where the lock covers every process that may be mid-ask
    orphans = lock_kind(study_storage(study)) in ("postgresql", "sqlite")
    stale = _stale_ids(rdb, study, running)
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
