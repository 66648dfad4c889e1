"""Search workers: each asks the study for a trial, trains it and tells, until the budget is used.

Before each ask a worker, holding the ``StudyLock``, fails the study's dead trials and
queues their retries, checks the budget and asks, then records who it is: one step for
the whole study, so any number of workers and drivers stop at exactly ``n_trials``
counted trials. While it trains, an RDB worker records a heartbeat. A worker also holds
a shared flock on ``DIR/.search-workers.lock`` for its whole life: a new driver that
cannot take it exclusively knows workers of an earlier run in that folder are alive.
"""
from __future__ import annotations

import signal
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import optuna

from bench.locks import FileLock
from ..parent_watch import exit_with_parent
from ..signals import STOP_SIGNALS
from ..options import HEARTBEAT_SECONDS
from ._backends import StudyLock, open_storage
from ._liveness import heartbeat, identify
from ._objective import evaluate
from ._optuna_compat import storage_trial_id, study_storage
from ._spec import SearchSpec
from ._study import load_study, make_sampler, recover, used_budget

WORKERS_LOCK = ".search-workers.lock"


def budget_left(study: optuna.Study, spec: SearchSpec, deadline: float | None,
                trials: list[optuna.trial.FrozenTrial] | None = None) -> bool:
    if deadline is not None and time.time() >= deadline:
        return False
    if spec.n_trials is None:
        return True
    return used_budget(study.get_trials(deepcopy=False) if trials is None else trials) < spec.n_trials


def work(study: optuna.Study, spec: SearchSpec, out_dir: Path, device: str, deadline: float | None,
         on_trial_done: Callable[[], None] | None = None) -> int:
    """Run trials until the budget or the deadline; returns the number this worker ran."""
    storage = study_storage(study)
    lock = StudyLock(storage, out_dir, spec.name)
    ran = 0
    while True:
        with lock:
            # one read of the study per ask (on an RDB each read is a round of queries)
            trials = study.get_trials(deepcopy=False)
            # dead trials of other drivers (RDB), and a retry for every stopped trial that
            # has none yet: queued before this ask, so no new trial takes its budget
            if recover(study, spec.param_names, out_dir, dead_pids=set(), trials=trials) != (0, 0):
                trials = study.get_trials(deepcopy=False)
            if not budget_left(study, spec, deadline, trials):
                return ran
            study.sampler = make_sampler(spec, asked=len(trials))
            with warnings.catch_warnings():    # Optuna expects heartbeats from optimize(); `heartbeat` beats here
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                trial = study.ask()
            try:
                identify(trial, out_dir)          # before the lock opens: never RUNNING unwatched
            except optuna.exceptions.UpdateFinishedTrialError:
                continue                          # failed as an orphan by another process; it queued a retry
        with heartbeat(storage, storage_trial_id(trial)):
            evaluate(study, trial, spec, device)
        ran += 1
        if on_trial_done is not None:
            on_trial_done()


def worker_main(spec: SearchSpec, out_dir: str, storage_url: str | None, device: str,
                deadline: float | None, heartbeat_seconds: int = HEARTBEAT_SECONDS,
                driver_pid: int | None = None, stop: Any = None) -> None:
    """Process entry point: one torch thread; Ctrl-C fails the running trial (retried later) and exits.

    With ``driver_pid`` the worker ends itself when that driver dies without stopping it
    (its trial is left RUNNING, and the next driver fails and retries it). The driver
    starts workers with SIGINT ignored, so a stop during the interpreter's start-up breaks
    nothing; ``stop`` (a multiprocessing Event) is set before the driver sends SIGINT, so
    a worker that missed the signal while starting sees the request here.
    """
    try:
        # started with SIGINT ignored and the stop signals blocked (sweeps.signals): handle
        # SIGINT, unblock, and honour a stop the driver asked for while this was starting
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        import torch

        if driver_pid is not None:
            exit_with_parent(driver_pid)
        torch.set_num_threads(1)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        out = Path(out_dir)
        with FileLock(out / WORKERS_LOCK, shared=True):
            study = load_study(spec, open_storage(out, storage_url, heartbeat_seconds))
            work(study, spec, out, device, deadline)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
