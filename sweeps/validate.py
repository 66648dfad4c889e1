"""Run the engine's validation into a folder: resumable, parallel, with progress.

``run_validation(cfg, seeds, out_dir)`` trains each seed through the engine, the reference
loop and the tutorial's loop (``bench.validate``), appends one JSON line per seed to
``DIR/validation.jsonl`` (fsync'd: a killed run keeps every finished seed, a torn last line
is dropped), and writes ``DIR/validation.json`` and ``DIR/validation.md`` with the
equivalence table (``analysis.numbers.validation``). Rerun the same command to resume: seeds
already stored are not trained again; a different config in the same folder is refused.

It runs as the sweeps do: the folder's session and lock (``sweeps.session``), work units
of seeds on the executor that ``sweeps.executors.make_executor`` gives for the options.
The folder's files (``validation-setup.json``, ``validation.jsonl``) are the ones older
versions wrote, so their folders resume too; ``validation-runs.jsonl`` gains one line at
the start and one at the end of each run (command, code and package versions, host).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bench import TrialConfig

from .execute import Outcome, WorkUnit
from .executors import Executor, make_executor
from .options import ExecutionOptions
from .session import FolderSession, folder_session
from .store import StoreError, now_iso

ROWS = "validation.jsonl"
SETUP = "validation-setup.json"
RUNS = "validation-runs.jsonl"
CHUNK = 4  # seeds per unit of work: the engine trains them as one batch


@dataclass(frozen=True)
class ValidationPlan:
    """What a validation run trains: it must not change between a run and its resumption."""
    config: dict[str, Any]
    sources: tuple[str, ...]
    engine_lr_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "sources": list(self.sources), "engine_lr_scale": self.engine_lr_scale}


class ValidationStore:
    """A validation folder's records: its setup, one JSON line per seed, one per run's start and end.

    Open it with :meth:`open` (``folder_session`` does, under the folder's lock). It answers
    what a session asks of a store (``begin_run``, ``end_run``, ``close``).
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: dict[int, dict[str, Any]] = {r["seed"]: r for r in _stored_rows(out / ROWS)}

    @classmethod
    def open(cls, out: Path, plan: ValidationPlan) -> "ValidationStore":
        """Create the setup file, or check that the stored one is ``plan``; read the stored rows."""
        setup = out / SETUP
        if setup.exists():
            if json.loads(setup.read_text()) != plan.to_dict():
                raise StoreError(f"{out}: holds a validation of another setup ({setup}); use another --out")
        else:
            setup.write_text(json.dumps(plan.to_dict(), indent=2, sort_keys=True) + "\n")
        return cls(out)

    def append(self, rows: Sequence[dict[str, Any]], name: str = ROWS) -> None:
        """Append JSON lines and fsync: a killed run keeps every line it reported."""
        with open(self.out / name, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(row) + "\n" for row in rows))
            f.flush()
            os.fsync(f.fileno())
        if name == ROWS:
            self.rows.update((row["seed"], row) for row in rows)

    def begin_run(self, info: dict[str, Any]) -> int:
        run_id = 1 + sum(1 for r in _stored_rows(self.out / RUNS) if "started_at" in r)
        self.append([{"run": run_id, "started_at": now_iso(), "info": info}], RUNS)
        return run_id

    def end_run(self, run_id: int, summary: dict[str, Any]) -> None:
        self.append([{"run": run_id, "ended_at": now_iso(), "summary": summary}], RUNS)

    def close(self) -> None:
        """Nothing stays open: every append opens, writes, syncs and closes its file."""


