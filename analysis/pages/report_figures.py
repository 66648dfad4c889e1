"""The figures of a sweep's report, chosen from its axes: paired delta against each swept
field, a heatmap over two, both arms and learning curves through the focus cell, the
trial's own picture for the focus cell's median seed, and step times.

An axis a figure cannot show is held at the focus cell's value, and the caption says so.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bench import TASKS
from bench.arms import label

from ..numbers.cells import cell_label, slice_through
from ..numbers.estimates import Estimates
from ..records.frame import curves_frame
from . import figures as F
from .prose import formula

TREND_AXES = ("n_train", "dropout", "width")
MAX_CURVE_TRIALS = 200  # learning curves: at most this many seeds per cell
MAX_LINES = 6           # an axis with more values than this is not drawn as coloured lines
MAX_PANELS = 5          # nor as side-by-side panels
MAX_DOTS = 5_000        # per-seed dots in one figure: beyond this they only blacken the panel and slow it


def make_figures(rep: Estimates, records: Sequence[Mapping[str, Any]], *,
                 seed_picture: bool, seed: int = 0) -> list[tuple[str, str, Any]]:
    """Every figure of the report as (name, caption, figure); ``seed_picture`` reruns one trial for its picture.

    ``seed``: where a figure has more than ``MAX_DOTS`` seeds, which of them it draws as dots (the
    means and intervals use every seed, and the caption says how many are drawn)."""
    c, axes, fidx = rep.cells, rep.axes, rep.focus
    ok = rep.pairs[rep.pairs["status"] == "ok"]     # each (seed, pair of arms) once: a dot is a seed
    sigma2 = float(c.loc[fidx, "noise_std"]) ** 2
    out = _delta_figures(rep, ok, seed=seed)
    if any(len(t) for t in rep.comparisons.values()):
        out.append(_against_figure(rep))
    if rep.trend is not None and len(rep.trend.curves):
        out.append(_trend_figure(rep))
    vary = axes[0] if axes else None
    sl_cells = slice_through(c, axes, fidx, vary) if vary else c
    if vary and len(sl_cells) > MAX_PANELS:  # evenly spaced values, the focus among them
        keep = set(np.linspace(0, len(sl_cells) - 1, MAX_PANELS).round().astype(int)) | {
            list(sl_cells.index).index(fidx)}
        sl_cells = sl_cells.iloc[sorted(keep)]
    _, held = _hold(c, axes, fidx, [vary] if vary else [])
    sl_trials = _trials_in(ok, sl_cells, axes)
    where = (f" for each {vary}" if vary else "") + held
    out.append(("arms_test_mse", f"Test MSE per seed of both arms{where} ({_seeds_text(sl_cells)}); dotted: "
                                 "the noise floor σ².",
                F.plot_arms(sl_trials, vary, floor=sigma2)[0]))
    firsts = sl_trials.sort_values("seed").groupby(axes or (lambda _: 0), sort=False).head(MAX_CURVE_TRIALS)
    ids = set(firsts["trial_id"])
    curves = curves_frame(r for r in records if r["trial_id"] in ids and r.get("status") == "ok")
    if len(curves):
        per_cell = curves.groupby([*(axes or []), "arm"])["trial_id"].nunique() if axes else \
            curves.groupby("arm")["trial_id"].nunique()
        lo, hi = int(per_cell.min()), int(per_cell.max())
        out.append(("learning_curves", f"Test MSE against step{where}: mean over "
                                        f"{lo if lo == hi else f'{lo}-{hi}'} seeds per cell, 95% t-interval band.",
                    F.plot_learning_curves(curves, vary, floor=sigma2)[0]))
    if seed_picture:
        pic = _fit_picture(ok, c, axes, fidx, records)
        if pic is not None:
            out.append(pic)
    if "width" in axes and ok["step_seconds_median_plain"].notna().any():  # cost depends on width
        out.append(("step_time", "Median wall time of one training step against width, by engine and arm.",
                    F.plot_step_time(ok)[0]))
    return out


def _delta_figures(rep: Estimates, ok: pd.DataFrame, *, seed: int) -> list[tuple[str, str, Any]]:
    """The paired delta against each swept axis (or per seed, with none), and the heatmap over two axes."""
    c, axes, fidx = rep.cells, rep.axes, rep.focus
    o = rep.outcome.label
    trend = {"column": f"delta_{rep.outcome.name}", "label": o}
    out = []
    if axes:
        for x in [a for a in TREND_AXES if a in axes] or axes[:1]:
            others = [a for a in axes if a != x]
            hue = next((a for a in others if c[a].nunique() <= MAX_LINES), None)
            col = next((a for a in others if a != hue and c[a].nunique() <= MAX_PANELS), None)
            shown = [x] + [a for a in (hue, col) if a]
            cs, held = _hold(c, axes, fidx, shown)
            dots, drawn = _subsample(_trials_in(ok, cs, axes), seed=seed)
            out.append((f"delta_vs_{x}", f"Paired delta of {o} against {F.LABELS.get(x, x)}: each dot one seed "
                                         f"({_seeds_text(cs)}{drawn}); line and band: the cell's mean and its 95% "
                                         f"t-interval{held}.",
                        F.plot_delta_trend(dots, cs, shown, x, **trend)[0]))
    else:
        (t1, drawn), c1 = _subsample(ok.assign(cell="all trials"), seed=seed), c.assign(cell="all trials")
        out.append(("delta", f"Paired delta of {o} per seed ({_seeds_text(c)}{drawn}) with the mean and its 95% "
                             "t-interval.", F.plot_delta_trend(t1, c1, ["cell"], "cell", **trend)[0]))
    if len(axes) >= 2:
        facet = axes[2] if len(axes) > 2 and c[axes[2]].nunique() <= MAX_PANELS else None
        cs, held = _hold(c, axes, fidx, [a for a in (axes[0], axes[1], facet) if a])
        which = ("its 95% t-interval simultaneous over the cells (Bonferroni)" if "delta_bonf_low" in cs
                 else "its 95% t-interval")
        out.append(("delta_heatmap", f"Mean paired Δ of {o} (plain − dropout; blue: dropout helped) over "
                    f"{F.LABELS.get(axes[0], axes[0])} and {F.LABELS.get(axes[1], axes[1])} ({_seeds_text(cs)})"
                    + (f", one panel per {facet}" if facet else "") + held
                    + f"; under each mean, {which}, then the verdict by the report's decision rule "
                    "(a Holm-adjusted test; † where that test and the simultaneous interval disagree).",
                    F.plot_delta_heatmap(cs, axes[0], axes[1], facet, label=o)[0]))
    return out


def _against_figure(rep: Estimates) -> tuple[str, str, Any]:
    """Dropout against each comparator arm, per cell: N across (or the first axis), the other axes down."""
    axes = rep.axes
    x = "n_train" if "n_train" in axes else (axes[0] if axes else "n_train")
    rows = sorted((a for a in axes if a != x), key=lambda a: a != "task")   # grouped by task first
    tables = {arm: t for arm, t in rep.comparisons.items() if len(t)}
    o = rep.outcome.label
    caption = (f"Mean paired delta of {o}, alternative minus dropout on the same seed (blue: dropout better), "
               f"per cell ({_seeds_text(next(iter(tables.values())))}); 'better' / 'worse': the decision rule "
               "(Holm within each comparison); blank: not detected. Numbers: the table above.")
    return ("against", caption, F.plot_against(tables, x, rows, names={a: label(a) for a in tables}, label=o)[0])


def _trend_figure(rep: Estimates) -> tuple[str, str, Any]:
    """The trend model's curves over the cell means, one colour per N; any other axis held at the focus cell's value."""
    tr, f = rep.trend, rep.cells.loc[rep.focus]
    hue = next((a for a in ("n_train", "width") if a in tr.curves), None)
    held = [a for a in ("n_train", "width") if a in tr.curves and a != hue]
    cell_fit, curves = tr.cell_fit, tr.curves
    for a in held:   # the value of the focus cell, or the nearest one the model was fitted at
        v = min(curves[a].unique(), key=lambda u: abs(float(u) - float(f[a])))
        cell_fit, curves = cell_fit[cell_fit[a] == v], curves[curves[a] == v]
    where = ", ".join(f"{F.LABELS.get(a, a)} = {curves[a].iloc[0]:g}" for a in held)
    caption = (f"The trend model ({tr.method}: {formula(tr.formula)}) over the cell means of {rep.outcome.label}; bars "
               f"and bands are 95% intervals" + (f"; one colour per {F.LABELS.get(hue, hue)}" if hue else "")
               + (f"; at {where}" if where else "") + (f"; {tr.scope}" if tr.scope else "") + ".")
    return ("trend", caption, F.plot_trend(cell_fit, curves, hue, label=rep.outcome.label)[0])


def _subsample(trials: pd.DataFrame, limit: int = MAX_DOTS, *, seed: int) -> tuple[pd.DataFrame, str]:
    """At most ``limit`` of ``trials``, drawn without replacement from ``default_rng(seed)`` and kept in
    their order, and a caption fragment that says so ("" when all are kept)."""
    if len(trials) <= limit:
        return trials, ""
    keep = np.sort(np.random.default_rng(seed).choice(len(trials), size=limit, replace=False))
    return trials.iloc[keep], f"; a random {limit:,} of {len(trials):,} seeds shown"


def _seeds_text(cells: pd.DataFrame) -> str:
    """'30 seeds per cell' or '12-30 seeds per cell', from the cells' finished seeds."""
    n = cells["delta_n"].astype(int)
    lo, hi = (int(n.min()), int(n.max())) if len(n) else (0, 0)
    return f"{lo if lo == hi else f'{lo}-{hi}'} seed{'s' if hi != 1 else ''} per cell"


