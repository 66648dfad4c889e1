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


def synthetic_records(deltas: dict, *, plain: float = 0.16, base: dict | None = None) -> list[dict]:
    """Records with chosen paired deltas, no training: ``deltas`` maps a cell's settings
    (a dict as a tuple of items) to its per-seed deltas; seed i gets deltas[i]. The plain
    arm's test MSE is ``plain`` + a small seed-dependent shift; dropout's = plain - delta."""
    records = []
    for cell, values in deltas.items():
        for seed, d in enumerate(values):
            cfg = TrialConfig(**{**(base or {}), **dict(cell)}, seed=seed)
            p = plain + 0.001 * (seed % 7)
            arm = {"status": "ok", "diverged_at_step": None, "train_mse": 0.05, "train_loss_last": 0.05,
                   "curve_steps": [], "curve_train_mse": [], "curve_test_mse": [],
                   "step_seconds_median": 1e-3, "step_seconds_iqr": 1e-4, "group_size": 1, "engine": "single"}
            result = {"config": cfg.to_dict(), "delta_test_mse": float(d), "env": {}, "schema_version": 1,
                      "plain": {**arm, "rate": 0.0, "test_mse": p, "gap": p - 0.05},
                      "dropout": {**arm, "rate": cfg.dropout, "test_mse": p - d, "gap": p - d - 0.05,
                                  "step_seconds_median": 1.1e-3}}
            records.append({"trial_id": cfg.config_hash(), "status": "ok", "error": None,
                            "config": cfg.to_dict(), "result": result})
    return records
