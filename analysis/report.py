"""The statistical report of a sweep: findings, design, tables and figures, in one page.

``build_report`` computes everything (pure, apart from rerunning one trial for its picture);
``write_report`` writes ``report.html`` (self-contained), ``report.md``, ``figures/*.png`` and
``tables/*.csv``.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from . import _render as R
from .cells import cell_axes, cell_label, cell_table, focus_cell, slice_through
from .frame import curves_frame, records_frame
from .known_answers import known_answer_table, known_answer_trials, textbook
from .stats import DEFAULT_METHOD, DEFAULT_RESAMPLES, effective_df

TREND_AXES = ("n_train", "dropout", "width")
MAX_CURVE_TRIALS = 200  # learning curves: at most this many seeds per cell
MAX_LINES = 6           # an axis with more values than this is not drawn as coloured lines
MAX_PANELS = 5          # nor as side-by-side panels


@dataclass
class Report:
    """Everything the report says; tables are DataFrames, figures are (name, caption, fig)."""
    trials: pd.DataFrame
    cells: pd.DataFrame
    axes: list[str]
    focus: Optional[int]
    known: pd.DataFrame
    beside: pd.DataFrame
    findings: list[str]
    design: list[tuple[str, str]]
    figures: list[tuple[str, str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage


def build_report(records: Sequence[Mapping[str, Any]], manifest: Optional[Mapping[str, Any]] = None, *,
                 seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES, method: str = DEFAULT_METHOD,
                 focus: Optional[Mapping[str, Any]] = None, seed_picture: bool = True,
                 figures: bool = True) -> Report:
    """Statistics, known answers and (unless ``figures=False``) figures of a set of records.

    ``focus`` picks the cell the findings lead with (default: nearest the seed experiment).
    """
    manifest = dict(manifest or {})
    clock = _Clock()
    trials = records_frame(records)
    axes = cell_axes(trials, manifest)
    expected = len(manifest.get("seeds") or []) or None
    cells = cell_table(trials, axes, expected_seeds=expected, seed=seed, n_resamples=n_resamples,
                       method=method)
    clock.lap("cells")
    ok = trials[trials["status"] == "ok"]
    fidx = focus_cell(cells, axes, focus) if len(cells) else None
    known = (known_answer_table(known_answer_trials(zip(ok["seed"], ok["n_train"], ok["noise_std"])),
                                seed=seed, n_resamples=n_resamples, method=method)
             if len(ok) else pd.DataFrame())
    beside = _beside(ok, cells, axes, fidx, seed=seed, n_resamples=n_resamples, method=method)
    clock.lap("known answers")
    rep = Report(trials=trials, cells=cells, axes=axes, focus=fidx, known=known, beside=beside,
                 findings=[], design=[], seconds=clock.seconds)
    rep.findings = findings(rep, method=method)
    rep.design = design(rep, manifest, records, seed=seed, n_resamples=n_resamples, method=method)
    if figures and len(ok):
        rep.figures = make_figures(rep, records, seed_picture=seed_picture)
    clock.lap("figures")
    return rep


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def _beside(ok: pd.DataFrame, cells: pd.DataFrame, axes: list[str], fidx: Optional[int], **boot) -> pd.DataFrame:
    """The focus cell's nets beside the oracle and the least-squares line on the same seeds."""
    if fidx is None or cells.loc[fidx, "delta_n"] == 0:
        return pd.DataFrame()
    from .stats import bootstrap_ci

    row = cells.loc[fidx]
    sel = ok
    for a in axes:
        sel = sel[sel[a] == row[a]]
    n, sd = int(row["n_train"]), float(row["noise_std"])
    ka = known_answer_trials((s, n, sd) for s in sel["seed"])
    values = {"plain net": {m: sel[f"{m}_plain"].to_numpy(float) for m in ("train_mse", "test_mse", "gap")},
              f"dropout net (p={row.get('dropout', sel['dropout'].iloc[0]):g})":
                  {m: sel[f"{m}_dropout"].to_numpy(float) for m in ("train_mse", "test_mse", "gap")}}
    for pred in ("oracle", "least_squares"):
        g = ka[ka["predictor"] == pred]
        values[pred.replace("_", "-") + (" line" if pred == "least_squares" else " y = x")] = {
            m: g[m].to_numpy(float) for m in ("train_mse", "test_mse", "gap")}
    book = textbook(sd, n)
    expected = [None, None, book.loc["oracle"], book.loc["least_squares"]]
    out = []
    for (name, v), exp in zip(values.items(), expected):
        r: dict[str, Any] = {"predictor": name, "seeds": len(v["test_mse"])}
        for j, m in enumerate(("train_mse", "test_mse", "gap")):
            low, high = bootstrap_ci(v[m], seed=np.random.SeedSequence([boot["seed"], j]),
                                     n_resamples=boot["n_resamples"], method=boot["method"])
            r[m] = R.ci(v[m].mean(), low, high)
            r[f"{m} textbook"] = R.num(exp[m]) if exp is not None else ""
        r["eff. df"] = R.num(float(effective_df(v["gap"].mean(), n, sd)), 1)
        out.append(r)
    return pd.DataFrame(out)


