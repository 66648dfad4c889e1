"""What an adaptive seed plan would have spent and decided, replayed on a fixed sweep's store:
``python tools/adaptive_replay.py results/quick [--first 30 --last 200 --batch 10]``.

Per cell (the sweep's axes), the paired deltas of seeds 0, 1, ... in order are played through
``analysis.inference.confseq.replay``: every open cell is looked at after ``first`` seeds and
then after every ``batch`` more, and stops at its first anytime-valid decision. Compared with
(a) the fixed design: every cell at ``last`` seeds, judged by the verdicts' fixed-n rule
(``mean_test.claims``, Holm, with the family's skewness check); (b) the same number of trials
the plan used, split evenly over the cells and judged by that rule: the user's alternative.
A replay decides on prefixes of stored seeds only, so it is what a run of the plan would decide.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain checkout: the packages are one up

from analysis.inference import confseq, mean_test  # noqa: E402
from sweeps.records import load_manifest, load_trials  # noqa: E402


def deltas_by_cell(out: Path, last: int) -> tuple[list[str], np.ndarray]:
    """(cell labels, (cells, last) deltas of seeds 0..last-1): cells with all of them only."""
    trials = load_trials(out)
    axes = [a for a in load_manifest(out).get("axes", []) if a in trials] or ["dropout", "n_train"]
    ok = trials[(trials["status"] == "ok") & (trials["seed"] < last)]
    labels, rows = [], []
    for key, g in ok.groupby(axes):
        g = g.sort_values("seed")
        if len(g) == last and (g["seed"].to_numpy() == np.arange(last)).all():
            labels.append(", ".join(f"{a}={v:g}" for a, v in zip(axes, np.atleast_1d(key))))
            rows.append(g["delta_test_mse"].to_numpy(float))
    return labels, np.array(rows)


def fixed_rule(deltas: np.ndarray) -> np.ndarray:
    """The verdicts' fixed-n directions (+1, -1, 0) for a family (cells, n)."""
    g1 = float(np.mean(mean_test.skewness(deltas)))
    _, withhold = mean_test.withheld_sign(g1, deltas.shape[0], deltas.shape[1])
    return mean_test.claims(deltas, withhold=withhold)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--first", type=int, default=30)
    p.add_argument("--last", type=int, default=200)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--smallest-effect", type=float, default=0.009)
    a = p.parse_args(argv)
    labels, d = deltas_by_cell(a.out, a.last)
    verdict, used = confseq.replay(d, a.first, a.last, a.batch, smallest_effect=a.smallest_effect)
    sign = np.select([verdict == "helps", verdict == "hurts"], [1, -1], 0)
    fixed = fixed_rule(d)
    even_n = int(used.sum()) // len(d)
    even = fixed_rule(d[:, :even_n])
    print(f"{len(d)} cells; plan: first look at {a.first}, then every {a.batch}, at most {a.last} seeds")
    for lab, v, u, f, e in zip(labels, verdict, used, fixed, even):
        print(f"  {lab:24s} adaptive: {v or 'open':9s} at {u:3d} seeds | fixed {a.last}: {int(f):+d} "
              f"| even split {even_n}: {int(e):+d}")
    decided_fixed = fixed != 0
    print(f"trials: adaptive {int(used.sum())} of the fixed design's {d.size} "
          f"({used.sum() / d.size:.0%})")
    print(f"opposite directions to the fixed run: {int(((sign * fixed) < 0).sum())}")
    print(f"of the fixed run's {int(decided_fixed.sum())} decided cells the plan decides "
          f"{int((decided_fixed & (verdict != '')).sum())} "
          f"({int((decided_fixed & (sign == fixed)).sum())} with the same direction)")
    print(f"cells decided at an equal number of trials: adaptive {int((verdict != '').sum())} "
          f"({int((sign != 0).sum())} directions, {int((verdict == 'no effect').sum())} no effect) | "
          f"even split at {even_n} seeds: {int((even != 0).sum())} directions")


if __name__ == "__main__":
    main()
