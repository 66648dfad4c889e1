"""Search workers: each asks the study for a trial, trains it and tells, until the budget is used.

The budget is counted under an flock on ``DIR/.search-ask.lock`` (check, then ask, as one
step), so N workers stop at exactly ``n_trials`` counted trials. A worker also holds a
shared flock on ``DIR/.search-workers.lock`` for its whole life: a new driver that cannot
take it exclusively knows workers of an earlier run are still alive.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import optuna

from ._objective import evaluate
from ._spec import SearchSpec
from ._study import load_study, open_storage, used_budget

ASK_LOCK = ".search-ask.lock"
WORKERS_LOCK = ".search-workers.lock"


@contextmanager
def flocked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)     # closing the descriptor releases the lock


def budget_left(study: optuna.Study, spec: SearchSpec, deadline: float | None) -> bool:
    if deadline is not None and time.time() >= deadline:
        return False
    return spec.n_trials is None or used_budget(study.get_trials(deepcopy=False)) < spec.n_trials


def work(study: optuna.Study, spec: SearchSpec, out_dir: Path, device: str, deadline: float | None,
         on_trial_done: Callable[[], None] | None = None) -> int:
    """Run trials until the budget or the deadline; returns the number this worker ran."""
    ran = 0
    while True:
        with flocked(out_dir / ASK_LOCK):
            if not budget_left(study, spec, deadline):
                return ran
            trial = study.ask()
            trial.set_user_attr("worker_pid", os.getpid())
        evaluate(study, trial, spec, device)
        ran += 1
        if on_trial_done is not None:
            on_trial_done()


def worker_main(spec: SearchSpec, out_dir: str, storage_url: str | None, device: str,
                deadline: float | None) -> None:
    """Process entry point: one torch thread; Ctrl-C fails the running trial (retried later) and exits."""
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(out_dir)
    with flocked(out / WORKERS_LOCK, fcntl.LOCK_SH):
        study = load_study(spec, open_storage(out, storage_url))
        try:
            work(study, spec, out, device, deadline)
        except KeyboardInterrupt:
            raise SystemExit(130) from None
