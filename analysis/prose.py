"""The sentences of a sweep's report: the findings (numbers with intervals, in words) and the
design block (what was run, on what, and how every number is defined).

Both read an ``analysis.estimates.Estimates`` and return plain strings.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from . import _render as R
from .cells import cell_label
from .estimates import Estimates


def _direction(mean: float) -> str:
    return "lowers" if mean > 0 else "raises" if mean < 0 else "does not change"


def findings(rep: Estimates, *, method: str) -> list[str]:
    """Three to five plain sentences with numbers and intervals."""
    c, t = rep.cells, rep.trials
    counts = {s: int((t["status"] == s).sum()) for s in ("ok", "diverged", "failed")}
    complete = int((c["n_ok"] >= c["n_expected"]).sum()) if len(c) else 0
    out = [f"{len(t)} trials in {len(c)} cell{'s' if len(c) != 1 else ''} "
           f"({', '.join(rep.axes) if rep.axes else 'nothing swept'}): {counts['ok']} finished, "
           f"{counts['diverged']} diverged, {counts['failed']} failed; {complete} of {len(c)} cells have "
           f"every planned seed finished."]
    if rep.focus is None or c.loc[rep.focus, "delta_n"] == 0:
        out.append("No cell has a finished trial, so there is nothing to compare yet.")
        return out
    f = c.loc[rep.focus]
    label = cell_label(f, rep.axes)
    n = int(f["delta_n"])
    k = int(round(f["delta_p_improve"] * n))
    seeds = f"{n} seeds" if n > 1 else "1 seed: no interval, and one seed proves nothing"
    out.append(
        f"At {label}, dropout {_direction(f['delta_mean'])} test MSE by {abs(f['delta_mean']):.4f} "
        f"(mean paired delta {R.ci(f['delta_mean'], f['delta_ci_low'], f['delta_ci_high'], 4)}, 95% {method} "
        f"bootstrap CI over {seeds}); it helped on {k} of {n} seeds (P(delta > 0) = "
        f"{R.ci(f['delta_p_improve'], f['delta_p_improve_low'], f['delta_p_improve_high'], 2)}), "
        f"d_z = {R.num(f['delta_dz'], 2)}, Wilcoxon p = {R.pvalue(f['delta_p_wilcoxon'])}.")
    family = int(np.isfinite(c["delta_p_wilcoxon"]).sum())
    if family > 1:
        def sig(col: str, sign: int) -> int:
            return int((c[col] & (np.sign(c["delta_mean"]) == sign)).sum())
        best = c.loc[c["delta_mean"].idxmax()]
        out.append(
            f"Across the family of {family} cells, dropout significantly lowered test MSE in "
            f"{sig('sig_holm', 1)} and raised it in {sig('sig_holm', -1)} after Holm "
            f"({sig('sig_bh', 1)} and {sig('sig_bh', -1)} after Benjamini-Hochberg; Wilcoxon signed-rank, "
            f"alpha = 0.05); the largest mean benefit is at {cell_label(best, rep.axes)}: "
            f"{R.ci(best['delta_mean'], best['delta_ci_low'], best['delta_ci_high'], 4)}.")
    if len(rep.known):
        kn = rep.known[(rep.known["n_train"] == f["n_train"]) & (rep.known["noise_std"] == f["noise_std"])]
        o, ls = (kn[kn["predictor"] == p].iloc[0] for p in ("oracle", "least_squares"))
        checks = rep.known[[f"{m}_within" for m in ("train_mse", "test_mse", "gap")]].to_numpy()
        out.append(
            f"Known answers on the same seeds (N = {int(f['n_train'])}, sigma^2 = {f['noise_std'] ** 2:.3f}): "
            f"the oracle's test MSE is {R.ci(o['test_mse'], o['test_mse_ci_low'], o['test_mse_ci_high'])} "
            f"(textbook {o['test_mse_expected']:.3f}) and the least-squares line's "
            f"{R.ci(ls['test_mse'], ls['test_mse_ci_low'], ls['test_mse_ci_high'])} (textbook "
            f"{ls['test_mse_expected']:.3f}); {int(checks.sum())} of {checks.size} known-answer values lie "
            f"inside their CI.")
    seeds80 = f["delta_seeds_80"]
    if np.isfinite(seeds80):
        out.append(f"Resolving an effect of the observed size (d_z = {R.num(f['delta_dz'], 2)}) at 80% power "
                   f"takes about {int(seeds80)} seeds (two-sided paired t-test, alpha = 0.05); this cell has {n}.")
    else:
        out.append(f"The observed effect at {label} is zero or undefined, so no number of seeds resolves it.")
    return out


def design(rep: Estimates, manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]], *,
           seed: int, n_resamples: int, method: str) -> list[tuple[str, str]]:
    """The design block: what was run, on what, and how every number is defined."""
    c, t = rep.cells, rep.trials
    env = next((r["result"].get("env") or {} for r in records if r.get("result")), {})
    spec = manifest.get("spec") or {}
    seeds = manifest.get("seeds") or sorted(t["seed"].unique().tolist())
    grid = spec.get("grid") or {a: sorted(t[a].unique().tolist()) for a in rep.axes}
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
                        f"{manifest.get('engine', '?')}, threads {manifest.get('threads', env.get('threads', '?'))}, "
                        f"jobs {manifest.get('n_jobs', '?')}, host {manifest.get('host', '?')}, code "
                        f"{manifest.get('code_version', '?')}, deterministic algorithms "
                        f"{env.get('deterministic_algorithms', '?')}; packages: "
                        + (", ".join(f"{k} {v}" for k, v in sorted(pk.items())) or "not recorded")),
        ("Metrics", "test MSE: eval mode on fresh-noise targets at the training x (in-sample error); train "
                    "MSE: eval mode on the training points; gap = test MSE - train MSE; delta = test "
                    "MSE(plain) - test MSE(dropout) on the same seed (> 0: dropout helped); effective df = "
                    "N gap / (2 sigma^2); all after the last step. Diverged and failed trials are counted, not "
                    "averaged."),
        ("Statistics", f"95% {method} bootstrap CIs (scipy.stats.bootstrap, {n_resamples} resamples, "
                       f"rng seed {seed}; the cells with equal seed counts resampled in one vectorised call); P(delta > 0) with a "
                       f"Wilson interval; Wilcoxon signed-rank on delta (scipy defaults); Holm and "
                       f"Benjamini-Hochberg across the family of cells with at least one finished seed "
                       f"(statsmodels multipletests); seeds for 80% power from the observed d_z by a "
                       f"two-sided paired t-test (noncentral t)."),
    ]
    return rows


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
