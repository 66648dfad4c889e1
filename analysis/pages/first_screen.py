"""The report's first screen: three short lines that answer the question, read in ten seconds.

1. where dropout helps (and where it hurts), by the decision rule of ``analysis.inference.decisions``;
2. by how much, at the best cell, with intervals that allow for choosing it among the cells
   (the relative cut by Fieller's interval over the same seeds, ``analysis.inference.ratio``);
3. at what cost, in training step time.

A report whose outcome or smallest effect was changed after the run gets a line above them
saying that it is exploratory (``Estimates.exploratory``). Everything else is ``analysis.pages.prose``.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from ..inference.decisions import ALPHA
from ..numbers.answers import relative
from ..numbers.estimates import Estimates
from . import _render as R
from .prose import axis_name, short_label, share_text, value_text, verdict_keys


def first_screen(rep: Estimates) -> list[str]:
    """The exploratory line (where it applies), then where, by how much, at what cost."""
    out = [R.EXPLORATORY + " " + "; ".join(rep.exploratory) + "; its verdicts are not the sweep's pre-declared ones."
           ] if rep.exploratory else []
    if rep.focus is None or not (rep.cells["delta_n"] > 0).any():
        return out + ["No cell has a finished trial yet, so there is nothing to compare."]
    return out + [where(rep), how_much(rep), cost(rep)]


def where(rep: Estimates) -> str:
    """'Dropout lowers test MSE in 6 of 12 cells: at p ≤ 0.5 for N = 20 and 50; it raises it in none; ...'."""
    c, o = rep.cells, rep.outcome.label
    keys = verdict_keys(c)
    helps, hurts = c[c["verdict"] == "helps"], c[c["verdict"] == "hurts"]
    said = f"Dropout lowers {o} in {len(helps)} of {len(c)} cell{'s' if len(c) != 1 else ''}"
    if len(helps) and rep.axes:
        said += ": " + places(helps, c, rep.axes)
    said += _small(c, keys, "helps")
    said += "; it raises it " + (f"in {len(hurts)}: {places(hurts, c, rep.axes)}" if len(hurts) and rep.axes
                                 else f"in {len(hurts)}" if len(hurts) else "in none") + _small(c, keys, "hurts")
    counts = c["verdict"].value_counts()
    rest = [f"{counts[v]} {v}" for v in counts.index if v not in ("helps", "hurts")]
    n = sorted(set(c["delta_n"].astype(int)))
    seeds = f"{n[0]} seeds per cell" if len(n) == 1 else f"{n[0]}–{n[-1]} seeds per cell"
    return said + ("; " + ", ".join(rest) if rest else "") + f" ({seeds})."


def _small(c: pd.DataFrame, keys: pd.Series, verdict: str) -> str:
    """' (1 of them by less than the smallest effect of interest, 0.009)', or '' where none is."""
    small = keys == f"{verdict}|small"
    if not small.any():
        return ""
    margin = c.loc[small, "margin"].median()
    return f" ({int(small.sum())} of them by less than the smallest effect of interest, {margin:.3g})"


def places(sub: pd.DataFrame, c: pd.DataFrame, axes: Sequence[str]) -> str:
    """Where the cells ``sub`` of ``c`` lie, compactly: 'at p ≤ 0.5 for N = 20 and 50'."""
    if len(axes) == 1:
        return "at " + _span(sub[axes[0]], c[axes[0]], axes[0])
    group = "task" if "task" in axes else min(axes, key=lambda a: (c[a].nunique(), list(axes).index(a)))
    rest = [a for a in axes if a != group]
    if len(rest) > 1:                       # three or more axes: name the cells, at most four
        labels = [short_label(r, axes) for _, r in sub.iterrows()]
        return "at " + "; ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
    runs: dict[str, list[Any]] = {}         # the same span of the other axis: one phrase for its groups
    for g, part in sub.groupby(group, sort=True):
        runs.setdefault(_span(part[rest[0]], c.loc[c[group] == g, rest[0]], rest[0]), []).append(g)
    return "; ".join(f"at {span} for {axis_name(group)} = {_and([value_text(g) for g in gs])}"
                     for span, gs in runs.items())


def _span(values: pd.Series, every: pd.Series, axis: str) -> str:
    """'p ≤ 0.5', 'p ≥ 0.3', 'every p', or 'p = 0.1, 0.5': ``values`` among the axis's ``every`` values."""
    allv, got = sorted(set(every)), sorted(set(values))
    name = axis_name(axis)
    if got == allv and len(allv) > 1:
        return f"every {name}"
    numeric = pd.api.types.is_numeric_dtype(every)
    if numeric and len(got) >= 2:
        i = allv.index(got[0])
        if allv[i:i + len(got)] == got:     # a run of neighbouring values
            if i == 0:
                return f"{name} ≤ {value_text(got[-1])}"
            if i + len(got) == len(allv):
                return f"{name} ≥ {value_text(got[0])}"
            if len(got) >= 3:
                return f"{value_text(got[0])} ≤ {name} ≤ {value_text(got[-1])}"
    return f"{name} = {', '.join(value_text(v) for v in got)}"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def how_much(rep: Estimates) -> str:
    """The best cell's cut with its selection-aware interval, absolute and relative to the plain net's error."""
    c, b, o = rep.cells, rep.best, rep.outcome
    if b is None:
        return ("By how much: no cell has enough seeds yet to name the best (a cell needs half its planned "
                "seeds, and at least 3).")
    r = c.loc[b.index]
    at = short_label(r, rep.axes)
    ci = f"{b.mean:.3f} [{b.low:.3f}, {b.high:.3f}]"
    choice = f"intervals allow for picking the best of {b.family} cells"
    if b.low <= 0:
        return (f"By how much: the largest mean cut, at {at}, is {ci}; allowing for picking it among {b.family} "
                f"cells, its interval includes 0.")
    if r["verdict"] != "helps":
        return (f"By how much: the largest mean cut, at {at}, is {ci} ({choice}), but that cell's verdict is "
                f"'{r['verdict']}', so no benefit is claimed there.")
    ok = rep.pairs[rep.pairs["status"] == "ok"]     # each (seed, pair of arms) once
    rel = relative(ok, r, rep.axes, o.name, floor=None, confidence=1 - ALPHA / b.family)
    plain = r[f"{o.name}_plain_mean"]
    share = f", {share_text(rel.of_plain)} of the plain net's {plain:.3f}" if rel else ""
    small = f", below the smallest effect of interest ({r['margin']:.3g})" if bool(r.get("below_margin", False)) else ""
    return f"Most at {at}: {ci} lower {o.label}{share}{small} ({choice})."


def cost(rep: Estimates) -> str:
    """Dropout's training step time against the plain net's, per engine."""
    k = rep.cost
    if k is None or not k.step_ratio:
        return "At what cost: no trial was timed on one engine for both nets, so the cost is not measured."
    parts = []
    for engine, (ratio, n) in k.step_ratio.items():
        q = k.step_ratio_quartiles.get(engine)
        spread = f", quartiles {q[0]:.2f}–{q[1]:.2f}×" if q and f"{q[0]:.2f}" != f"{q[1]:.2f}" else ""
        parts.append(f"{ratio:.2f}× the plain net's on the {engine} engine (median over {n} trials{spread})")
    return "At what cost: a dropout training step takes " + "; ".join(parts) + "."
