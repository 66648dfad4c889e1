"""How long the report of a large sweep takes: ``python tools/report_speed.py [--shape 100x1000]``.

Builds synthetic records shaped like a real sweep (valid configs, 51-point learning curves
per arm, plausible metrics drawn from a seeded generator), then times ``write_report`` on
them, stage by stage, and prints the process's peak resident memory. Only the numbers are
synthetic; the report does all its real work, including rerunning the focus cell's median
seed for its picture. ``--shape CELLSxSEEDS``: 100 or 1000 cells, any number of seeds
(100x1000 is the 100,000 trials an adaptive overnight run can reach).
"""
from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain checkout: the packages are one up

from bench import TrialConfig  # noqa: E402


def synthetic_records(grid: dict[str, list], seeds: int, *, rng_seed: int = 0) -> list[dict]:
    """One finished record per (cell, seed); the dropout arm is a little better on average."""
    rng = np.random.default_rng(rng_seed)
    steps = np.arange(0, 501, 10).tolist()
    records = []
    for values in itertools.product(*grid.values()):
        for s in range(seeds):
            cfg = TrialConfig(seed=s, **dict(zip(grid, values)))
            arms = {}
            for arm, shift in (("plain", 0.0), ("dropout", -0.01)):
                test = float(0.12 + shift + 0.03 * rng.standard_normal())
                train = float(0.06 + 0.02 * rng.standard_normal())
                curve = (test + 0.5 * np.exp(-np.arange(len(steps)) / 3)).tolist()
                arms[arm] = {"rate": cfg.dropout if arm == "dropout" else 0.0, "status": "ok",
                             "diverged_at_step": None, "train_mse": train, "train_loss_last": train,
                             "test_mse": test, "gap": test - train, "curve_steps": steps,
                             "curve_train_mse": curve, "curve_test_mse": curve,
                             "step_seconds_median": 1e-3 * cfg.width / 300, "step_seconds_iqr": 1e-5,
                             "group_size": 16, "engine": "batched", "fit": None, "fit_history": None}
            result = {"config": cfg.to_dict(), "plain": arms["plain"], "dropout": arms["dropout"],
                      "delta_test_mse": arms["plain"]["test_mse"] - arms["dropout"]["test_mse"],
                      "env": {"torch": "synthetic"}, "schema_version": 1}
            records.append({"trial_id": cfg.config_hash(), "status": "ok", "error": None,
                            "config": cfg.to_dict(), "result": result})
    return records


GRIDS = {  # cells -> the grid that gives that many
    100: {"n_train": [10, 20, 50, 100, 200], "dropout": [0.1, 0.3, 0.5, 0.7, 0.9], "width": [50, 100, 300, 1000]},
    1000: {"n_train": [10, 20, 50, 100, 200], "dropout": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
           "width": [25, 50, 100, 150, 200, 300, 500, 700, 1000, 2000], "depth": [2, 3]},
}


def shape(text: str) -> tuple[int, int]:
    """'100x1000' -> (100 cells, 1000 seeds); the cells must be those of a grid in GRIDS."""
    try:
        cells, seeds = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected CELLSxSEEDS, e.g. 100x1000") from None
    if cells not in GRIDS or seeds < 1:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: cells must be one of {sorted(GRIDS)}, seeds >= 1")
    return cells, seeds


def peak_rss_gb() -> float:
    """The process's peak resident memory so far, in GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=shape, default="100x100",
                   help="CELLSxSEEDS: 100 or 1000 cells, any seeds (100x100, 1000x10, 100x1000; default 100x100)")
    args = p.parse_args()
    cells, seeds = args.shape
    grid = GRIDS[cells]
    t0 = time.perf_counter()
    records = synthetic_records(grid, seeds)
    t1 = time.perf_counter()
    built_rss = peak_rss_gb()
    import torch

    from analysis.pages.report import write_report

    torch.set_num_threads(1)  # as the sweeps run; CPU time then approximates an idle machine's wall time

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        seconds: dict[str, float] = {}
        path = write_report(Path(tmp), records=records, seconds=seconds,
                            manifest={"name": "speed", "grid_axes": list(grid), "seeds": list(range(seeds))})
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = path.stat().st_size
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    print(f"{len(records)} trials ({cells}x{seeds} cells x seeds), built in {t1 - t0:.1f} s "
          f"(peak RSS {built_rss:.2f} GB after building)")
    print(f"write_report: {took:.1f} s wall, {cpu:.1f} s CPU; report.html {size / 1e6:.1f} MB")
    print(f"stages: {stages}")
    print(f"peak RSS: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
