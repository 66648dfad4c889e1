"""Small sweep-like records built without a store, for the report tests."""
from __future__ import annotations

import itertools
from functools import lru_cache

import torch

from bench import TrialConfig, run_trials

GRID = {"n_train": [10, 20], "dropout": [0.2, 0.5]}
SEEDS = list(range(6))
BASE = {"width": 32, "steps": 60, "eval_every": 10}


@lru_cache(maxsize=None)
def _records() -> tuple:
    torch.set_num_threads(1)
    cfgs = [TrialConfig(**BASE, n_train=n, dropout=p, seed=s)
            for (n, p), s in itertools.product(itertools.product(*GRID.values()), SEEDS)]
    records = [{"trial_id": c.config_hash(), "status": r.status, "error": None,
                "config": c.to_dict(), "result": r.to_dict()}
               for c, r in zip(cfgs, run_trials(cfgs, engine="batched"))]
    # a partial cell: one more seed of one cell failed before producing a result
    lost = TrialConfig(**BASE, n_train=20, dropout=0.5, seed=len(SEEDS))
    records.append({"trial_id": lost.config_hash(), "status": "failed", "error": "RuntimeError: lost",
                    "config": lost.to_dict(), "result": None})
    return tuple(records)


def sweep_records() -> list[dict]:
    """24 finished trials (2 x 2 cells x 6 seeds) and one failed trial; a fresh list each call."""
    return [dict(r) for r in _records()]


def sweep_manifest() -> dict:
    return {"kind": "sweep", "name": "tiny", "spec": {"base": BASE, "grid": GRID, "seeds": SEEDS + [6]},
            "grid_axes": list(GRID), "seeds": SEEDS + [6], "code_version": "test", "packages": {"torch": torch.__version__},
            "host": "test-host", "device": "cpu", "engine": "batched", "n_jobs": 1,
            "started_at": "2026-01-01T00:00:00", "ended_at": None, "threads": 1}