def _direction(mean: float) -> str:
    return "lowers" if mean > 0 else "raises" if mean < 0 else "does not change"


def findings(rep: Report, *, method: str) -> list[str]:
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


def design(rep: Report, manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]], *,
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


def make_figures(rep: Report, records: Sequence[Mapping[str, Any]], *, seed_picture: bool) -> list[tuple[str, str, Any]]:
    """Every figure of the report as (name, caption, figure); axes a figure cannot show are held at the focus cell."""
    from . import figures as F

    c, axes, fidx = rep.cells, rep.axes, rep.focus
    ok = rep.trials[rep.trials["status"] == "ok"]
    sigma2 = float(c.loc[fidx, "noise_std"]) ** 2
    out = []
    if axes:
        for x in [a for a in TREND_AXES if a in axes] or axes[:1]:
            others = [a for a in axes if a != x]
            hue = next((a for a in others if c[a].nunique() <= MAX_LINES), None)
            col = next((a for a in others if a != hue and c[a].nunique() <= MAX_PANELS), None)
            shown = [x] + [a for a in (hue, col) if a]
            cs, held = _hold(c, axes, fidx, shown)
            out.append((f"delta_vs_{x}", f"Paired delta against {x}: each dot one seed; line and band: cell mean "
                                         f"and its 95% paired bootstrap CI{held}.",
                        F.plot_delta_trend(_trials_in(ok, cs, axes), cs, shown, x)[0]))
    else:
        t1, c1 = ok.assign(cell="all trials"), c.assign(cell="all trials")
        out.append(("delta", "Paired delta per seed with the mean and its 95% paired bootstrap CI.",
                    F.plot_delta_trend(t1, c1, ["cell"], "cell")[0]))
    if len(axes) >= 2:
        facet = axes[2] if len(axes) > 2 and c[axes[2]].nunique() <= MAX_PANELS else None
        cs, held = _hold(c, axes, fidx, [a for a in (axes[0], axes[1], facet) if a])
        out.append(("delta_heatmap", f"Mean delta over {axes[0]} and {axes[1]}"
                    + (f", one panel per {facet}" if facet else "") + held
                    + "; * Holm-adjusted p < 0.05, + significant after BH only.",
                    F.plot_delta_heatmap(cs, axes[0], axes[1], facet)[0]))
    vary = axes[0] if axes else None
    sl_cells = slice_through(c, axes, fidx, vary) if vary else c
    if vary and len(sl_cells) > MAX_PANELS:  # evenly spaced values, the focus among them
        keep = set(np.linspace(0, len(sl_cells) - 1, MAX_PANELS).round().astype(int)) | {
            list(sl_cells.index).index(fidx)}
        sl_cells = sl_cells.iloc[sorted(keep)]
    _, held = _hold(c, axes, fidx, [vary] if vary else [])
    sl_trials = _trials_in(ok, sl_cells, axes)
    where = (f" for each {vary}" if vary else "") + held
    out.append(("arms_test_mse", f"Test MSE per seed of both arms{where}; dotted: the floor sigma^2.",
                F.plot_arms(sl_trials, vary, floor=sigma2)[0]))
    firsts = sl_trials.sort_values("seed").groupby(axes or (lambda _: 0), sort=False).head(MAX_CURVE_TRIALS)
    ids = set(firsts["trial_id"])
    curves = curves_frame(r for r in records if r["trial_id"] in ids and r.get("status") == "ok")
    if len(curves):
        out.append(("learning_curves", f"Test MSE against step{where}: mean over seeds (at most "
                                        f"{MAX_CURVE_TRIALS} per cell), 95% t-interval band.",
                    F.plot_learning_curves(curves, vary, floor=sigma2)[0]))
    if seed_picture:
        pic = _seed_picture(ok, c, axes, fidx, records)
        if pic is not None:
            out.append(pic)
    if ok["step_seconds_median_plain"].notna().any():
        out.append(("step_time", "Median wall time of one training step against width, by engine and arm.",
                    F.plot_step_time(ok)[0]))
    return out


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


