"""The design block of a sweep's report: what was run, on what, and how every number is defined.

``design(rep, manifest, records)`` reads an ``analysis.numbers.estimates.Estimates`` and returns
(label, text) rows.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..inference.decisions import RULE
from ..numbers.estimates import Estimates


def design(rep: Estimates, manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]], *,
           seed: int, n_resamples: int, method: str) -> list[tuple[str, str]]:
    """The design block: what was run, on what, and how every number is defined."""
    c, t = rep.cells, rep.trials
    env = next((r["result"].get("env") or {} for r in records if r.get("result")), {})
    spec = manifest.get("spec") or {}
    seeds = manifest.get("seeds") or sorted(t["seed"].unique().tolist())
    # what each axis took: the spec's grid or [families] lists, else the trials' own values
    grid = {a: (spec.get("grid") or {}).get(a) or (spec.get("families") or {}).get(a)
            or sorted(t[a].unique().tolist()) for a in rep.axes}
    fixed = {k: v for k, v in (t.iloc[0][[f for f in ("n_train", "noise_std", "width", "depth", "dropout", "lr",
                                                      "steps", "eval_every", "init", "device")]].items())
             if k not in rep.axes} if len(t) else {}
    pk = manifest.get("packages") or {}
    rows = [
        ("Sweep", f"{manifest.get('name', '(unnamed)')} ({manifest.get('kind', 'records')}); started "
                  f"{manifest.get('started_at', '?')}, ended {manifest.get('ended_at') or 'not yet (partial)'}"),
        ("Cells", f"{len(c)} = " + (" x ".join(f"{a} in {_values(grid.get(a))}" for a in rep.axes) if rep.axes else "one")
                  + f"; fixed: {', '.join(f'{k}={v}' for k, v in fixed.items())}"),
        ("Seeds", f"{len(seeds)} planned per cell ({_seed_range(seeds)}); the same seeds in every cell, and "
                  f"both arms of a trial share the seed (paired)."),
        ("What a seed randomises", "the training noise and the test noise (streams 'train-noise', "
                                   "'test-noise': the data depend on seed, n_train and noise_std only), the "
                                   "initial weights (stream 'init', shared by both arms when init='shared'), and "
                                   "the dropout masks (a counter-based hash of seed, step, layer, sample, unit)."),
        ("Environment", f"torch {env.get('torch', pk.get('torch', '?'))}, python {env.get('python', '?')}, "
                        f"device {manifest.get('device') or env.get('device', '?')}, engine "
                        f"{manifest.get('engine', '?')}"
                        + (f" (revision {env['engine_revision']})" if "engine_revision" in env else "")
                        + f", threads {manifest.get('threads', env.get('threads', '?'))}, "
                        f"jobs {manifest.get('n_jobs', '?')}, host {manifest.get('host', '?')}, code "
                        f"{manifest.get('code_version', '?')}, deterministic algorithms "
                        f"{env.get('deterministic_algorithms', '?')}; packages: "
                        + (", ".join(f"{k} {v}" for k, v in sorted(pk.items())) or "not recorded")),
        ("Metrics", "test MSE: eval mode on fresh-noise targets at the training x (in-sample error); train "
                    "MSE: eval mode on the training points; gap = test MSE - train MSE; delta = test "
                    "MSE(plain) - test MSE(dropout) on the same seed (> 0: dropout helped); effective df = "
                    "N gap / (2σ²); all after the last step. Diverged and failed trials are counted, not "
                    "averaged."),
        ("Statistics", _intervals(method, n_resamples, seed) + "; P(delta > 0) with a "
                       "Wilson interval; the verdict's test on the mean delta: Student's t and Hall's (1992) "
                       "skewness-corrected t, the larger p, directions agreeing; Holm and Benjamini-Hochberg "
                       "across the family of cells with a p-value (statsmodels multipletests), beside each "
                       "cell's Bonferroni (1 - 0.05/cells) interval; equivalence by two one-sided t-tests "
                       f"(TOST) within ±the smallest effect of interest, {rep.smallest_effect}, Holm-adjusted; "
                       f"{_skew_words(rep)}; the best cell's interval is Bonferroni-simultaneous over the cells "
                       "it was chosen from; seeds planned for 80% power of that test at Holm's first step "
                       "(alpha / cells); the Wilcoxon signed-rank p and the Hodges-Lehmann estimate are shown "
                       "unadjusted, for reference. Details: docs/statistics.md."),
        ("Decision rule", RULE),
    ]
    return rows


def _skew_words(rep: Estimates) -> str:
    """What the family's skewness check found (``analysis.inference.mean_test.family_skew_check``)."""
    check = rep.cells.attrs.get("skew_check")
    return "no skewness check" if check is None else "skewness check: " + check.sentence()


def _intervals(method: str, n_resamples: int, seed: int) -> str:
    if method == "t":
        return ("95% Student's t intervals of means (simulated coverage 93-97% at 3 to 30 seeds for Gaussian, "
                "moderately skewed and heavy-tailed deltas; about 91-93% for strongly skewed ones), "
                "distribution-free order-statistic intervals of medians (from 6 seeds); no interval below 3 seeds")
    return (f"95% {method} bootstrap intervals (scipy.stats.bootstrap, {n_resamples} resamples, rng seed {seed}); "
            f"no interval below 3 seeds; note: bootstrap intervals under-cover at small seed counts")


def _values(values: Any) -> str:
    """An axis's values, shortened past 12 (a search's continuous values)."""
    vals = list(values) if values is not None else []
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals[:12])
    return f"[{shown}" + (f", ... ({len(vals)} values)]" if len(vals) > 12 else "]")


def _seed_range(seeds: Sequence[int]) -> str:
    s = sorted(int(x) for x in seeds)
    if not s:
        return "none"
    return f"{s[0]}..{s[-1]}" if s == list(range(s[0], s[-1] + 1)) else ", ".join(map(str, s[:20]))
