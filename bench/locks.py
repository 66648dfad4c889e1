"""Every file lock of the harness: one ``flock`` primitive, the kernel's, never left stale.

An ``flock`` belongs to an open file description; the kernel drops it when the holder
closes the file or dies, so a killed driver or worker never leaves a lock behind. Uses:

- ``DIR/.lock``, exclusive, held by the one driver of an output folder (:class:`FileLock`
  with ``wait=False``), read by ``status`` (:func:`is_held`);
- ``DIR/.search-workers.lock``, shared by a search's live workers, exclusive for a
  starting driver that must know none is left (``shared=True`` / ``wait=False``);
- the study-wide ask lock and the journal backend's lock (``acquire``/``release``, the
  duck type Optuna's ``JournalFileBackend`` takes as ``lock_obj``).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any


class LockBusy(Exception):
    """``acquire(wait=False)`` found the lock held by another open file; ``holder`` is what it wrote."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by {holder}")
        self.path, self.holder = path, holder


class FileLock:
    """An ``flock`` on ``path`` (created if missing): exclusive, or shared with ``shared=True``.

    ``acquire(wait=True)`` blocks; ``wait=False`` raises :class:`LockBusy` at once.
    ``note`` is written into the file once an exclusive lock is held (e.g. the holder's
    pid), so a refused caller can say who holds it. Also a context manager.
    """

    def __init__(self, path: str | os.PathLike, *, shared: bool = False, note: str | None = None) -> None:
        self.path = Path(path)
        self.shared, self.note = shared, note
        self._fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockBusy(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        if self.note is not None and not self.shared:
            os.ftruncate(fd, 0)
            os.write(fd, self.note.encode())
        self._fd = fd
        return True                     # Optuna's lock_obj protocol returns a bool

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # unlock first: a forked child sharing the open file would otherwise keep it held
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def is_held(path: str | os.PathLike) -> bool:
    """Does some process hold ``path`` exclusively? Never creates the file."""
    path = Path(path)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
