"""Run a search: open the store and the study, recover stale trials, run workers, sync, confirm.

    >>> from sweeps.search import run_search
    >>> summary = run_search("sweeps/where_dropout_helps.toml", workers=2)

Only this driver writes the store. Workers write each finished seed into the study (the
trial's user attribute ``result_seed_<seed>``); the driver copies seeds it has not stored yet
into the store, keyed by the seed-level ``trial_id`` (so a seed is stored once, however
many Optuna trials evaluated it, and a killed worker loses no finished seed).

Several drivers may share one RDB study, each with its own folder (and store), on one
machine or many: the budget is counted for the whole study (``_liveness.StudyLock``),
and each driver's store receives every seed of the study. A starting driver fails the
trials its own folder's workers left RUNNING (none of them is alive: the folder's lock
and the workers' shared lock say so), trials of any machine whose heartbeat is stale,
and queues each again; every worker repeats the heartbeat check before each ask. When
its own work is done a driver waits for trials still running elsewhere, so its
confirmation and report see the finished study. A journal study has one folder.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from analysis.records.objectives import OBJECTIVES
from bench import TrialConfig, TrialResult
from bench.locks import FileLock, LockBusy
from bench.trial import check_device

from ..identity import trial_id
from ..options import ExecutionOptions
from ..run import resolve_out_dir
from ..session import FolderSession, folder_session, open_or_create
from ..signals import exit_code, start_with_sigint_ignored
from ..store import Store, StoreError, StoreLocked, TrialRow, now_iso
from ._confirm import confirm_best
from ._backends import StudyBackend, StudyLock, mask_argv, study_backend
from ._liveness import ran_here
from ._objective import SEED_ATTR
from ._spec import SearchSpec, load_search_spec
from ._study import check_sampler_available, load_study, recover, snapshot, used_budget
from ._worker import WORKERS_LOCK, budget_left, work, worker_main

POLL_SECONDS = 0.5
WAIT_SECONDS = 2.0              # polling while trials run on other drivers
MAX_RESTARTS_PER_WORKER = 3     # replacement workers after abnormal deaths, per requested worker


@dataclass
class SearchSummary:
    out_dir: str
    study_name: str
    storage: str                     # masked URL, or the journal file
    budget: int | None
    counts: dict[str, int] = field(default_factory=dict)   # study trials by state
    used: int = 0                    # trials counted against the budget
    ran: int = 0                     # trials this folder's workers finished in this invocation
    recovered: int = 0               # dead trials (left RUNNING) failed at start, this invocation
    retried: int = 0                 # retries enqueued for them
    seeds_stored: int = 0            # seed-level rows in the store
    best: str = ""                   # the best trial so far, for progress lines (optimistic: see answer())
    confirmed: list[dict[str, Any]] = field(default_factory=list)   # this run's confirmation plan
    unconfirmed: str = ""            # why this run confirmed nothing, if it did not
    wall_seconds: float = 0.0
    interrupted: bool = False
    stop_signal: int = 0             # the signal that interrupted the run (sweeps.signals), 0 if none
    incomplete: bool = False         # the budget is not used up although nothing interrupted the run
    worker_deaths: int = 0

    def line(self) -> str:
        c = self.counts
        budget = f"/{self.budget}" if self.budget else ""
        return (f"{self.out_dir}: study {self.study_name!r}: {self.used}{budget} trials "
                f"(complete {c.get('COMPLETE', 0)}, failed {c.get('FAIL', 0)}, waiting {c.get('WAITING', 0)}); "
                f"this run: {self.ran} trials in {self.wall_seconds:.1f} s; {self.seeds_stored} seed-level "
                "results stored")

    def answer(self) -> list[str]:
        """The search's answer, read from its store: the confirmed score on fresh seeds with its
        interval first, beside the search's own (optimistic) score (``analysis.pages.search_report``)."""
        from analysis.pages.search_report import search_answer

        from ..records import load_search

        search = dataclasses.replace(load_search(self.out_dir), confirm=self.confirmed)   # this run's, or none
        return search_answer(search, unconfirmed=self.unconfirmed or "no confirmation stage has run")


@dataclass
class _SearchRun:
    """What the stages of one search invocation share: the study, where, how, and the tally."""
    spec: SearchSpec
    out: Path
    backend: StudyBackend             # where the study lives (its URL goes to the workers)
    opts: ExecutionOptions
    study: optuna.Study
    lock: StudyLock
    summary: SearchSummary
    progress: bool
    deadline: float | None = None
    sync: Any = None                  # _Sync: copies finished seeds into the store