def _stored_rows(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines file; a torn last line (a killed writer) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        with open(path, "r+b") as f:
            f.truncate(len(keep))
    return [json.loads(line) for line in keep.decode().splitlines() if line.strip()]


def validation_unit(cfgs: Sequence[TrialConfig], engine: str, group_size: Any, threads: int, *,
                    sources: tuple[str, ...], engine_lr_scale: float) -> list[Outcome]:
    """Worker entry point: the validation rows of a unit's seeds, one ``Outcome`` each (its row as result).

    ``engine`` and ``group_size`` are the executor's; the validation fixes its own (bench.validate).
    """
    import torch

    from bench.validate import validation_rows

    torch.set_num_threads(threads)
    start = time.perf_counter()
    rows = validation_rows(cfgs[0], [c.seed for c in cfgs], sources=sources, engine_lr_scale=engine_lr_scale)
    share = (time.perf_counter() - start) / max(1, len(cfgs))
    return [Outcome("ok", row, None, share) for row in rows]


def run_validation(cfg: TrialConfig, seeds: Sequence[int], out_dir: str | os.PathLike, *, workers: int | None = None,
                   sources: Sequence[str] = ("engine", "reference", "masked", "tutorial"),
                   engine_lr_scale: float = 1.0, options: ExecutionOptions | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Train the seeds not yet stored in ``out_dir`` and return every stored row, in seed order.

    ``workers`` (default 1) is a shortcut for ``options.workers``; ``options.backend`` picks the
    executor (``sweeps.executors.BACKENDS``). CPU only: the reference loops are.
    """
    out = Path(out_dir)
    plan = ValidationPlan(config=cfg.replace(seed=0, device="cpu").to_dict(), sources=tuple(sources),
                          engine_lr_scale=float(engine_lr_scale))
    options = dataclasses.replace(options or ExecutionOptions(), device="cpu")
    if workers is not None:
        options = dataclasses.replace(options, workers=workers)
    opts = options.resolve({}, default_workers=1)
    wanted = sorted(set(int(s) for s in seeds))
    work = functools.partial(validation_unit, sources=plan.sources, engine_lr_scale=plan.engine_lr_scale)
    executor = make_executor(opts, work)
    try:
        with folder_session(out, lambda o: ValidationStore.open(o, plan), store_file=SETUP) as session:
            session.begin(None, workers=executor.n_workers, backend=opts.backend, seeds=len(wanted),
                          **plan.to_dict())
            _train(session, plan, wanted, executor, progress)
            session.end({"seeds_stored": len(session.store.rows), "ended_at": now_iso()})
            rows = session.store.rows
    finally:
        executor.close()
    return [rows[s] for s in wanted if s in rows]


def _train(session: FolderSession, plan: ValidationPlan, seeds: list[int], executor: Executor,
           progress: bool) -> None:
    """Train the seeds missing from the store in units of CHUNK seeds, appending each unit's rows."""
    from tqdm import tqdm

    store: ValidationStore = session.store
    todo = [s for s in seeds if s not in store.rows]
    base = TrialConfig.from_dict(plan.config)
    units = [WorkUnit(i, tuple(base.replace(seed=s) for s in todo[k:k + CHUNK]))
             for i, k in enumerate(range(0, len(todo), CHUNK))]
    failed: list[str] = []
    with tqdm(total=len(seeds), initial=len(seeds) - len(todo), unit="seed", desc="validate",
              disable=not progress, file=sys.stderr) as bar:

        def on_done(unit: WorkUnit, outcomes: list[Outcome], attempts: int) -> None:
            store.append([o.result for o in outcomes if o.status == "ok"])
            failed.extend(f"seed {c.seed}: {o.error}" for c, o in zip(unit.cfgs, outcomes) if o.status != "ok")
            bar.update(len(outcomes))

        executor.run(units, on_done)
    if failed:
        raise RuntimeError(f"{len(failed)} seed(s) not validated ({failed[0]}); rerun to try them again")


def write_validation(out_dir: str | os.PathLike, rows: Sequence[dict[str, Any]], *, rel_margin: float,
                     sd_margin: float) -> str:
    """validation.json (the table, the setup, the environment) and validation.md; returns the Markdown."""
    from analysis.pages.files import atomic_write_text
    from analysis.numbers.validation import equivalence_table, markdown
    from bench.results import environment

    out = Path(out_dir)
    table = equivalence_table(rows, rel_margin=rel_margin, sd_margin=sd_margin)
    setup = json.loads((out / SETUP).read_text()) if (out / SETUP).exists() else {}
    doc = {"setup": setup, "seeds": len(rows), "rel_margin": rel_margin, "sd_margin": sd_margin,
           "environment": environment("cpu"), "table": json.loads(table.to_json(orient="records"))}
    atomic_write_text(out / "validation.json", json.dumps(doc, indent=2) + "\n")
    text = (f"# Engine validation: {len(rows)} seeds\n\nConfig: {json.dumps(setup.get('config', {}))}\n\n"
            + markdown(table))
    atomic_write_text(out / "validation.md", text)
    return text
