"""Figures of a sweep: seaborn lives here only. Every function takes data, returns ``(fig, axes)``, never saves.

Inputs: ``trials`` is the frame of ``analysis.records.frame.records_frame`` (one row per trial, usually
the finished ones); ``cells`` is ``analysis.numbers.cells.cell_table``. Paired effects are drawn from the
per-seed ``delta_test_mse`` column and the cells' intervals of the mean paired delta, never from seaborn's
own error bars (which bootstrap each group independently).
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: the report writes PNGs, nothing is shown
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats as sps  # noqa: E402

# Okabe & Ito's colour-blind-safe set, ordered so that neighbouring lines differ in hue and lightness
PALETTE = ["#0072B2", "#E69F00", "#CC79A7", "#009E73", "#56B4E9", "#D55E00", "#000000"]
ARM_COLOURS = {"plain": "#D55E00", "dropout": "#0072B2"}  # vermillion / blue, as the seed picture
WIDTH_IN = 11.0  # figures are drawn at the report's column width (about 1100 px at 100 dpi)
VERDICT_MARKS = {"helps": "helps", "hurts": "hurts", "withheld": "withheld",
                 "no effect": "no effect", "not detected": "not detected", "too few seeds": "n < 3"}
DIVERGING = "RdBu"  # ColorBrewer, colour-blind safe: blue = dropout helped, red = it hurt
LABELS = {"n_train": "training points N", "dropout": "dropout rate p (drop)", "width": "width",
          "depth": "depth", "lr": "learning rate", "steps": "steps", "noise_std": "noise σ"}


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _label(axis: str) -> str:
    return LABELS.get(axis, axis)


def plot_delta_trend(trials: pd.DataFrame, cells: pd.DataFrame, axes: Sequence[str], x: str, *,
                     column: str = "delta_test_mse", label: str = "test MSE"):
    """Per-seed delta (``column`` of ``trials``) against swept axis ``x``, with each cell's mean and interval.

    One line per value of the next swept axis (hue), one panel per value of the one after
    (columns). x values are placed evenly in sorted order. Returns (fig, array of Axes).
    """
    others = [a for a in axes if a != x]
    hue, col = (others + [None, None])[:2]
    xs = sorted(cells[x].unique())
    pos = {v: i for i, v in enumerate(xs)}
    hues = sorted(cells[hue].unique()) if hue else [None]
    cols = sorted(cells[col].unique()) if col else [None]
    fig, axs = plt.subplots(1, len(cols), figsize=(WIDTH_IN, 4.2), squeeze=False, sharey=True)
    rng = np.random.default_rng(0)  # jitter only
    width = 0.6 / max(1, len(hues))
    for ax, cv in zip(axs[0], cols):
        for h, hv in enumerate(hues):
            offset = (h - (len(hues) - 1) / 2) * width
            colour = PALETTE[h % len(PALETTE)]
            sel = cells if hue is None else cells[cells[hue] == hv]
            pts = trials if hue is None else trials[trials[hue] == hv]
            if col is not None:
                sel, pts = sel[sel[col] == cv], pts[pts[col] == cv]
            sel = sel.sort_values(x)
            px = pts[x].map(pos).to_numpy(dtype=float) + offset
            ax.scatter(px + rng.uniform(-width / 4, width / 4, len(px)), pts[column],
                       s=8, alpha=0.35, color=colour, linewidths=0)
            cx = sel[x].map(pos).to_numpy(dtype=float) + offset
            name = f"{_label(hue)} = {_fmt(hv)}" if hue else "mean, 95% t-interval"
            ax.plot(cx, sel["delta_mean"], "-o", color=colour, lw=2, ms=4, label=name)
            ax.fill_between(cx, sel["delta_ci_low"], sel["delta_ci_high"], color=colour, alpha=0.2)
        ax.axhline(0, color="0.3", lw=1, ls=":")
        crowded = len(xs) * len(cols) > 16      # many ticks in narrow panels: tilt them
        ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs], rotation=60 if crowded else 0,
                      fontsize=8 if crowded else None)
        ax.set_xlabel(_label(x))
        ax.set_title(f"{_label(col)} = {_fmt(cv)}" if col else "")
        ax.legend(fontsize=9, loc="upper right")  # "best" scans every dot: slow with 10,000 seeds
    axs[0, 0].set_ylabel(f"delta {label} (plain - dropout)\n> 0: dropout helped")
    fig.suptitle("Paired delta per seed (dots); cell mean with its 95% t-interval (band)", fontsize=10)
    fig.tight_layout()
    return fig, axs


def plot_delta_heatmap(cells: pd.DataFrame, x: str, y: str, facet: Optional[str] = None, *, label: str = "test MSE"):
    """Mean delta over two swept axes, each cell marked with its interval and verdict
    (``analysis.inference.decisions``).

    Colour: the mean delta, centred at 0 (blue: dropout helped; ColorBrewer RdBu, colour-blind
    safe). Text: the mean, its interval and the verdict. The verdict is also drawn in line,
    not colour: a solid frame for helps / hurts, a dashed one where the effect lies below the
    smallest effect of interest (``below_margin``), hatching where the verdict is withheld.
    The interval is the Bonferroni one the rule uses (``delta_bonf_low``/``_high``) where the
    table has it, else the cell's 95% interval. One panel per value of ``facet`` if given.
    Returns (fig, array of Axes).
    """
    from matplotlib.patches import Patch, Rectangle

    panels = sorted(cells[facet].unique()) if facet else [None]
    lim = float(np.nanmax(np.abs(cells["delta_mean"]))) or 1.0
    lo_col, hi_col = (("delta_bonf_low", "delta_bonf_high") if "delta_bonf_low" in cells
                      else ("delta_ci_low", "delta_ci_high"))
    rows = cells[y].nunique()
    fig, axs = plt.subplots(1, len(panels), figsize=(WIDTH_IN, 1.5 + 0.8 * rows), squeeze=False)
    small = (cells["below_margin"].fillna(False).astype(bool) if "below_margin" in cells
             else pd.Series(False, index=cells.index))
    verdicts = cells["verdict"] if "verdict" in cells else pd.Series("", index=cells.index)
    font = 9 if cells[x].nunique() * len(panels) <= 8 else 7
    for ax, pv in zip(axs[0], panels):
        sel = cells if facet is None else cells[cells[facet] == pv]
        vs, ss = verdicts[sel.index], small[sel.index]
        differs = sel["interval_differs"] if "interval_differs" in sel else pd.Series(False, index=sel.index)
        sel = sel.assign(text=[_cell_text(m, lo, hi, v, s, bool(dd)) for m, lo, hi, v, s, dd in
                               zip(sel["delta_mean"], sel[lo_col], sel[hi_col], vs, ss, differs)],
                         mark=[("small" if s else "frame") if v in ("helps", "hurts") else
                               "hatch" if v == "withheld" else "" for v, s in zip(vs, ss)])
        mean = sel.pivot_table(index=y, columns=x, values="delta_mean", aggfunc="first", dropna=False)
        mean = mean.sort_index(ascending=False)
        text, mark = (sel.pivot_table(index=y, columns=x, values=k, aggfunc="first")
                      .reindex(index=mean.index, columns=mean.columns).fillna("") for k in ("text", "mark"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)  # seaborn 0.13 on matplotlib 3.11
            sns.heatmap(mean, ax=ax, cmap=DIVERGING, center=0, vmin=-lim, vmax=lim, annot=text.to_numpy(),
                        fmt="", annot_kws={"fontsize": font}, cbar=ax is axs[0, -1],
                        cbar_kws={"label": f"mean Δ {label}\n(> 0: dropout helped)"})
        for i, j in zip(*np.nonzero(mark.to_numpy() != "")):
            m = mark.iat[i, j]
            if m == "hatch":
                ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="0.35", lw=0, zorder=2))
            else:
                ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, edgecolor="black", lw=2.2,
                                       ls="--" if m == "small" else "-", zorder=2))
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(y))
        ax.set_title(f"{_label(facet)} = {_fmt(pv)}" if facet else "")
    keys = [Patch(fill=False, edgecolor="black", lw=2, label="helps / hurts (solid frame)"),
            Patch(fill=False, edgecolor="black", lw=2, ls="--", label="helps / hurts, below the smallest effect"),
            Patch(fill=False, edgecolor="0.35", hatch="///", lw=0, label="withheld: no direction claimed")]
    fig.legend(handles=keys, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle("Mean paired Δ (plain − dropout) per cell, with its interval and verdict", fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig, axs


def _cell_text(mean: float, low: float, high: float, verdict: str, small: bool, differs: bool = False) -> str:
    """'+0.046 / [+0.023, +0.070] / helps' for one heatmap cell; '†' where the interval and the test disagree."""
    if pd.isna(mean):
        return ""
    ci = "" if pd.isna(low) else f"\n[{low:+.3f}, {high:+.3f}]" + (" †" if differs else "")
    word = VERDICT_MARKS.get(verdict, verdict) + (" (< smallest effect)" if small else "")
    return f"{mean:+.3f}{ci}" + (f"\n{word}" if word else "")


AGAINST_MARKS = {"helps": "better", "hurts": "worse", "withheld": "withheld", "no effect": "no diff.",
                 "not detected": "", "too few seeds": "n < 3"}


def plot_against(tables: dict, x: str, rows: Sequence[str], *, names: dict, label: str = "test MSE"):
    """Dropout against each comparator: one heatmap panel per comparator (``analysis.numbers.comparisons``).

    ``tables``: comparator -> its cell table; columns of each panel are the values of ``x``,
    rows the combinations of ``rows`` (the other swept axes). Colour: the mean paired delta
    (comparator - dropout), centred at 0, blue where dropout did better; text: the mean and
    the verdict ("better" / "worse" for dropout; blank: not detected).
    """
    names = dict(names)
    lim = max(float(np.nanmax(np.abs(t["delta_mean"]))) for t in tables.values()) or 1.0
    n_rows = max(len(t.groupby(list(rows))) if rows else 1 for t in tables.values())
    fig, axs = plt.subplots(1, len(tables), figsize=(WIDTH_IN, 1.4 + 0.42 * n_rows), squeeze=False)
    for ax, (arm, t) in zip(axs[0], tables.items()):
        ylab = (t[list(rows)].apply(lambda r: ", ".join(f"{_short(a)}={_fmt(r[a])}" for a in rows), axis=1)
                if rows else pd.Series("all", index=t.index))
        t = t.assign(row=ylab, text=[("" if pd.isna(m) else f"{m:+.3f}") + (f"\n{AGAINST_MARKS.get(v, v)}"
                                                                            if AGAINST_MARKS.get(v, v) else "")
                                     for m, v in zip(t["delta_mean"], t["verdict"])])
        order = list(dict.fromkeys(t.sort_values(list(rows) or [x])["row"]))
        mean = t.pivot_table(index="row", columns=x, values="delta_mean", aggfunc="first").reindex(order)
        text = t.pivot_table(index="row", columns=x, values="text", aggfunc="first").reindex(
            index=mean.index, columns=mean.columns).fillna("")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(mean, ax=ax, cmap=DIVERGING, center=0, vmin=-lim, vmax=lim, annot=text.to_numpy(), fmt="",
                        annot_kws={"fontsize": 8}, cbar=ax is axs[0, -1],
                        cbar_kws={"label": f"mean delta {label}\n(> 0: dropout better)"})
        ax.set_xlabel(_label(x))
        ax.set_ylabel("")
        ax.set_title(f"{names.get(arm, arm)} - dropout")
    fig.suptitle("Dropout against the alternatives: mean paired delta per cell, with its verdict", fontsize=11)
    fig.tight_layout()
    return fig, axs


def _short(axis: str) -> str:
    return {"n_train": "N", "dropout": "p", "noise_std": "σ"}.get(axis, axis)


def plot_arms(trials: pd.DataFrame, x: Optional[str], *, metric: str = "test_mse",
              floor: Optional[float] = None):
    """Per-seed distribution of both arms (violin + strip) for each value of ``x``.

    ``floor`` draws a reference line (σ² for test MSE). Per-seed points are jittered from a
    seeded generator, so the same data draw the same picture. Returns (fig, ax).
    """
    long = trials.melt(id_vars=[c for c in ([x] if x else [])], value_vars=[f"{metric}_plain", f"{metric}_dropout"],
                       var_name="arm", value_name=metric)
    long["arm"] = long["arm"].str.removeprefix(f"{metric}_")
    xcol = x or "cell"
    if x is None:
        long[xcol] = "all trials"
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.2))
    order = sorted(long[xcol].unique())
    sns.violinplot(data=long, x=xcol, y=metric, hue="arm", order=order, hue_order=list(ARM_COLOURS),
                   palette=ARM_COLOURS, inner=None, cut=0, density_norm="width", ax=ax, alpha=0.35,
                   legend=False)
    rng = np.random.default_rng(0)  # jitter only; seaborn's stripplot draws it from numpy's global state
    pos = {v: i for i, v in enumerate(order)}
    for k, (arm, colour) in enumerate(ARM_COLOURS.items()):  # dodged as the violins: -0.2 and +0.2
        pts = long[long["arm"] == arm]
        px = pts[xcol].map(pos).to_numpy(dtype=float) + (k - 0.5) * 0.4
        ax.scatter(px + rng.uniform(-0.075, 0.075, len(px)), pts[metric], s=9, alpha=0.6, color=colour,
                   linewidths=0, label=arm)
    if floor is not None:
        ax.axhline(floor, color="0.3", ls=":", lw=1, label=f"floor σ² = {floor:g}")
    ax.set_xticks(range(len(order)), [_fmt(v) for v in order])
    ax.set_xlabel(_label(x) if x else "")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=8)
    ax.set_title(f"{metric.replace('_', ' ')} per seed, both arms", fontsize=10)
    fig.tight_layout()
    return fig, ax


def mean_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and a t-interval per column. values: (seeds, steps) -> three (steps,) arrays."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, mean, mean
    half = sps.t.ppf(0.5 + confidence / 2, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def plot_learning_curves(curves: pd.DataFrame, panel: Optional[str] = None, *,
                         floor: Optional[float] = None):
    """Test MSE against step for both arms: mean over seeds with a 95% t-interval band.

    curves: long frame (``analysis.records.frame.curves_frame``): trial_id, arm, step, test_mse and the
    config columns; one panel per value of ``panel``. Returns (fig, array of Axes).
    """
    panels = sorted(curves[panel].unique()) if panel else [None]
    fig, axs = plt.subplots(1, len(panels), figsize=(WIDTH_IN, 3.8), squeeze=False, sharey=True)
    for ax, pv in zip(axs[0], panels):
        sel = curves if panel is None else curves[curves[panel] == pv]
        for arm, colour in ARM_COLOURS.items():
            wide = sel[sel["arm"] == arm].pivot_table(index="trial_id", columns="step", values="test_mse")
            if wide.empty:
                continue
            mean, low, high = mean_band(wide.to_numpy(dtype=float))
            sns.lineplot(x=wide.columns.to_numpy(), y=mean, color=colour, ax=ax,
                         label=f"{arm} (n={len(wide)})")
            ax.fill_between(wide.columns.to_numpy(), low, high, color=colour, alpha=0.2)
        if floor is not None:
            ax.axhline(floor, color="0.3", ls=":", lw=1, label="floor σ²")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{_label(panel)} = {_fmt(pv)}" if panel else "", fontsize=10)
        ax.legend(fontsize=8)
    axs[0, 0].set_ylabel("test MSE (eval mode)")
    fig.suptitle("Learning curves: mean over seeds, 95% t-interval band", fontsize=10)
    fig.tight_layout()
    return fig, axs


def plot_step_time(trials: pd.DataFrame):
    """Median wall time of one training step against width, by engine and arm (log-log).

    Left: the step of the whole stacked group; right: divided by the arms in the group.
    """
    parts = []
    for arm in ARM_COLOURS:
        part = pd.DataFrame({"width": trials["width"], "arm": arm,
                             "engine": trials[f"engine_{arm}"].fillna("?").astype(str),
                             "group_ms": trials[f"step_seconds_median_{arm}"] * 1e3,
                             "group_size": trials[f"group_size_{arm}"]})
        parts.append(part)
    long = pd.concat(parts, ignore_index=True).dropna(subset=["group_ms"])
    long["arm_ms"] = long["group_ms"] / long["group_size"].clip(lower=1)
    fig, axs = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.8), squeeze=False)
    for ax, col, title in ((axs[0, 0], "group_ms", "per step of the group"),
                           (axs[0, 1], "arm_ms", "per step per arm")):
        sns.lineplot(data=long, x="width", y=col, hue="engine", style="arm", estimator="median",
                     errorbar=None, marker="o", palette=PALETTE[:long["engine"].nunique()], ax=ax)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel(f"ms {title}")
        ax.set_title(f"median step time, {title}", fontsize=10)
    fig.tight_layout()
    return fig, axs


def plot_trend(cell_fit: pd.DataFrame, curves: pd.DataFrame, hue: Optional[str], *, label: str = "test MSE"):
    """The trend model over the cell means: observed mean delta per cell (dots, 95% bars) and the
    fitted delta against the dropout rate (line, 95% band), one colour per value of ``hue``.

    cell_fit: columns dropout, [hue], mean, se; curves: dropout, [hue], fitted, low, high
    (``analysis.inference.trend.Trend``). Returns (fig, ax).
    """
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.2))
    values = sorted(cell_fit[hue].unique()) if hue else [None]
    for i, v in enumerate(values):
        colour = PALETTE[i % len(PALETTE)]
        cf = cell_fit if hue is None else cell_fit[cell_fit[hue] == v]
        cv = curves if hue is None else curves[curves[hue] == v]
        name = f"{_label(hue)} = {_fmt(v)}" if hue else "fit"
        ax.plot(cv["dropout"], cv["fitted"], color=colour, lw=2, label=name)
        ax.fill_between(cv["dropout"], cv["low"], cv["high"], color=colour, alpha=0.15)
        dodge = (i - (len(values) - 1) / 2) * 0.006 * float(np.ptp(curves["dropout"]) or 1)  # bars side by side
        ax.errorbar(cf["dropout"] + dodge, cf["mean"], yerr=1.96 * cf["se"], fmt="o", color=colour, ms=5, capsize=3)
    ax.axhline(0, color="0.3", lw=1, ls=":")
    ax.set_xlabel(_label("dropout"))
    ax.set_ylabel(f"delta {label} (plain - dropout)\n> 0: dropout helped")
    ax.legend(fontsize=9, loc="upper right")
    ax.set_title("One model across the grid: fitted delta (lines, 95% band) over the cell means (dots, 95% bars)",
                 fontsize=10)
    fig.tight_layout()
    return fig, ax
