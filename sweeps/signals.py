"""How a driver stops: SIGTERM and SIGHUP as Ctrl-C; a second signal at once.

Batch schedulers (``timeout``, systemd, Slurm, Kubernetes) send SIGTERM before SIGKILL,
and a closed terminal sends SIGHUP. Inside :func:`stop_on_signals` each of SIGINT,
SIGTERM and SIGHUP raises :class:`Stopped` (a ``KeyboardInterrupt``) in the main
thread, so the drivers' Ctrl-C path runs: in-flight work is abandoned, worker
processes are shut down, what is stored stays stored, the resume command is printed.
The exit code is 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a
shell reports a process killed by that signal. A second signal while stopping exits at
once with the same code: the store is crash-safe, so nothing stored is lost.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by a stop signal; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: BaseException | None) -> int:
    """128 + the stopping signal's number; a plain KeyboardInterrupt counts as SIGINT."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def signal_name(exc: BaseException | None) -> str:
    return signal.Signals(getattr(exc, "signum", signal.SIGINT)).name


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise Stopped; a second one exits at once.

    Outside the main thread (where Python cannot install handlers) it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame) -> None:  # noqa: ARG001 - the signal module's signature
        if received:                          # already stopping: the user means now
            os._exit(128 + signum)
        received.append(signum)
        raise Stopped(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue                          # nohup's SIGHUP (or an ignored SIGINT) stays ignored
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def start_with_sigint_ignored(process) -> None:
    """``process.start()`` (a spawned multiprocessing process) with SIGINT ignored in the child.

    A signal's disposition survives exec (a signal mask does not), so the child's
    interpreter starts with SIGINT ignored and a Ctrl-C meanwhile cannot break it
    mid-import with a traceback; the child's entry point installs its handler and checks
    for a stop request it may have missed, and unblocks the stop signals (the child may
    inherit the blocked mask). Here every stop signal is blocked meanwhile, so
    that no handler interrupts ``start()`` half-way through writing the child's start-up
    data; one that arrives stays pending (Linux queues a blocked signal even while it is
    ignored) and reaches this process's own handler on unblocking, never lost.
    """
    if threading.current_thread() is not threading.main_thread():
        process.start()                       # handlers belong to the main thread: change nothing
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))