def run_search(
    spec_or_path: SearchSpec | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    storage: str | None = None,
    workers: int | None = None,
    options: ExecutionOptions | None = None,
    confirm: bool = True,
    progress: bool = True,
    argv: list[str] | None = None,
) -> SearchSummary:
    """Run (or resume) a search into ``out_dir`` (default results/<name>/); see the module docstring.

    ``storage``: an RDB URL for the study (default: the journal file ``DIR/optuna.journal``).
    ``workers``: processes on the study (default: spec, else 1), one torch thread each; a
    shortcut for ``options.workers``. ``options.heartbeat``: seconds between an RDB
    worker's heartbeats; its trial is failed and retried by any driver after 3 missed
    (default 20, so a dead machine costs about a minute). Raises ConfigError (a subclass)
    for bad input, before anything is written. Writing the report is the caller's choice.
    """
    spec = spec_or_path if isinstance(spec_or_path, SearchSpec) else load_search_spec(spec_or_path)
    spec_text = "" if isinstance(spec_or_path, SearchSpec) else Path(spec_or_path).read_text(encoding="utf-8")
    options = options or ExecutionOptions()
    if workers is not None:
        options = dataclasses.replace(options, workers=workers)
    opts = options.resolve(spec.execution, default_workers=1)
    check_device(opts.device)
    check_sampler_available(spec)
    out = resolve_out_dir(spec, out_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = study_backend(storage, out, opts.heartbeat)
    shown = backend.shown
    rdb = backend.open() if backend.is_rdb else None    # a bad URL fails before any write
    summary = SearchSummary(out_dir=str(out), study_name=spec.name, storage=shown, budget=spec.n_trials)
    start = time.perf_counter()
    refusal = (f"{out}: the spec's objective, seeds, base or space differ from the stored search's; "
               "use another --out (or another name) for a new search")
    opener = functools.partial(open_or_create, kind="search", spec=spec, spec_text=spec_text,
                               refusal=lambda meta: refusal)
    with folder_session(out, opener) as session:
        run = _open_recovered(spec, backend, rdb or backend.open(), opts, summary, progress)
        session.begin(mask_argv(list(argv or sys.argv)), n_jobs=opts.workers, workers=opts.workers,
                      device=opts.device, engine="auto", threads_per_worker=1, storage=shown,
                      study_name=spec.name, sampler=spec.sampler, sampler_seed=spec.sampler_seed,
                      pruner=spec.pruner)
        session.store.set_meta(search_storage=shown, study_name=spec.name)
        run.sync = _Sync(session.store, session.run_id, run.study, spec, summary, progress, out)
        run.sync()
        if summary.recovered and progress:
            print(f"recovered {summary.recovered} trial(s) left RUNNING by a stopped process; "
                  f"{summary.retried} queued again", file=sys.stderr)
        run.deadline = time.time() + spec.timeout if spec.timeout else None
        _search_then_confirm(run, session, confirm)
        _finish(run, session, start)
    return summary


def _open_recovered(spec: SearchSpec, backend: StudyBackend, st: optuna.storages.BaseStorage,
                    opts: ExecutionOptions, summary: SearchSummary, progress: bool) -> _SearchRun:
    """Open (or create) the study and fail what dead processes left RUNNING, no worker of ours alive."""
    out = backend.out_dir
    workers_lock = _no_live_workers(out)
    try:
        lock = StudyLock(st, out, spec.name, backend)
        with lock:
            study = _open_study(spec, st, backend)
            summary.recovered, summary.retried = recover(study, spec.param_names, out, dead_pids=None)
    finally:
        workers_lock.release()
    return _SearchRun(spec, out, backend, opts, study, lock, summary, progress)


def _search_then_confirm(run: _SearchRun, session: FolderSession, confirm: bool) -> None:
    """Work the budget, then confirm the best on fresh seeds; a stop signal ends it cleanly."""
    spec, summary = run.spec, run.summary
    try:
        _drive(run)
        run.sync()
        summary.incomplete = budget_left(run.study, spec, run.deadline)
        summary.unconfirmed = ("confirmation skipped (--no-confirm)" if not confirm else
                               "the spec confirms none (confirm.top = 0)" if spec.confirm_top <= 0 else
                               "confirmation has not run: the budget is not used up" if summary.incomplete else "")
        if not summary.unconfirmed:
            summary.confirmed = confirm_best(session, run.study, spec, run.opts, run.progress)
            summary.unconfirmed = "" if summary.confirmed else "no trial completed on every search seed"
    except KeyboardInterrupt as exc:          # Ctrl-C, or SIGTERM/SIGHUP under sweeps.signals
        summary.interrupted = True
        summary.unconfirmed = summary.unconfirmed or "confirmation has not run: the search was interrupted"
        summary.stop_signal = exit_code(exc) - 128
        with run.lock:
            recover(run.study, spec.param_names, run.out, dead_pids={os.getpid()})   # in-process trial, if any


def _finish(run: _SearchRun, session: FolderSession, start: float) -> None:
    """Store the last seeds, the study's snapshot and the confirmation; close the run's record."""
    summary, store = run.summary, session.store
    run.sync()
    summary.seeds_stored = len(store.statuses())
    store.set_meta(search_study=json.dumps(snapshot(run.study)),
                   search_confirm=json.dumps(summary.confirmed or _stored_confirm(store)))
    summary.wall_seconds = time.perf_counter() - start
    session.end({"ran": summary.ran, "used": summary.used, "counts": summary.counts,
                 "recovered": summary.recovered, "retried": summary.retried,
                 "seeds_stored": summary.seeds_stored, "interrupted": summary.interrupted,
                 "wall_seconds": summary.wall_seconds, "ended_at": now_iso()})


def _open_study(spec: SearchSpec, st: optuna.storages.BaseStorage, backend: StudyBackend) -> optuna.Study:
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(st, include_best_trial=False)}
    if spec.name in existing:
        have = [d.name.lower() for d in existing[spec.name].directions]
        if have != list(spec.directions):
            raise StoreError(f"{backend.shown}: study {spec.name!r} optimises {have}, "
                             f"the spec's objective {spec.objective!r} needs {list(spec.directions)}")
    study = load_study(spec, st, create=True)
    if not study.trials:
        # the seed experiment's own configuration first: the search starts from the known point
        study.enqueue_trial(spec.seed_experiment_params(), user_attrs={"seed_experiment": True})
        study.set_user_attr("objective", spec.objective)
    return study


