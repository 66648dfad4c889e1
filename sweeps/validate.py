"""Run the engine's validation into a folder: resumable, parallel, with progress.

``run_validation(cfg, seeds, out_dir)`` trains each seed through the engine, the reference
loop and the tutorial's loop (``bench.validate``), appends one JSON line per seed to
``DIR/validation.jsonl`` (fsync'd: a killed run keeps every finished seed, a torn last line
is dropped), and writes ``DIR/validation.json`` and ``DIR/validation.md`` with the
equivalence table (``analysis.numbers.validation``). Rerun the same command to resume: seeds
already stored are not trained again; a different config in the same folder is refused.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bench import ConfigError, TrialConfig

from bench.locks import FileLock, LockBusy

ROWS = "validation.jsonl"
SETUP = "validation-setup.json"
CHUNK = 4  # seeds per unit of work: the engine trains them as one batch


@dataclass(frozen=True)
class ValidationPlan:
    """What a validation run trains: it must not change between a run and its resumption."""
    config: dict[str, Any]
    sources: tuple[str, ...]
    engine_lr_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "sources": list(self.sources), "engine_lr_scale": self.engine_lr_scale}


def _stored_rows(path: Path) -> list[dict[str, Any]]:
    """The complete lines of the rows file; a torn last line (a killed writer) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        with open(path, "r+b") as f:
            f.truncate(len(keep))
    return [json.loads(line) for line in keep.decode().splitlines() if line.strip()]


def _check_setup(out: Path, plan: ValidationPlan) -> None:
    setup = out / SETUP
    if setup.exists():
        old = json.loads(setup.read_text())
        if old != plan.to_dict():
            raise ConfigError(f"{out}: holds a validation of another setup ({setup}); use another --out")
    else:
        setup.write_text(json.dumps(plan.to_dict(), indent=2, sort_keys=True) + "\n")


def _work(config: dict[str, Any], seeds: list[int], sources: tuple[str, ...], scale: float) -> list[dict]:
    import torch

    from bench.validate import validation_rows

    torch.set_num_threads(1)
    return validation_rows(TrialConfig.from_dict(config), seeds, sources=sources, engine_lr_scale=scale)


def run_validation(cfg: TrialConfig, seeds: Sequence[int], out_dir: str | os.PathLike, *, workers: int = 1,
                   sources: Sequence[str] = ("engine", "reference", "masked", "tutorial"),
                   engine_lr_scale: float = 1.0,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Train the seeds not yet stored in ``out_dir`` and return every stored row, in seed order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = ValidationPlan(config=cfg.replace(seed=0, device="cpu").to_dict(), sources=tuple(sources),
                          engine_lr_scale=float(engine_lr_scale))
    lock = FileLock(out / ".lock", note=f"pid {os.getpid()}")
    try:
        lock.acquire(wait=False)
    except LockBusy as exc:
        raise ConfigError(f"{out}: another validation is writing here ({exc.holder})") from None
    try:
        _check_setup(out, plan)
        rows = {r["seed"]: r for r in _stored_rows(out / ROWS)}
        _train(plan, [int(s) for s in seeds], rows, out / ROWS, workers=workers, progress=progress)
    finally:
        lock.release()
    return [rows[s] for s in sorted(set(int(s) for s in seeds)) if s in rows]


def _train(plan: ValidationPlan, seeds: list[int], rows: dict[int, dict], path: Path, *, workers: int,
           progress: bool) -> None:
    """Train the seeds missing from ``rows`` in chunks on ``workers`` processes, appending each chunk's rows."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    todo = [s for s in seeds if s not in rows]
    chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
    with tqdm(total=len(seeds), initial=len(seeds) - len(todo), unit="seed", desc="validate",
              disable=not progress, file=sys.stderr) as bar, open(path, "a", encoding="utf-8") as f:
        jobs = (delayed(_work)(plan.config, c, plan.sources, plan.engine_lr_scale) for c in chunks)
        for done in Parallel(n_jobs=workers, return_as="generator_unordered")(jobs):
            for row in done:
                f.write(json.dumps(row) + "\n")
                rows[row["seed"]] = row
            f.flush()
            os.fsync(f.fileno())          # a killed run keeps every chunk it reported
            bar.update(len(done))


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
