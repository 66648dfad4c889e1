"""The sweep store: one SQLite database (WAL mode) per output folder.

Layout of ``DIR/store.sqlite``:
- ``meta(key, value)``: ``format`` = "dropout-bench-store", ``format_version``, ``kind``
  ("sweep" or "search"), ``name``, ``spec`` (canonical JSON), ``spec_text``, ``shared``.
- ``runs``: one row per invocation (started/ended, argv, code and package versions, host,
  n_jobs, device, engine, counts).
- ``trials``: one row per finished trial (primary key ``trial_id``): status ("ok",
  "diverged", "failed"), attempts, error, the config as columns and as JSON, headline
  metrics as columns, and the full result (curves, timing, environment) as JSON.

Only the driver process writes. Each result is committed as it arrives, so a kill at
any moment loses at most the trials still in flight. A folder whose store is not ours,
or is corrupt, is refused, never overwritten. ``DIR/.lock`` (an flock held for the
whole run, released by the kernel when the process dies) keeps a second driver out.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from bench import ConfigError, TrialConfig, TrialResult
from bench.config import field_names, field_types
from bench.plugins import load_plugins

from bench.locks import FileLock, LockBusy, is_held

STORE_FILE = "store.sqlite"
LOCK_FILE = ".lock"
FORMAT = "dropout-bench-store"
FORMAT_VERSION = 1
METRIC_COLUMNS = ("test_mse_plain", "test_mse_dropout", "train_mse_plain", "train_mse_dropout",
                  "gap_plain", "gap_dropout", "delta_test_mse")
_SQL_TYPES = {"int": "INTEGER", "float": "REAL", "str": "TEXT", "tuple": "TEXT"}   # a tuple: comma-joined


@dataclass
class TrialRow:
    """One finished trial on its way into the store."""
    trial_id: str
    cfg: TrialConfig
    status: str                       # "ok", "diverged" or "failed"
    result: TrialResult | None = None
    error: str | None = None
    attempts: int = 1
    seconds: float | None = None      # this trial's share of its work unit's compute time


class StoreError(ConfigError):
    """The folder holds something that is not a usable dropout-bench store."""


class StoreLocked(StoreError):
    """Another driver process holds the folder's lock."""


