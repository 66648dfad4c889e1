"""The engine's step against an earlier revision of itself, in one process:
``python tools/engine_ab.py [REV] [--trials 2] [--rounds 15] [--steps 50] [--width 300]``.

Loads ``bench/engine.py`` as it was at git revision REV (default HEAD; or REV names an
engine file) beside the working tree's, checks that both give equal results field for
field on a handful of configs (depths 1-3, one and several inputs, every arm kind,
several rates), then builds one group of the same arms in each (``--trials`` seed-config
trials, so half the arms have dropout) and times both steps in alternating rounds of
``--steps`` steps, one torch thread. Prints the medians and their ratio (old / new:
above 1 means the working tree is faster).

Same-process alternation is the tightest comparison a shared machine allows: both sides
see the same load, clock and cache state, round by round. The old engine is loaded with
the working tree's other modules (bench.rng, bench.task, ...), so REV must be one whose
engine still runs against them.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain checkout: the packages are one up

import torch  # noqa: E402

import bench.engine as current  # noqa: E402
from bench import TrialConfig  # noqa: E402
from bench.results import trial_arms  # noqa: E402


def load_engine(rev: str):
    """bench/engine.py at ``rev`` (or the engine file ``rev``) as a module of the bench package:
    its relative imports resolve to the working tree's modules."""
    if Path(rev).is_file():
        source = Path(rev).read_text()
    else:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:bench/engine.py"],
                                check=True, capture_output=True, text=True).stdout
    name = "bench._engine_at_rev"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "engine_at_rev.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = "bench"
        sys.modules[name] = module             # dataclasses and pickling look a module up by name
        spec.loader.exec_module(module)
    return module


def check_configs() -> list[TrialConfig]:
    """Small configs that between them take every path of the step."""
    four = ("plain", "dropout", "early_stop", "weight_decay")
    return [TrialConfig(steps=60),
            TrialConfig(steps=40, width=24, depth=1, dropout=0.9, arms=("plain", "dropout", "weight_decay")),
            TrialConfig(steps=40, width=24, depth=3, dropout=0.1, arms=four),
            TrialConfig(steps=40, width=32, task="friedman1", n_train=30, arms=four),
            TrialConfig(steps=40, width=32, task="diabetes", n_train=40, dropout=0.3, arms=four)]


def same_results(old, cfgs: list[TrialConfig]) -> bool:
    """Every field of every arm's result, timings aside, as JSON (NaN equals NaN there)."""
    def fields(results):
        return [json.dumps({k: v for k, v in vars(r).items() if not k.startswith("step_seconds")}, sort_keys=True)
                for r in results]
    for cfg in cfgs:
        arms = [a for s in range(2) for a in trial_arms(cfg.replace(seed=s)).values()]
        if fields(old.train_group(arms)) != fields(current.train_group(arms)):
            return False
    return True


def rewind(grp) -> None:
    """Steps 0, 1, ... again with a run's mask work (engines before ``Group.rewind`` kept their chunk)."""
    if hasattr(grp, "rewind"):
        grp.rewind()
    elif getattr(grp, "masks", None) is not None:
        grp.masks._start = -1


def group_class(engine):
    """The engine's group class (``Group``; revisions before it was public called it ``_Group``)."""
    return getattr(engine, "Group", None) or getattr(engine, "_" + "Group")


def race(engines: dict, arms, rounds: int, steps: int) -> dict[str, float]:
    groups = {name: group_class(mod)(arms) for name, mod in engines.items()}
    times: dict[str, list[float]] = {name: [] for name in groups}
    for r in range(rounds + 1):                        # round 0 warms up, untimed
        for name, grp in groups.items():
            rewind(grp)
            t0 = time.perf_counter()
            with torch.no_grad():
                for s in range(steps):
                    grp.step(s)
            if r:
                times[name].append((time.perf_counter() - t0) / steps)
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", nargs="?", default="HEAD")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--width", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = TrialConfig(width=args.width, steps=max(args.steps, 2))
    arms = [a for s in range(args.trials) for a in trial_arms(cfg.replace(seed=s)).values()]
    old = load_engine(args.rev)
    equal = same_results(old, check_configs())
    t = race({args.rev: old, "working tree": current}, arms, args.rounds, args.steps)
    print(f"group of {len(arms)} arms, width {args.width}, {args.rounds} alternating rounds of {args.steps} steps")
    for name, s in t.items():
        print(f"  {name:14s} {1e3 * s:.3f} ms per group step")
    print(f"  {args.rev} / working tree: {t[args.rev] / t['working tree']:.3f}; results equal: {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
