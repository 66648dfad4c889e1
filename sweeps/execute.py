"""Work units: what executors move to workers (lists of trial configs), and what comes back.

A work unit is a list of configs that suit one stacked computation (same network
shape and training settings) and keeps every dropout rate of a (seed, settings) family
together, so its plain arm (and any comparator arms) is trained once and paired with each rate. Workers return
plain data; only the driver writes the store. ``run_unit`` is the worker's entry point;
the executors that carry units to workers live in ``sweeps.executors``.
"""
from __future__ import annotations

import math
import os
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from bench import TrialConfig, TrialResult, plain_arm
from bench.results import trial_arms

if TYPE_CHECKING:
    from bench.trial import GroupSize   # bench.trial imports torch: the driver's status and --help do not


@dataclass(frozen=True)
class WorkUnit:
    index: int
    cfgs: tuple[TrialConfig, ...]


@dataclass
class Outcome:
    """What a worker sends back for one trial: plain data only."""
    status: str                    # "ok", "diverged", "failed"
    result: dict | None            # TrialResult.to_dict()
    error: str | None
    seconds: float                 # share of the unit's compute time
    worker: str = ""               # what trained it, "host:pid:thread"
    span: tuple[float, float] | None = None   # its unit's time in the training code: (start, end), epoch seconds


def make_units(cfgs: Sequence[TrialConfig], arms_per_unit: int) -> list[WorkUnit]:
    """Pack trials into units of about ``arms_per_unit`` distinct arms.

    Families (trials sharing a plain arm) are never split; families are packed in the
    order of their group key, so a unit rarely mixes network shapes.
    """
    from bench.engine import group_key  # torch: only when work is made

    families: dict = defaultdict(list)
    for c in cfgs:
        families[plain_arm(c)].append(c)
    ordered = sorted(families.items(), key=lambda kv: (repr(group_key(kv[0])), kv[0].cfg.seed))
    units: list[list[TrialConfig]] = []
    current: list[TrialConfig] = []
    current_key, arms = None, 0
    for plain, members in ordered:
        key = group_key(plain)
        size = len({a for c in members for a in trial_arms(c).values()})
        if current and (arms + size > arms_per_unit or key != current_key):
            units.append(current)
            current, arms = [], 0
        current.extend(members)
        arms += size
        current_key = key
    if current:
        units.append(current)
    # Longest first: the last units to finish are short ones, so workers idle less at the end.
    units.sort(key=_unit_cost, reverse=True)
    return [WorkUnit(i, tuple(u)) for i, u in enumerate(units)]


def _unit_cost(cfgs: Sequence[TrialConfig]) -> float:
    """Relative training cost: distinct arms x steps x the multiply-adds of one forward pass."""
    arms = {a for c in cfgs for a in trial_arms(c).values()}
    return sum(a.cfg.steps * a.cfg.n_train * (a.cfg.width ** 2 * (a.cfg.depth - 1) + 2 * a.cfg.width)
               for a in arms)


UNIT_ARMS = 8  # about a second of work at the seed config: dispatch and commit costs stay small, the tail short


def arms_per_unit(n_trials: int, n_workers: int, cap: int = UNIT_ARMS) -> int:
    """Big enough to amortise dispatch and storing, small enough to keep every worker busy.

    Units are how work is handed out; inside a unit the engine stacks arms in groups
    sized for the machine (perf.tune: measured once per network shape, by the driver), so the two compose.
    """
    balanced = math.ceil(2 * n_trials / max(1, 4 * n_workers))
    return max(2, min(cap, balanced))


def run_unit(cfgs: Sequence[TrialConfig], engine: str, group_size: GroupSize, threads: int) -> list[Outcome]:
    """Worker entry point: train a unit; a failing trial becomes a 'failed' outcome. Pure.

    ``group_size`` is what the driver chose (perf.choice.worker_sizes): a worker measures nothing.
    """
    import torch

    from bench import run_trials

    torch.set_num_threads(threads)
    start, wall_start = time.perf_counter(), time.time()
    try:
        results: list[TrialResult | Exception] = list(
            run_trials(list(cfgs), engine=engine, group_size=group_size))
    except Exception:  # isolate the failing trial(s): rerun one by one
        results = []
        for c in cfgs:
            try:
                results.append(run_trials([c], engine="single")[0])
            except Exception as exc:  # noqa: BLE001 - any error is a result
                results.append(exc)
    elapsed = time.perf_counter() - start
    share, span, worker = elapsed / max(1, len(cfgs)), (wall_start, wall_start + elapsed), _worker_name()
    out = []
    for r in results:
        if isinstance(r, Exception):
            msg = "".join(traceback.format_exception_only(type(r), r)).strip()
            out.append(Outcome("failed", None, msg, share, worker, span))
        else:
            out.append(Outcome(r.status, r.to_dict(), None, share, worker, span))
    return out


def _worker_name() -> str:
    """host:pid:thread: a Dask worker process may run units in several threads at once."""
    import socket
    import threading

    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


UnitDone = Callable[[WorkUnit, list[Outcome], int], None]  # (unit, outcomes, attempts)