def _seed_picture(ok: pd.DataFrame, c: pd.DataFrame, axes: list[str], fidx: int,
                  records: Sequence[Mapping[str, Any]]):
    """Rerun the median-delta seed of the focus cell with its fitted curves and draw the seed's picture."""
    import torch

    from bench import TrialConfig, run_trials

    from . import figures as F

    sel = _trials_in(ok, c.loc[[fidx]], axes).sort_values("delta_test_mse")
    if sel.empty:
        return None
    row = sel.iloc[(len(sel) - 1) // 2]
    config = next(r.get("config") or r["result"]["config"] for r in records if r["trial_id"] == row["trial_id"])
    cfg = TrialConfig.from_dict(config).replace(device="cpu")
    engine = row["engine_plain"] if row["engine_plain"] in ("single", "batched") else "single"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small net: extra threads only contend (10x slower on a busy machine)
    try:
        result = run_trials([cfg], engine=engine, record_fits=True)[0]  # the engine that stored it
    finally:
        torch.set_num_threads(threads)
    caption = (f"The seed's own picture for the median-delta seed ({row['seed']}) of {cell_label(c.loc[fidx], axes)}, "
               f"rerun on the CPU: stored delta {row['delta_test_mse']:+.4f}, rerun {result.delta_test_mse:+.4f}.")
    return ("seed_picture", caption, F.plot_seed_picture(result)[0])


# ---- tables and files -------------------------------------------------------------------
def cells_display(rep: Report) -> pd.DataFrame:
    c, axes = rep.cells, rep.axes
    rows = []
    for _, r in c.iterrows():
        d = {a: R.num(r[a], 3).rstrip("0").rstrip(".") if isinstance(r[a], float) else r[a] for a in axes}
        d["seeds ok/planned"] = f"{int(r['n_ok'])}/{int(r['n_expected'])}" + (
            f" ({int(r['n_diverged'])} div, {int(r['n_failed'])} fail)" if r["n_diverged"] or r["n_failed"] else "")
        d["test MSE plain"] = R.ci(r["test_mse_plain_mean"], r["test_mse_plain_ci_low"], r["test_mse_plain_ci_high"])
        d["test MSE dropout"] = R.ci(r["test_mse_dropout_mean"], r["test_mse_dropout_ci_low"],
                                     r["test_mse_dropout_ci_high"])
        d["mean delta"] = R.ci(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], 4)
        d["median delta"] = R.ci(r["delta_median"], r["delta_median_ci_low"], r["delta_median_ci_high"], 4)
        d["d_z"] = R.num(r["delta_dz"], 2)
        d["P(delta>0)"] = R.ci(r["delta_p_improve"], r["delta_p_improve_low"], r["delta_p_improve_high"], 2)
        d["p Wilcoxon"] = R.pvalue(r["delta_p_wilcoxon"])
        d["p Holm"] = R.pvalue(r["p_holm"]) + ("*" if r["sig_holm"] else "")
        d["p BH"] = R.pvalue(r["p_bh"]) + ("*" if r["sig_bh"] else "")
        d["seeds for 80%"] = R.count(r["delta_seeds_80"])
        rows.append(d)
    return pd.DataFrame(rows)


def arms_display(rep: Report) -> pd.DataFrame:
    rows = []
    for _, r in rep.cells.iterrows():
        for arm in ("plain", "dropout"):
            d = {a: r[a] for a in rep.axes}
            d["arm"] = arm
            for m in ("test_mse", "train_mse", "gap"):
                p = f"{m}_{arm}"
                d[f"{m} mean [CI]"] = R.ci(r[f"{p}_mean"], r[f"{p}_ci_low"], r[f"{p}_ci_high"])
                d[f"{m} median"] = R.num(r[f"{p}_median"])
            d["eff. df"] = R.num(r[f"eff_df_{arm}"], 1)
            rows.append(d)
    return pd.DataFrame(rows)