def _no_live_workers(out: Path) -> FileLock:
    lock = FileLock(out / WORKERS_LOCK)      # live workers hold it shared
    try:
        lock.acquire(wait=False)
    except LockBusy:
        raise StoreLocked(f"{out}: search workers of an earlier run are still running; "
                          "wait for them or stop them first") from None
    return lock


def _drive(run: _SearchRun) -> None:
    """Work until the budget is used, then (RDB) wait until no trial runs anywhere.

    While waiting, dead trials elsewhere are failed and retried; a retry puts budget back,
    and this driver works again.
    """
    study, spec, out, deadline, sync = run.study, run.spec, run.out, run.deadline, run.sync
    told = 0
    while True:
        if run.opts.workers == 1:
            work(study, spec, out, run.opts.device, deadline, on_trial_done=sync)
        elif not _run_workers(run):
            return                                 # workers keep dying: give up, the rerun goes on
        if not run.backend.is_rdb:
            return                                 # a journal study has no other driver
        while True:
            sync()
            with run.lock:
                recover(study, spec.param_names, out, dead_pids=set())
            trials = study.get_trials(deepcopy=False)       # one read for both questions
            if budget_left(study, spec, deadline, trials):
                break
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if not running or (deadline is not None and time.time() >= deadline):
                return                             # past its own timeout a driver stops waiting too
            if run.progress and running != told:
                told = running
                print(f"[{spec.name}] waiting for {running} trial(s) running on other drivers",
                      file=sys.stderr, flush=True)
            time.sleep(WAIT_SECONDS)


