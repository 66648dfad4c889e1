"""Run a sweep: expand the spec, skip what the store already has, run the rest, store each result.

    >>> from sweeps import run_sweep
    >>> summary = run_sweep("sweeps/quick.toml", workers=2)
"""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench import TrialConfig

from .execute import Outcome, WorkUnit, arms_per_unit, make_units
from .executors import Executor, make_executor
from .identity import trial_id
from .options import ExecutionOptions
from .session import FolderSession, folder_session, open_or_create
from .signals import exit_code
from .spec import SweepSpec, load_spec
from .store import Store, now_iso

DEFAULT_RESULTS = Path("results")


@dataclass
class SweepSummary:
    out_dir: str
    total: int                       # trials in the spec
    skipped: int                     # already in the store before this run
    ran: int = 0
    ok: int = 0
    diverged: int = 0
    failed: int = 0
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0     # time workers spent inside the training code
    n_workers: int = 1
    interrupted: bool = False
    stop_signal: int = 0             # the signal that interrupted the run (sweeps.signals), 0 if none
    counts: dict[str, int] = field(default_factory=dict)   # whole store, by status
    # worker-seconds before each worker's first unit and after its last one (see overhead_parts)
    startup_seconds: float = 0.0
    tail_seconds: float = 0.0

    @property
    def overhead(self) -> float:
        """Share of worker capacity not spent training: scheduling, storing, start-up, idle tails."""
        capacity = self.wall_seconds * self.n_workers
        return 1.0 - self.compute_seconds / capacity if capacity > 0 and self.ran else 0.0

    @property
    def overhead_parts(self) -> dict[str, float]:
        """The overhead split, as shares of worker capacity (they add up to ``overhead``).

        start-up: from the start of the run to each worker's first unit (process start,
        ``import torch``); tail: from each worker's last unit to the end of the run, and the
        whole run of a worker that got no unit; between units: the rest (handing units out,
        sending results back, time the driver's storing takes from the workers' cores).
        """
        capacity, total = self.wall_seconds * self.n_workers, self.overhead
        if capacity <= 0 or not self.ran or self.interrupted or total <= 0 or not (self.startup_seconds
                                                                                or self.tail_seconds):
            return {}   # nothing measured, an interrupted run (abandoned units), or no local workers' spans
        start = min(max(0.0, self.startup_seconds / capacity), total)
        tail = min(max(0.0, self.tail_seconds / capacity), total - start)
        return {"start-up": start, "tail": tail, "between units": total - start - tail}

    def line(self) -> str:
        c = self.counts
        if not self.ran:
            return (f"{self.out_dir}: nothing to do; all {self.total} trials are already stored "
                    f"(ok {c.get('ok', 0)}, diverged {c.get('diverged', 0)}, failed {c.get('failed', 0)})")
        return (f"{self.out_dir}: {sum(c.values())}/{self.total} trials stored "
                f"(ok {c.get('ok', 0)}, diverged {c.get('diverged', 0)}, failed {c.get('failed', 0)}); "
                f"this run: {self.ran} trials in {self.wall_seconds:.1f} s on {self.n_workers} worker(s), "
                f"harness overhead {100 * self.overhead:.1f}%{self._parts_text()}")

    def _parts_text(self) -> str:
        parts = self.overhead_parts
        return (" (" + ", ".join(f"{name} {100 * v:.1f}%" for name, v in parts.items()) + ")") if parts else ""


def resolve_out_dir(spec: Any, out_dir: str | os.PathLike | None) -> Path:
    """Where a sweep's or search's store goes: ``out_dir`` if given, else results/<spec.name>/."""
    return Path(out_dir) if out_dir is not None else DEFAULT_RESULTS / spec.name


def run_sweep(
    spec_or_path: SweepSpec | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    *,
    options: ExecutionOptions | None = None,
    retry_failed: bool = False,
    force_new: bool = False,
    progress: bool = True,
    argv: list[str] | None = None,
) -> SweepSummary:
    """Run every (cell x seed) of a spec exactly once into ``out_dir`` (default results/<name>/).

    ``workers`` (processes; default: the spec's, else all cores) is a shortcut for
    ``options.workers``; ``options`` also sets the device, engine, group size and backend
    (``backend="dask"`` runs the units on the Dask cluster at ``scheduler``). Rerunning
    resumes: finished trials are skipped (failed ones too, unless ``retry_failed``). A
    spec whose shared settings differ from the stored one is refused unless ``force_new``,
    which archives the old store first. Raises ConfigError (a subclass) for bad input,
    before anything is written. Writing the report is the caller's choice (the CLI does
    after a finished run).
    """
    spec = spec_or_path if isinstance(spec_or_path, SweepSpec) else load_spec(spec_or_path)
    spec_text = _spec_text(spec_or_path)
    options = options or ExecutionOptions()
    if workers is not None:
        options = dataclasses.replace(options, workers=workers)
    opts = options.resolve(spec.execution, default_workers=-1)
    configs = spec.configs(device=opts.device)
    from bench.trial import check_device      # torch: only once there is work to run
    from perf.choice import group_size_provenance, worker_sizes

    check_device(opts.device)
    out = resolve_out_dir(spec, out_dir)
    executor = make_executor(opts)            # a Dask scheduler that cannot be reached fails here
    try:
        opener = functools.partial(open_or_create, kind="sweep", spec=spec, spec_text=spec_text,
                                   refusal=_refusal(spec, out), archive=force_new)
        with folder_session(out, opener) as session:
            stored = session.store.statuses()
            keep = {"ok", "diverged"} if retry_failed else {"ok", "diverged", "failed"}
            todo = [c for c in configs if stored.get(trial_id(c)) not in keep]
            summary = SweepSummary(out_dir=str(out), total=len(configs), skipped=len(configs) - len(todo),
                                   n_workers=executor.n_workers)
            # group sizes are chosen here, before the workers start: a shape not yet measured on this
            # machine is timed with the CPUs idle, and the workers get the chosen size per shape (perf)
            sizes = (group_size_provenance(todo, engine=opts.engine, group_size=opts.group_size)
                     if executor.local else [])   # Dask workers are other machines: they choose there
            executor.group_size = worker_sizes(opts.group_size, sizes)
            session.begin(argv, n_jobs=executor.n_workers, device=opts.device, engine=opts.engine,
                          group_size=opts.group_size, group_sizes=sizes, threads_per_worker=1,
                          trials_todo=len(todo), backend=opts.backend)
            _execute(session, todo, summary, executor, progress)
            summary.counts = _counts(session.store)
            session.end(_summary_dict(summary))
    finally:
        executor.close()
    return summary


