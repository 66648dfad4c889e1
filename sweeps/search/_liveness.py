"""Who is alive on a study: one lock for the whole study, worker identity, heartbeats, dead trials.

Several drivers may share one RDB study (from two folders, or two machines on one
PostgreSQL server). What keeps them exact:

- ``StudyLock``: the budget check and ``ask`` (and the failing and requeueing of dead
  trials) run as one step for the whole study. PostgreSQL: a transaction-level advisory
  lock (the server drops it when its holder's connection dies); SQLite: an ``flock`` beside
  the database file; the journal file: an ``flock`` in the output folder (a journal study
  has one folder). Other RDBs fall back to the folder's ``flock``: exact on one machine.
- ``identify``: every asked trial records its ``worker`` (host, pid and output folder)
  inside that step, so a trial RUNNING without one is an orphan of a process killed
  mid-step.
- ``heartbeat``: on an RDB a worker records Optuna's heartbeat every ``interval`` seconds
  while it trains; a RUNNING trial whose heartbeat is older than ``GRACE_BEATS`` beats (by
  the database server's clock) belongs to a dead process on some machine.
- ``dead_trials``: the RUNNING trials that nobody will finish.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

ASK_LOCK = ".search-ask.lock"
HOST = socket.gethostname()
HEARTBEAT_SECONDS = 20        # default interval between a worker's heartbeats (RDB only)
GRACE_BEATS = 3               # a trial is stale after this many intervals without a heartbeat


@contextmanager
def flocked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)     # closing the descriptor releases the lock


def rdb_of(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB under a storage (a study wraps its RDB in a cache), or None for a journal."""
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def is_rdb(storage: optuna.storages.BaseStorage) -> bool:
    return rdb_of(storage) is not None


def rdb_storage(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    """An RDB storage with Optuna's heartbeat on: ``heartbeat`` seconds, stale after GRACE_BEATS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat,
                                          grace_period=GRACE_BEATS * heartbeat)


class StudyLock:
    """``with lock:`` makes a block one step for the whole study, across processes and drivers."""

    def __init__(self, storage: optuna.storages.BaseStorage, out_dir: Path, study_name: str) -> None:
        self.key, self._file = _lock_key(study_name), Path(out_dir) / ASK_LOCK
        self.kind, self.rdb = "folder", rdb_of(storage)
        if self.rdb is not None:
            engine = self.rdb.engine
            if engine.dialect.name == "postgresql":
                self.kind = "postgresql"
            elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
                self.kind, self._file = "sqlite", Path(f"{os.path.abspath(engine.url.database)}.lock")
        self._held: list = []

    def __enter__(self) -> "StudyLock":
        if self.kind == "postgresql":
            import sqlalchemy

            ctx = self.rdb.engine.begin()           # the lock lives as long as this transaction
            conn = ctx.__enter__()
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.key})
            except BaseException:
                ctx.__exit__(None, None, None)
                raise
        else:
            ctx = flocked(self._file)
            ctx.__enter__()
        self._held.append(ctx)
        return self

    def __exit__(self, *exc) -> None:
        self._held.pop().__exit__(None, None, None)


def _lock_key(study_name: str) -> int:
    """A signed 64-bit advisory-lock key for the study (PostgreSQL's bigint)."""
    digest = hashlib.blake2b(f"dropout-bench study {study_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


WORKER = "worker"            # user attribute: {"host", "pid", "dir"} of the process running the trial


def identify(trial: optuna.Trial, out_dir: Path) -> None:
    # one attribute, one write: on an RDB each write is a commit
    trial.set_user_attr(WORKER, {"host": HOST, "pid": os.getpid(), "dir": str(Path(out_dir).resolve())})


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
    rdb = rdb_of(study._storage)
    if rdb is None:                         # a journal study has one folder and one driver
        return [t for t in running if dead_pids is None or worker_of(t).get("pid") in dead_pids]
    # Optuna's own fail_stale_trials would fail them without our fail_reason (which keeps a
    # stopped trial off the budget and gets it retried), so ask the storage which are stale.
    stale = set(rdb._get_stale_trial_ids(study._study_id)) if rdb.get_heartbeat_interval() else set()
    out = []
    for t in running:
        w = worker_of(t)
        if (t._trial_id in stale or not w
                or (ran_here(t, out_dir) and (dead_pids is None or w.get("pid") in dead_pids))):
            out.append(t)
    return out
