"""How a run executes: one frozen value, resolved once from the flags over the spec's [execution].

Both drivers take an :class:`ExecutionOptions`; ``resolve`` fills what the flags left
unset from the spec, then the defaults, validates everything and raises SpecError (one
line, exit 2) for a bad value, before anything is written.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

from bench import ENGINES, ConfigError, TrialConfig

from .executors import BACKENDS
from .spec import SpecError

HEARTBEAT_SECONDS = 20        # default interval between a search worker's heartbeats (RDB only)


@dataclass(frozen=True)
class ExecutionOptions:
    workers: int | None = None        # worker processes, one torch thread each; -1: one per core
    device: str | None = None         # "cpu", "cuda" or "cuda:N"
    engine: str | None = None         # "auto", "single" or "batched" (bench.ENGINES)
    group_size: int | str | None = None  # arms per stacked computation; "auto" (or None): perf.tune measures it
    backend: str = "local"            # a name in sweeps.executors.BACKENDS: "local" processes, "inprocess", "dask"
    scheduler: str | None = None      # the Dask scheduler, tcp://HOST:PORT (with backend "dask")
    heartbeat: int = HEARTBEAT_SECONDS  # seconds between a search worker's heartbeats (RDB studies)

    def resolve(self, execution: Mapping[str, Any], default_workers: int) -> "ExecutionOptions":
        """Unset fields from the spec's ``execution`` table, then defaults; validated, workers a count.

        ``default_workers``: the driver's default when neither flag nor spec says (-1: all
        cores). A CUDA device gets one worker: one process feeds the GPU.
        """
        def pick(name: str, *spec_keys: str, default: Any = None) -> Any:
            if getattr(self, name) is not None:
                return getattr(self, name)
            return next((execution[k] for k in spec_keys if k in execution), default)

        workers = pick("workers", "workers", "n_jobs", default=default_workers)
        check_workers(workers)
        opts = dataclasses.replace(
            self, workers=(os.cpu_count() or 1) if workers == -1 else workers,
            device=pick("device", "device", default="cpu"), engine=pick("engine", "engine", default="auto"),
            group_size=pick("group_size", "group_size"))
        opts.check()
        if opts.device.startswith("cuda"):
            opts = dataclasses.replace(opts, workers=1)
        return opts

    def check(self) -> None:
        if self.device is not None:
            try:
                TrialConfig(device=self.device)
            except ConfigError as exc:
                raise SpecError(f"--device: {exc}") from None
        if self.engine is not None and self.engine not in ENGINES:
            raise SpecError(f"--engine {self.engine!r}: must be one of {', '.join(ENGINES)}")
        if self.group_size not in (None, "auto") and (_not_int(self.group_size) or self.group_size < 1):
            raise SpecError(f"--group-size {self.group_size!r}: must be 'auto' or an integer >= 1")
        if self.backend not in BACKENDS:
            raise SpecError(f"--backend {self.backend!r}: must be one of {', '.join(BACKENDS)}")
        if BACKENDS[self.backend].needs_scheduler != (self.scheduler is not None):
            clustered = "/".join(n for n, b in BACKENDS.items() if b.needs_scheduler)
            raise SpecError(f"--backend {clustered} and --scheduler tcp://HOST:PORT go together")
        if _not_int(self.heartbeat) or self.heartbeat < 1:
            raise SpecError(f"--heartbeat {self.heartbeat!r}: must be a whole number of seconds >= 1")


def group_size_arg(text: str) -> int | str:
    """argparse type of ``--group-size``: 'auto' (measured per network shape, perf.tune) or a number of arms."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 1, got {text!r}")
    return value


def check_workers(value: Any) -> None:
    if _not_int(value) or value == 0 or value < -1:
        raise SpecError(f"--workers {value!r}: must be a positive integer (or -1 for all cores)")


def _not_int(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)