def _execute(session: FolderSession, todo: list[TrialConfig], summary: SweepSummary, executor: Executor,
             progress: bool) -> None:
    from tqdm import tqdm

    units = make_units(todo, arms_per_unit(len(todo), executor.n_workers))
    bar = tqdm(total=summary.total, initial=summary.skipped, unit="trial", desc=Path(summary.out_dir).name,
               disable=not progress, mininterval=0.5 if sys.stderr.isatty() else 30, file=sys.stderr)

    spans: dict[str, list[float]] = {}        # worker -> [first unit's start, last unit's end], epoch seconds

    def on_done(unit: WorkUnit, outcomes: list[Outcome], attempts: int) -> None:
        rows = session.store_outcomes(unit, outcomes, attempts)   # committed before the next unit
        for row in rows:
            summary.compute_seconds += row.seconds or 0.0
            setattr(summary, row.status, getattr(summary, row.status) + 1)
        summary.ran += len(rows)
        bar.update(len(rows))
        if outcomes and outcomes[0].span is not None:
            first, last = spans.setdefault(outcomes[0].worker, list(outcomes[0].span))
            spans[outcomes[0].worker] = [min(first, outcomes[0].span[0]), max(last, outcomes[0].span[1])]

    start, wall_start = time.perf_counter(), time.time()
    try:
        executor.run(units, on_done)
    except KeyboardInterrupt as exc:           # Ctrl-C, or SIGTERM/SIGHUP under sweeps.signals
        summary.interrupted = True
        summary.stop_signal = exit_code(exc) - 128
    finally:
        summary.wall_seconds = time.perf_counter() - start
        if getattr(executor, "local", False):   # spans on other machines' clocks are not comparable
            _idle_ends(summary, spans, wall_start, wall_start + summary.wall_seconds)
        bar.close()


def _idle_ends(summary: SweepSummary, spans: dict[str, list[float]], start: float, end: float) -> None:
    """Worker-seconds before each worker's first unit and after its last (SweepSummary.overhead_parts).

    Of n requested workers, start-up counts the n earliest first units and the tail the n
    latest last ones (a worker replaced after a death has two spans); a slot that never got
    a unit is idle for the whole run, counted in the tail.
    """
    n = summary.n_workers
    firsts = sorted(first for first, _ in spans.values())[:n]
    lasts = sorted((last for _, last in spans.values()), reverse=True)[:n]
    summary.startup_seconds = sum(max(0.0, first - start) for first in firsts)
    summary.tail_seconds = sum(max(0.0, end - last) for last in lasts) + (n - len(lasts)) * (end - start)


def _refusal(spec: SweepSpec, out: Path) -> Callable[[dict[str, str]], str]:
    """Why a store of other shared settings is refused: what differs, and what to do."""
    def refusal(meta: dict[str, str]) -> str:
        return (f"{out}: the spec's shared settings differ from the stored sweep's "
                f"({_difference(meta.get('shared', '{}'), spec.shared_settings())}); "
                "use another --out, or --force-new to archive the old store and start again")
    return refusal


def _difference(old: str, new: str) -> str:
    import json

    a, b = json.loads(old), json.loads(new)
    diffs = []
    for key in sorted(set(a.get("base", {})) | set(b.get("base", {}))):
        if a["base"].get(key) != b["base"].get(key):
            diffs.append(f"{key}: {a['base'].get(key)!r} -> {b['base'].get(key)!r}")
    if a.get("axes") != b.get("axes"):
        diffs.append(f"axes: {a.get('axes')} -> {b.get('axes')}")
    return "; ".join(diffs) or "settings changed"


def _spec_text(spec_or_path: Any) -> str:
    if isinstance(spec_or_path, SweepSpec):
        return ""
    try:
        return Path(spec_or_path).read_text(encoding="utf-8")
    except OSError:
        return ""


def _counts(store: Store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in store.statuses().values():
        counts[status] = counts.get(status, 0) + 1
    return counts


def _summary_dict(s: SweepSummary) -> dict[str, Any]:
    return {"total": s.total, "skipped": s.skipped, "ran": s.ran, "ok": s.ok, "diverged": s.diverged,
            "failed": s.failed, "wall_seconds": s.wall_seconds, "compute_seconds": s.compute_seconds,
            "n_workers": s.n_workers, "overhead": s.overhead, "overhead_parts": s.overhead_parts,
            "interrupted": s.interrupted,
            "ended_at": now_iso()}

