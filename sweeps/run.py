"""Run a sweep: expand the spec, skip what the store already has, run the rest, store each result.

    >>> from sweeps import run_sweep
    >>> summary = run_sweep("sweeps/quick.toml", n_jobs=2)
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import TrialConfig, TrialResult

from .execute import InProcessExecutor, Outcome, ProcessExecutor, WorkUnit, arms_per_unit, make_units
from .identity import trial_id
from .provenance import code_version, host_info, package_versions
from .signals import exit_code
from .spec import SpecError, SweepSpec, check_n_jobs, load_spec
from .store import FolderLock, Store, StoreError, TrialRow, is_scratch, now_iso, store_path

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

    @property
    def overhead(self) -> float:
        """Share of worker capacity not spent training: scheduling, storing, start-up, idle tails."""
        capacity = self.wall_seconds * self.n_workers
        return 1.0 - self.compute_seconds / capacity if capacity > 0 and self.ran else 0.0

    def line(self) -> str:
        c = self.counts
        if not self.ran:
            return (f"{self.out_dir}: nothing to do; all {self.total} trials are already stored "
                    f"(ok {c.get('ok', 0)}, diverged {c.get('diverged', 0)}, failed {c.get('failed', 0)})")
        return (f"{self.out_dir}: {sum(c.values())}/{self.total} trials stored "
                f"(ok {c.get('ok', 0)}, diverged {c.get('diverged', 0)}, failed {c.get('failed', 0)}); "
                f"this run: {self.ran} trials in {self.wall_seconds:.1f} s on {self.n_workers} worker(s), "
                f"harness overhead {100 * self.overhead:.1f}%")


def resolve_out_dir(spec: SweepSpec, out_dir: str | os.PathLike | None) -> Path:
    return Path(out_dir) if out_dir is not None else DEFAULT_RESULTS / spec.name


def run_sweep(
    spec_or_path: SweepSpec | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    n_jobs: int | None = None,
    device: str | None = None,
    *,
    engine: str | None = None,
    group_size: int | None = None,
    retry_failed: bool = False,
    force_new: bool = False,
    backend: str = "local",
    scheduler: str | None = None,
    progress: bool = True,
    report: bool = True,
    argv: list[str] | None = None,
) -> SweepSummary:
    """Run every (cell x seed) of a spec exactly once into ``out_dir`` (default results/<name>/).

    Rerunning resumes: finished trials are skipped (failed ones too, unless
    ``retry_failed``). A spec whose shared settings differ from the stored one is refused
    unless ``force_new``, which archives the old store first. ``backend="dask"`` runs the
    work units on the Dask cluster at ``scheduler`` (tcp://HOST:PORT). Raises ConfigError
    (a subclass) for bad input, before anything is written.
    """
    if backend not in ("local", "dask"):
        raise SpecError(f"backend={backend!r}: must be 'local' or 'dask'")
    if (backend == "dask") != (scheduler is not None):
        raise SpecError("--backend dask and --scheduler tcp://HOST:PORT go together")
    spec = spec_or_path if isinstance(spec_or_path, SweepSpec) else load_spec(spec_or_path)
    spec_text = _spec_text(spec_or_path)
    ex = spec.execution
    n_jobs = n_jobs if n_jobs is not None else ex.get("n_jobs", -1)
    check_n_jobs(n_jobs, lambda msg: SpecError(f"n_jobs: {msg}"))
    n_workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    device = device or ex.get("device", "cpu")
    engine = engine or ex.get("engine", "auto")
    group_size = group_size or ex.get("group_size")  # None: the engine sizes each shape's groups
    configs = spec.configs(device=device)     # validates device's form
    from bench.trial import check_device      # torch: only once there is work to run

    check_device(device)
    if device.startswith("cuda"):
        n_workers = 1                        # one process feeds the GPU
    executor = None
    if backend == "dask":
        from .dask_executor import DaskExecutor
        executor = DaskExecutor(scheduler, engine, group_size)
        n_workers = executor.n_workers
    out = resolve_out_dir(spec, out_dir)

    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a folder")
    _refuse_foreign(out)               # before the lock file is created in someone else's folder
    lock = FolderLock(out).acquire()   # before creating anything: two drivers never race
    try:
        store = _open_or_create(spec, spec_text, out, force_new)
    except BaseException:
        lock.release()
        if executor is not None:
            executor.close()
        raise
    try:
        ids = [trial_id(c) for c in configs]
        stored = store.statuses()
        keep = {"ok", "diverged"} if retry_failed else {"ok", "diverged", "failed"}
        todo = [(tid, c) for tid, c in zip(ids, configs) if stored.get(tid) not in keep]
        summary = SweepSummary(out_dir=str(out), total=len(configs), skipped=len(configs) - len(todo),
                               n_workers=n_workers)
        run_id = store.begin_run({
            "argv": argv or sys.argv, "code_version": code_version(), "packages": package_versions(),
            **host_info(), "n_jobs": n_workers, "device": device, "engine": engine,
            "group_size": group_size, "threads_per_worker": 1, "trials_todo": len(todo),
            "backend": backend,
        })
        if executor is None:
            executor = (InProcessExecutor(engine, group_size) if n_workers == 1
                        else ProcessExecutor(n_workers, engine, group_size))
        _execute(store, run_id, todo, summary, executor, group_size, progress)
        summary.counts = _counts(store)
        store.end_run(run_id, _summary_dict(summary))
    finally:
        store.close()
        lock.release()
    if report and not summary.interrupted:
        _auto_report(out)
    return summary


def _execute(store: Store, run_id: int, todo: list[tuple[str, TrialConfig]], summary: SweepSummary,
             executor, group_size: int | None, progress: bool) -> None:
    from tqdm import tqdm

    ids_of = {c: tid for tid, c in todo}
    units = make_units([c for _, c in todo], arms_per_unit(len(todo), executor.n_workers))
    bar = tqdm(total=summary.total, initial=summary.skipped, unit="trial", desc=Path(summary.out_dir).name,
               disable=not progress, mininterval=0.5 if sys.stderr.isatty() else 30, file=sys.stderr)

    def on_done(unit: WorkUnit, outcomes: list[Outcome], attempts: int) -> None:
        rows = []
        for c, o in zip(unit.cfgs, outcomes):
            result = TrialResult.from_dict(o.result) if o.result is not None else None
            rows.append(TrialRow(ids_of[c], c, o.status, result, o.error, attempts, o.seconds))
            summary.compute_seconds += o.seconds
            setattr(summary, o.status, getattr(summary, o.status) + 1)
        store.put(rows, run_id)                 # committed before the next unit is taken
        summary.ran += len(rows)
        bar.update(len(rows))

    start = time.perf_counter()
    try:
        executor.run(units, on_done)
    except KeyboardInterrupt as exc:           # Ctrl-C, or SIGTERM/SIGHUP under sweeps.signals
        summary.interrupted = True
        summary.stop_signal = exit_code(exc) - 128
    finally:
        summary.wall_seconds = time.perf_counter() - start
        bar.close()


def _open_or_create(spec: SweepSpec, spec_text: str, out: Path, force_new: bool) -> Store:
    if not store_path(out).exists():
        _refuse_foreign(out)
        return Store.create(out, kind="sweep", name=spec.name, spec=spec.to_dict(),
                            spec_text=spec_text, shared=spec.shared_settings())
    store = Store.open(out)
    meta = store.meta()
    if meta.get("kind") != "sweep":
        store.close()
        raise StoreError(f"{out}: holds a {meta.get('kind')} store, not a sweep")
    if meta.get("shared") != spec.shared_settings():
        if not force_new:
            store.close()
            raise StoreError(f"{out}: the spec's shared settings differ from the stored sweep's "
                             f"({_difference(meta.get('shared', '{}'), spec.shared_settings())}); "
                             "use another --out, or --force-new to archive the old store and start again")
        store.close()
        archive = out / "archive" / f"store-{time.strftime('%Y%m%d-%H%M%S')}"
        archive.mkdir(parents=True)
        for name in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm"):
            if (out / name).exists():
                shutil.move(str(out / name), str(archive / name))
        return Store.create(out, kind="sweep", name=spec.name, spec=spec.to_dict(),
                            spec_text=spec_text, shared=spec.shared_settings())
    # a grown or changed grid/seed list with the same shared settings: remember the latest spec
    store.set_meta(spec=_json(spec.to_dict()), spec_text=spec_text)
    return store


def _refuse_foreign(out: Path) -> None:
    if out.is_dir() and not store_path(out).exists() and any(not is_scratch(p.name) for p in out.iterdir()):
        raise StoreError(f"{out}: folder is not empty and holds no dropout-bench store; choose another --out")


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


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True)


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
            "n_workers": s.n_workers, "overhead": s.overhead, "interrupted": s.interrupted,
            "ended_at": now_iso()}


def _auto_report(out: Path) -> None:
    """Write the report and exports when a sweep finishes; a failure here never loses trials."""
    from .export import export_trials

    try:
        export_trials(out)
    except Exception as exc:  # noqa: BLE001
        print(f"export failed: {exc}", file=sys.stderr)
    try:
        from analysis.report import write_report
    except ImportError:
        return
    try:
        path = write_report(out)
        print(f"report: {path}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the trials are safe in the store
        print(f"report failed ({exc}); rerun: dropout-bench report {out}", file=sys.stderr)