def _hold(c: pd.DataFrame, axes: list[str], fidx: int, shown: list[str]) -> tuple[pd.DataFrame, str]:
    """The cells at the focus cell's value of every axis not shown, and a caption fragment saying so."""
    held = [a for a in axes if a not in shown]
    for a in held:
        c = c[c[a] == c.loc[fidx, a]] if fidx in c.index else c
    return c, (f", at {cell_label(c.iloc[0], held)}" if held and len(c) else "")


def _trials_in(ok: pd.DataFrame, cells: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    if not axes:
        return ok
    keys = set(map(tuple, cells[axes].itertuples(index=False)))
    return ok[[tuple(r) in keys for r in ok[axes].itertuples(index=False)]]


def _fit_picture(ok: pd.DataFrame, c: pd.DataFrame, axes: list[str], fidx: int,
                 records: Sequence[Mapping[str, Any]]) -> tuple[str, str, Any] | None:
    """Rerun the median-delta seed of the focus cell with its fitted curves and draw the tutorial's picture."""
    from .fit_picture import plot_trial_fit, rerun_with_fits  # torch: only when a trial is rerun

    sel = _trials_in(ok, c.loc[[fidx]], axes).sort_values("delta_test_mse")
    if sel.empty:
        return None
    row = sel.iloc[(len(sel) - 1) // 2]
    config = next(r.get("config") or r["result"]["config"] for r in records if r["trial_id"] == row["trial_id"])
    if not TASKS[row["task"]].one_input:   # fitted curves are drawn over one input only
        return None
    engine = row["engine_plain"] if row["engine_plain"] in ("single", "batched") else "single"
    result = rerun_with_fits(config, engine)  # the engine that stored it
    caption = (f"The seed's own picture for the median-delta seed ({row['seed']}) of {cell_label(c.loc[fidx], axes)}, "
               f"rerun on the CPU: stored delta {row['delta_test_mse']:+.4f}, rerun {result.delta_test_mse:+.4f}.")
    return ("seed_picture", caption, plot_trial_fit(result)[0])
