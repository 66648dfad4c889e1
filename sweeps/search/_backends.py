"""Where a study lives: one ``StudyBackend`` per kind of storage, chosen once from the storage string.

- ``journal`` (no ``--storage``): Optuna's journal file at ``DIR/optuna.journal``; every
  process appends JSON lines under a lock and replays the file to read. Optuna's own
  locks are files that a killed process leaves behind (the next writer then waits out a
  30 s grace period); the journal's lock here is a ``FileLock`` on
  ``DIR/optuna.journal.flock`` instead, which the kernel releases when its holder dies.
  A journal study has one folder, so its study lock is an ``flock`` in that folder.
- ``postgresql``: an RDB shared by drivers on many machines; the study lock is a
  transaction-level advisory lock, dropped by the server when its holder's connection
  closes or has been idle in the transaction for ``LOCK_IDLE_SECONDS`` (a machine that
  vanished mid-step).
- ``sqlite``: a database file (one machine); the study lock is an ``flock`` beside it.
- ``machine``: any other RDB URL; the study lock is an ``flock`` in the machine's
  temporary folder, so its drivers must share one machine.

The backend answers what the search asks of its storage (is it an RDB, its heartbeats,
whether its lock covers every process that may be mid-ask), opens it, and holds the
study-wide lock (:class:`StudyLock`). ``study_backend`` chooses from the storage string;
``backend_of`` finds the same backend for a storage already open.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.parse
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, ContextManager, Iterator

import optuna

from bench.locks import FileLock
from ..options import HEARTBEAT_SECONDS
from ..store import StoreError
from ._optuna_compat import uncached

JOURNAL_FILE = "optuna.journal"
ASK_LOCK = ".search-ask.lock"
LOCK_IDLE_SECONDS = 120      # PostgreSQL ends a lock holder idle this long in its transaction
GRACE_BEATS = 3              # a trial is stale after this many intervals without a heartbeat


def mask_url(url: str | None) -> str | None:
    """The storage URL with its password replaced by ***: what logs, manifests and reports show."""
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def mask_argv(argv: list[str]) -> list[str]:
    """A command line with the value of ``--storage`` masked."""
    out, hide = [], False
    for a in argv:
        if hide:
            a, hide = mask_url(a) or a, False
        elif a == "--storage":
            hide = True
        elif a.startswith("--storage="):
            a = "--storage=" + (mask_url(a.split("=", 1)[1]) or "")
        out.append(a)
    return out


def journal_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / JOURNAL_FILE


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 where only it is installed."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class StudyBackend:
    """One kind of study storage (an RDB here; :class:`JournalBackend` overrides what differs).

    ``out_dir``: the driver's folder; ``url``: the storage string (None: the folder's
    journal); ``heartbeat``: seconds between a worker's heartbeats on an RDB.
    """

    kind: ClassVar[str] = "machine"
    is_rdb: ClassVar[bool] = True
    # does the study lock cover every process that may be mid-ask (so a RUNNING trial with
    # no worker identity, seen under the lock, is certainly an orphan)?
    orphans_certain: ClassVar[bool] = True

    def __init__(self, out_dir: str | os.PathLike, url: str | None = None,
                 heartbeat: int = HEARTBEAT_SECONDS) -> None:
        self.out_dir, self.url, self.heartbeat = Path(out_dir), url, heartbeat

    @property
    def shown(self) -> str:
        """What logs, manifests and reports show: the URL with its password masked."""
        return mask_url(self.url) or ""

    def open(self) -> optuna.storages.BaseStorage:
        """A storage on the study for this process; a bad URL or a refused login is a one-line StoreError."""
        try:
            return self._open()
        except Exception as exc:  # noqa: BLE001 - a bad URL or an unreachable server: one line, masked
            where = f"--storage {self.shown}" if self.is_rdb else self.shown
            raise StoreError(f"{where}: cannot open ({type(exc).__name__})") from None

    def _open(self) -> optuna.storages.BaseStorage:
        """An RDB storage with Optuna's heartbeat on: every ``heartbeat`` s, stale after GRACE_BEATS."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(sqlalchemy_url(self.url), heartbeat_interval=self.heartbeat,
                                              grace_period=GRACE_BEATS * self.heartbeat)

    def rdb(self, storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
        """The RDB under ``storage`` (a study wraps it in a cache); None for a journal."""
        return uncached(storage)

    def heartbeat_interval(self, storage: optuna.storages.BaseStorage) -> int | None:
        """Seconds between heartbeats of workers on ``storage``; None: no heartbeats (a journal)."""
        rdb = self.rdb(storage)
        return rdb.get_heartbeat_interval() if rdb is not None else None

    def hold(self, storage: optuna.storages.BaseStorage, study_name: str) -> ContextManager[Any]:
        """The study-wide lock, not yet taken: an ``flock`` on :meth:`lock_file` unless overridden."""
        return FileLock(self.lock_file(storage, study_name))

    def lock_file(self, storage: optuna.storages.BaseStorage, study_name: str) -> Path:
        """Another RDB: a file in this machine's temporary folder, named after the URL and the study."""
        where = self.rdb(storage).engine.url.render_as_string(hide_password=True)
        return Path(tempfile.gettempdir()) / f"dropout-bench-{_lock_key(where + study_name):x}.lock"


class JournalBackend(StudyBackend):
    """The folder's journal file: one folder, one driver, no heartbeats."""

    kind = "journal"
    is_rdb = False

    @property
    def shown(self) -> str:
        return str(journal_path(self.out_dir))

    def _open(self) -> optuna.storages.BaseStorage:
        from optuna.storages.journal import JournalFileBackend

        path = journal_path(self.out_dir)
        # FileLock has the acquire/release duck type Optuna's lock_obj takes, and a kill never leaves it stale
        backend = JournalFileBackend(str(path), lock_obj=FileLock(f"{path}.flock"))
        return optuna.storages.JournalStorage(backend)

    def rdb(self, storage: optuna.storages.BaseStorage) -> None:
        return None

    def lock_file(self, storage: optuna.storages.BaseStorage, study_name: str) -> Path:
        return self.out_dir / ASK_LOCK


class PostgresBackend(StudyBackend):
    """A PostgreSQL server: drivers on many machines, one advisory lock on the server."""

    kind = "postgresql"

    def hold(self, storage: optuna.storages.BaseStorage, study_name: str) -> ContextManager[Any]:
        return _advisory_lock(self.rdb(storage).engine, _lock_key(study_name))


class SqliteBackend(StudyBackend):
    """A SQLite database file: drivers on one machine, an ``flock`` beside the file."""

    kind = "sqlite"

    def lock_file(self, storage: optuna.storages.BaseStorage, study_name: str) -> Path:
        return Path(f"{os.path.abspath(self.rdb(storage).engine.url.database)}.lock")


class MachineBackend(StudyBackend):
    """Any other RDB: its lock is this machine's, so a process mid-ask elsewhere is not covered."""

    kind = "machine"
    orphans_certain = False


def _kind_of(url: Any) -> type[StudyBackend]:
    """The backend of a SQLAlchemy URL (its dialect, and whether a SQLite database is a file)."""
    if url.get_backend_name() == "postgresql":
        return PostgresBackend
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SqliteBackend
    return MachineBackend


def study_backend(url: str | None, out_dir: str | os.PathLike,
                  heartbeat: int = HEARTBEAT_SECONDS) -> StudyBackend:
    """The backend of a storage string: the folder's journal for None, else by the URL's dialect."""
    if url is None:
        return JournalBackend(out_dir, None, heartbeat)
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(sqlalchemy_url(url))
    except Exception as exc:  # noqa: BLE001 - not a URL: one line, masked
        raise StoreError(f"--storage {mask_url(url)}: cannot open ({type(exc).__name__})") from None
    return _kind_of(parsed)(out_dir, url, heartbeat)


def backend_of(storage: optuna.storages.BaseStorage, out_dir: str | os.PathLike = ".") -> StudyBackend:
    """The backend of a storage already open (a worker's study, a test's): the same choice, from its URL."""
    rdb = uncached(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return JournalBackend(out_dir)
    return _kind_of(rdb.engine.url)(out_dir, rdb.url, rdb.get_heartbeat_interval() or HEARTBEAT_SECONDS)


def open_storage(out_dir: str | os.PathLike, url: str | None,
                 heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.BaseStorage:
    """The study's storage: the RDB at ``url`` (heartbeats every ``heartbeat`` s), else the folder's journal."""
    return study_backend(url, out_dir, heartbeat).open()


class StudyLock:
    """``with lock:`` makes a block one step for the whole study, across processes and drivers."""

    def __init__(self, storage: optuna.storages.BaseStorage, out_dir: Path, study_name: str,
                 backend: StudyBackend | None = None) -> None:
        self.backend = backend or backend_of(storage, out_dir)
        self.storage, self.study_name = storage, study_name
        self._held: list[ContextManager[Any]] = []

    def __enter__(self) -> "StudyLock":
        ctx = self.backend.hold(self.storage, self.study_name)
        ctx.__enter__()
        self._held.append(ctx)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._held.pop().__exit__(None, None, None)


@contextmanager
def _advisory_lock(engine: Any, key: int) -> Iterator[None]:
    """PostgreSQL's transaction-level advisory lock on ``key``, for as long as the block runs."""
    import sqlalchemy

    with engine.begin() as conn:            # the lock lives as long as this transaction
        conn.execute(sqlalchemy.text(f"SET LOCAL idle_in_transaction_session_timeout = '{LOCK_IDLE_SECONDS}s'"))
        conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        yield


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key (PostgreSQL's bigint)."""
    digest = hashlib.blake2b(f"dropout-bench study {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