class FolderLock:
    """The folder's ``DIR/.lock``, held exclusively by its one driver (see bench.locks).

    The kernel releases it when the holder dies, so a killed sweep never leaves a stale lock.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self._lock = FileLock(self.out_dir / LOCK_FILE, note=f"pid {os.getpid()}")

    def acquire(self) -> "FolderLock":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(wait=False)
        except LockBusy as busy:
            raise StoreLocked(f"{self.out_dir}: in use by a running sweep or search ({busy.holder}); "
                              "wait for it to finish or stop it first") from None
        return self

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def folder_in_use(out_dir: str | Path) -> bool:
    """Is a driver running in this folder now?"""
    return is_held(Path(out_dir) / LOCK_FILE)


def is_scratch(name: str) -> bool:
    """Files a store folder may hold besides the store: the lock and leftovers of a killed creation."""
    return name == LOCK_FILE or (name.startswith(f".{STORE_FILE}.") and name.endswith(".tmp"))


def store_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / STORE_FILE


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Store:
    """A dropout-bench store on disk. Use ``Store.create`` / ``Store.open``."""

    def __init__(self, out_dir: Path, conn: sqlite3.Connection, *, readonly: bool) -> None:
        self.out_dir = out_dir
        self.conn = conn
        self.readonly = readonly

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, out_dir: str | Path, *, readonly: bool = False) -> "Store":
        out_dir = Path(out_dir)
        path = store_path(out_dir)
        if not path.exists():
            raise StoreError(f"{out_dir}: no dropout-bench store here ({STORE_FILE} missing)")
        # Check the format read-only first: switching a foreign file to WAL would change it.
        probe = cls(out_dir, _connect(f"file:{path}?mode=ro"), readonly=True)
        try:
            probe._check_format()
            probe._load_plugins()
        finally:
            if not readonly:
                probe.conn.close()
        if readonly:
            return probe
        store = cls(out_dir, _connect(f"file:{path}"), readonly=False)
        store._add_config_columns()
        return store

    def _load_plugins(self) -> None:
        """The modules the stored spec names (bench.plugins): its arms, tasks and settings, known here too."""
        spec = json.loads(self.meta().get("spec") or "{}")
        load_plugins(spec.get("plugins", []) if isinstance(spec, dict) else [])

    def _add_config_columns(self) -> None:
        """A store made before a config field existed gains its column (NULL in older rows)."""
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(trials)")}
        missing = [(n, t) for n, t in field_types().items() if n not in have]
        if missing:
            with self.conn:
                for name, typ in missing:
                    self.conn.execute(f"ALTER TABLE trials ADD COLUMN {name} {_SQL_TYPES[typ]}")

    @classmethod
    def create(cls, out_dir: str | Path, *, kind: str, name: str, spec: dict[str, Any],
               spec_text: str, shared: str) -> "Store":
        out_dir = Path(out_dir)
        path = store_path(out_dir)
        if path.exists():
            raise StoreError(f"{out_dir}: a store already exists")
        out_dir.mkdir(parents=True, exist_ok=True)
        # Build the schema in a temporary file and rename it into place: a kill during
        # creation leaves no half-made store that a rerun would have to refuse.
        tmp = out_dir / f".{STORE_FILE}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        with conn:
            conn.executescript(_schema())
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
                ("format", FORMAT), ("format_version", str(FORMAT_VERSION)), ("kind", kind),
                ("name", name), ("spec", json.dumps(spec, sort_keys=True)), ("spec_text", spec_text),
                ("shared", shared), ("created_at", now_iso()),
            ])
        conn.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return cls(out_dir, _connect(f"file:{path}"), readonly=False)

    def _check_format(self) -> None:
        try:
            rows = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.out_dir}: {STORE_FILE} is not a dropout-bench store ({exc})") from None
        if rows.get("format") != FORMAT:
            raise StoreError(f"{self.out_dir}: {STORE_FILE} is not a dropout-bench store")
        version = int(rows.get("format_version", "0"))
        if version != FORMAT_VERSION:
            raise StoreError(f"{self.out_dir}: store format version {version}; this dropout-bench "
                             f"reads version {FORMAT_VERSION}")
        try:
            self.conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:  # pragma: no cover - depends on the damage
            raise StoreError(f"{self.out_dir}: {STORE_FILE} is corrupt ({exc})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- meta and runs -------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **items: str) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", items.items())

    def begin_run(self, info: dict[str, Any]) -> int:
        with self.conn:
            cur = self.conn.execute("INSERT INTO runs(started_at, info) VALUES (?, ?)",
                                    (now_iso(), json.dumps(info, sort_keys=True)))
        return int(cur.lastrowid)

    def end_run(self, run_id: int, summary: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET ended_at = ?, summary = ? WHERE id = ?",
                              (now_iso(), json.dumps(summary, sort_keys=True), run_id))

    def runs(self) -> list[dict[str, Any]]:
        out = []
        for rid, started, ended, info, summary in self.conn.execute(
                "SELECT id, started_at, ended_at, info, summary FROM runs ORDER BY id"):
            out.append({"id": rid, "started_at": started, "ended_at": ended,
                        "info": json.loads(info or "{}"), "summary": json.loads(summary or "null")})
        return out

    # ---- trials --------------------------------------------------------------------------
    def statuses(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT trial_id, status FROM trials").fetchall())

    def put(self, rows: Iterable["TrialRow"], run_id: int | None = None) -> None:
        """Insert or replace finished trials, committed together as one transaction."""
        cols = ["trial_id", "status", "attempts", "error", "finished_at", "run_id", "seconds",
                "config_json", "result_json", *field_names(), *METRIC_COLUMNS]
        sql = f"INSERT OR REPLACE INTO trials({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        finished = now_iso()
        values = []
        for row in rows:
            metrics = _metrics(row.result)
            values.append([
                row.trial_id, row.status, row.attempts, row.error, finished, run_id, row.seconds,
                row.cfg.canonical_json(), json.dumps(row.result.to_dict()) if row.result else None,
                *[_sql_value(getattr(row.cfg, f)) for f in field_names()], *[metrics[m] for m in METRIC_COLUMNS],
            ])
        with self.conn:
            self.conn.executemany(sql, values)

    def records(self, status: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Stored trials as plain records: trial_id, status, error, attempts, config, result."""
        sql = "SELECT trial_id, status, error, attempts, config_json, result_json, finished_at FROM trials"
        args: list[Any] = []
        if status is not None:
            wanted = list(status)
            sql += f" WHERE status IN ({', '.join('?' * len(wanted))})"
            args = wanted
        for tid, st, err, attempts, cfg, res, finished in self.conn.execute(sql + " ORDER BY rowid", args):
            yield {"trial_id": tid, "status": st, "error": err, "attempts": attempts,
                   "config": json.loads(cfg), "result": json.loads(res) if res else None,
                   "finished_at": finished}

    def finish_times(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT finished_at FROM trials ORDER BY finished_at")]


def _sql_value(value: Any) -> Any:
    return ",".join(value) if isinstance(value, tuple) else value


def _connect(uri: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        conn.isolation_level = ""  # "with conn" commits or rolls back one transaction
        if "mode=ro" not in uri:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed trial survives power loss
        return conn
    except sqlite3.DatabaseError as exc:
        path = uri.removeprefix("file:").split("?")[0]
        raise StoreError(f"{Path(path).parent}: {STORE_FILE} is not a readable SQLite database ({exc})") from None


def _schema() -> str:
    config_cols = ",\n  ".join(f"{name} {_SQL_TYPES[typ]}" for name, typ in field_types().items())
    metric_cols = ",\n  ".join(f"{m} REAL" for m in METRIC_COLUMNS)
    return f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE runs (id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT, info TEXT, summary TEXT);
CREATE TABLE trials (
  trial_id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed')),
  attempts INTEGER NOT NULL,
  error TEXT,
  finished_at TEXT NOT NULL,
  run_id INTEGER,
  seconds REAL,
  config_json TEXT NOT NULL,
  result_json TEXT,
  {config_cols},
  {metric_cols}
);
"""


def _metrics(result: TrialResult | None) -> dict[str, float | None]:
    if result is None:
        return {m: None for m in METRIC_COLUMNS}
    p, d = result.plain, result.dropout
    return {"test_mse_plain": p.test_mse, "test_mse_dropout": d.test_mse,
            "train_mse_plain": p.train_mse, "train_mse_dropout": d.train_mse,
            "gap_plain": p.gap, "gap_dropout": d.gap, "delta_test_mse": result.delta_test_mse}