def known_display(rep: Report) -> pd.DataFrame:
    rows = []
    for _, r in rep.known.iterrows():
        d = {"N": int(r["n_train"]), "sigma": r["noise_std"], "predictor": r["predictor"], "seeds": int(r["n_seeds"])}
        for m in ("train_mse", "test_mse", "gap"):
            d[m] = R.ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
            d[f"{m} textbook"] = R.num(r[f"{m}_expected"]) + ("" if r[f"{m}_within"] else " (outside CI)")
        rows.append(d)
    return pd.DataFrame(rows)


def write_report(out_dir: str | Path, *, records: Optional[Sequence[Mapping[str, Any]]] = None,
                 manifest: Optional[Mapping[str, Any]] = None, sweep_dir: str | Path | None = None,
                 seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES, method: str = DEFAULT_METHOD,
                 seed_picture: bool = True, seconds: Optional[dict[str, float]] = None) -> Path:
    """Write report.html, report.md, figures/*.png and tables/*.csv into ``out_dir``; return the HTML path.

    Records and manifest not given are loaded from ``sweep_dir`` (default ``out_dir``) with
    ``analysis.load``. ``seconds``, if given, receives the wall time of each stage.
    """
    import matplotlib.pyplot as plt

    from sweeps._files import atomic_write

    def put(path: Path, data: bytes) -> None:  # temp file, rename; readable by all, like any report
        atomic_write(path, lambda tmp: (Path(tmp).write_bytes(data), os.chmod(tmp, 0o644)))

    out_dir = Path(out_dir)
    src = Path(sweep_dir) if sweep_dir is not None else out_dir
    if records is None or manifest is None:
        from . import load
        records = load.load_records(src) if records is None else records
        manifest = load.load_manifest(src) if manifest is None else manifest
    rep = build_report(records, manifest, seed=seed, n_resamples=n_resamples, method=method,
                       seed_picture=seed_picture)
    clock = _Clock()
    pngs: dict[str, bytes] = {}
    for name, _, fig in rep.figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        pngs[name] = buf.getvalue()
        put(out_dir / "figures" / f"{name}.png", pngs[name])
    clock.lap("png")
    tables = {"cells": rep.cells, "known_answers": rep.known, "trials": rep.trials.drop(columns=["error"])}
    for name, table in tables.items():
        put(out_dir / "tables" / f"{name}.csv", table.to_csv(index=False).encode())
    sections: list[tuple[str, str, Any]] = [
        ("Paired comparison per cell", "delta = test MSE(plain) - test MSE(dropout) per seed; mean and median "
         "with 95% bootstrap CIs; * marks adjusted p < 0.05. Full numbers: tables/cells.csv.", cells_display(rep)),
    ]
    if len(rep.beside):
        sections.append(("Nets beside the known answers", "The focus cell "
                         f"({cell_label(rep.cells.loc[rep.focus], rep.axes)}) on its own seeds: mean [95% CI].",
                         rep.beside))
    sections.append(("Both arms per cell", "Mean [95% CI] and median of each arm's metrics; eff. df = N gap / (2 sigma^2).",
                     arms_display(rep)))
    if len(rep.known):
        sections.append(("Known answers on all seeds", "Oracle y = x and the least-squares line on the data of "
                         "every finished trial, against ESL 7.4's in-sample table.", known_display(rep)))
    sections += [(name.replace("_", " ").capitalize(), "", ("figure", name, caption)) for name, caption, _ in rep.figures]
    title = f"dropout-bench report: {(manifest or {}).get('name', 'trials')}"
    put(out_dir / "report.md", R.render_markdown(title, rep.findings, rep.design, sections).encode())
    html_path = out_dir / "report.html"
    put(html_path, R.render_html(title, rep.findings, rep.design, sections, pngs).encode())
    clock.lap("tables and pages")
    if seconds is not None:
        seconds.update(rep.seconds, **clock.seconds)
    return html_path