def _run_workers(run: _SearchRun) -> bool:
    """N worker processes until the budget is used; False if they kept dying with budget left."""
    study, spec, out, deadline, sync, summary = run.study, run.spec, run.out, run.deadline, run.sync, run.summary
    n, lock = run.opts.workers, run.lock
    ctx = multiprocessing.get_context("spawn")    # a clean interpreter: no forked torch state

    stop = ctx.Event()                            # set before the driver forwards a SIGINT

    def start() -> multiprocessing.Process:
        p = ctx.Process(target=worker_main, args=(spec, str(out), run.backend.url, run.opts.device, deadline,
                                                  run.opts.heartbeat, os.getpid(), stop), daemon=True)
        start_with_sigint_ignored(p)              # a Ctrl-C cannot break its start-up; it reads `stop`
        return p

    procs: list[multiprocessing.Process] = []
    restarts, gave_up = 0, False
    try:
        for _ in range(n):                        # inside the try: a stop while starting stops those started
            procs.append(start())
        while procs:
            time.sleep(POLL_SECONDS)
            sync()
            for p in [p for p in procs if not p.is_alive()]:
                procs.remove(p)
                p.join()
                if p.exitcode != 0:           # killed or crashed: its trial is dead, retry it
                    summary.worker_deaths += 1
                    with lock:
                        recover(study, spec.param_names, out, dead_pids={p.pid})
                    if budget_left(study, spec, deadline):
                        if restarts >= MAX_RESTARTS_PER_WORKER * n:
                            gave_up = True
                        else:
                            restarts += 1
                            procs.append(start())
    except KeyboardInterrupt:
        # a terminal's Ctrl-C reached them too; a kill -INT, SIGTERM or SIGHUP to the driver did
        # not; a worker still starting ignores SIGINT and reads `stop` instead
        stop.set()
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
        with lock:
            recover(study, spec.param_names, out, dead_pids={p.pid for p in procs})
        raise
    return not gave_up


class _Sync:
    """Copy finished seeds from the study into the store; print progress when trials finish."""

    def __init__(self, store: Store, run_id: int, study: optuna.Study, spec: SearchSpec,
                 summary: SearchSummary, progress: bool, out: Path) -> None:
        self.store, self.run_id, self.study, self.spec = store, run_id, study, spec
        self.summary, self.progress, self.out = summary, progress, out
        self.stored = set(store.statuses())
        self.last_finished: int | None = None      # finished trials in the study at the last call
        self.here_at_start = 0

    def __call__(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        rows = []
        for t in trials:
            for key, rec in t.user_attrs.items():
                if key.startswith(SEED_ATTR) and rec["trial_id"] not in self.stored:
                    result = TrialResult.from_dict(rec["result"])
                    cfg = TrialConfig.from_dict(result.config)
                    assert trial_id(cfg) == rec["trial_id"], "seed record does not match its config"
                    rows.append(TrialRow(rec["trial_id"], cfg, rec["status"], result, None, 1, rec["seconds"]))
                    self.stored.add(rec["trial_id"])
        if rows:
            self.store.put(rows, self.run_id)
        finished = sum(t.state.is_finished() for t in trials)
        first = self.last_finished is None
        if first:
            self.here_at_start = self._finished_here(trials)
        changed, self.last_finished = finished != self.last_finished and not first, finished
        s = self.summary
        s.ran = self._finished_here(trials) - self.here_at_start
        s.used = used_budget(trials)
        s.counts = {}
        for t in trials:
            s.counts[t.state.name] = s.counts.get(t.state.name, 0) + 1
        s.seeds_stored = len(self.stored)
        if first or changed:                       # another read of the study: only when it moved
            s.best = best_line(self.study, self.spec, trials)
        if changed and self.progress:
            budget = f"/{self.spec.n_trials}" if self.spec.n_trials else ""
            print(f"[{self.spec.name}] {s.used}{budget} trials, {s.seeds_stored} seeds stored"
                  f"{'; ' + s.best if s.best else ''}", file=sys.stderr, flush=True)

    def _finished_here(self, trials: list) -> int:
        return sum(t.state.is_finished() and ran_here(t, self.out) for t in trials)


def best_line(study: optuna.Study, spec: SearchSpec, trials: list | None = None) -> str:
    """The best trial so far, in one line; ``trials``: the study's trials, if just read."""
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE and "pruned_after_seeds" not in t.user_attrs]
    if not done:
        return ""
    if len(spec.directions) > 1:
        return f"Pareto front: {len(study.best_trials)} trial(s)"
    best = min(done, key=lambda t: OBJECTIVES[spec.objective].lower_is_better(t.value))
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    return f"best {spec.objective} {best.value:.4g} (trial {best.number}: {params})"


def _stored_confirm(store: Store) -> list[dict[str, Any]]:
    return json.loads(store.meta().get("search_confirm", "[]") or "[]")
