"""One output folder's life cycle, shared by every driver (sweep, search, confirmation, validate).

    folder -> refuse a foreign one -> lock -> open or create the store
           -> begin a run (provenance) -> store outcomes as they arrive -> end the run -> release

The drivers differ only in how they open their kind of store (a sweep's or a search's
SQLite ``Store``; validate's JSON lines, ``sweeps.validate.ValidationStore``) and what they run;
:func:`folder_session` does the rest, in this order, and releases everything on the way
out whatever happens (a stop signal included). Only the process holding the session
writes the store.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bench import TrialResult

from .execute import Outcome, WorkUnit
from .identity import trial_id
from .provenance import code_version, host_info, package_versions
from .store import STORE_FILE, FolderLock, Store, StoreError, TrialRow, is_scratch, store_path


@dataclass
class FolderSession:
    """An open, locked output folder: its store and the id of the run being recorded."""

    out: Path
    store: Store        # or any store with begin_run, end_run and close (validate's)
    run_id: int | None = None

    def begin(self, argv: Sequence[str] | None, **settings: Any) -> int:
        """Record the start of a run: the command, code and package versions, host, ``settings``."""
        self.run_id = self.store.begin_run({
            "argv": list(argv or sys.argv), "code_version": code_version(), "packages": package_versions(),
            **host_info(), **settings,
        })
        return self.run_id

    def end(self, summary: dict[str, Any]) -> None:
        if self.run_id is not None:
            self.store.end_run(self.run_id, summary)

    def store_outcomes(self, unit: WorkUnit, outcomes: Sequence[Outcome], attempts: int) -> list[TrialRow]:
        """Commit one work unit's outcomes (one transaction) and return the stored rows."""
        rows = []
        for cfg, o in zip(unit.cfgs, outcomes):
            result = TrialResult.from_dict(o.result) if o.result is not None else None
            rows.append(TrialRow(trial_id(cfg), cfg, o.status, result, o.error, attempts, o.seconds))
        self.store.put(rows, self.run_id)
        return rows


def open_or_create(out: Path, kind: str, spec: Any, spec_text: str, *, refusal: Callable[[dict[str, str]], str],
                   archive: bool = False) -> Store:
    """The folder's store of ``kind`` for ``spec`` (a sweep's or a search's): created, or opened and checked.

    A store of another kind is refused. One whose shared settings differ from the spec's
    is refused with ``refusal(meta)``, unless ``archive``: then it moves to
    ``archive/store-<time>/`` and a new store is created. Otherwise the latest spec and
    its text are remembered (a grown grid or seed list, the same shared settings).
    """
    def create() -> Store:
        return Store.create(out, kind=kind, name=spec.name, spec=spec.to_dict(), spec_text=spec_text,
                            shared=spec.shared_settings())

    if not store_path(out).exists():
        return create()
    store = Store.open(out)
    meta = store.meta()
    if meta.get("kind") != kind:
        store.close()
        raise StoreError(f"{out}: holds a {meta.get('kind')} store, not a {kind}")
    if meta.get("shared") != spec.shared_settings():
        store.close()
        if not archive:
            raise StoreError(refusal(meta))
        folder = out / "archive" / f"store-{time.strftime('%Y%m%d-%H%M%S')}"
        folder.mkdir(parents=True)
        for name in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm"):
            if (out / name).exists():
                shutil.move(str(out / name), str(folder / name))
        return create()
    store.set_meta(spec=json.dumps(spec.to_dict(), sort_keys=True), spec_text=spec_text)
    return store


def refuse_foreign(out: Path, store_file: str = STORE_FILE) -> None:
    """A folder holding files but no store (``store_file``) is someone else's: never write into it."""
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a folder")
    if out.is_dir() and not (out / store_file).exists() and any(not is_scratch(p.name) for p in out.iterdir()):
        raise StoreError(f"{out}: folder is not empty and holds no dropout-bench store; choose another --out")


@contextmanager
def folder_session(out: Path, open_store: Callable[[Path], Any], *,
                   store_file: str = STORE_FILE) -> Iterator[FolderSession]:
    """Lock ``out`` (refusing a foreign folder first), open its store with ``open_store``, yield.

    ``open_store(out)`` creates the store or opens and checks an existing one; it raises
    StoreError for a store of another kind or other settings; ``store_file`` is the file
    that marks a folder as one of its kind. The lock is taken before
    anything is created, so two drivers never race; it is the kernel's, so a killed
    driver leaves none behind.
    """
    refuse_foreign(out, store_file)      # before the lock file is created in someone else's folder
    lock = FolderLock(out).acquire()
    try:
        store = open_store(out)
        try:
            yield FolderSession(out, store)
        finally:
            store.close()
    finally:
        lock.release()
