"""The sentences of a sweep's report under its first screen (``analysis.pages.first_screen``): the
summary (what the verdicts are on, where, how much, the trend, the cost, the reference
predictors, the seeds), the findings (numbers with intervals, in words) and the design block
(what was run, on what, and how every number is defined). Every verdict comes from
``analysis.inference.decisions``.

Both read an ``analysis.numbers.estimates.Estimates`` and return plain strings.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bench import TASKS
from bench.arms import arm_kind, label

from ..inference.decisions import ALPHA, VERDICTS
from ..inference.stats import MIN_SEEDS
from ..numbers.answers import relative
from ..numbers.cells import cell_label
from ..numbers.estimates import Estimates
from ..records.outcomes import OUTCOMES
from . import _render as R


AXIS_NAMES = {"n_train": "N", "dropout": "p", "width": "width", "depth": "depth", "lr": "lr",
              "steps": "steps", "noise_std": "σ"}
SMALL = "below the smallest effect of interest"   # a helps/hurts cell inside +-the margin (below_margin)
TERMS = {"delta": "Δ", "p2": "p²", "logN": "log N", "logN2": "(log N)²", "logw": "log w", "logw2": "(log w)²",
         "p:logN": "p·log N", "p:logw": "p·log w"}


def term(t: str) -> str:
    """A trend model's term as a reader writes it: 'logN2' -> '(log N)²'."""
    return TERMS.get(t, t)


def formula(f: str) -> str:
    """'delta ~ p + p2 + logN' -> 'Δ ~ p + p² + log N'."""
    lhs, _, rhs = f.partition(" ~ ")
    return f"{term(lhs)} ~ " + " + ".join(term(t) for t in rhs.split(" + ")) if rhs else f


def verdict_keys(c: pd.DataFrame) -> pd.Series:
    """Each cell's verdict, with 'helps|small' / 'hurts|small' where it lies below the smallest effect."""
    small = c["below_margin"].fillna(False).astype(bool) if "below_margin" in c else pd.Series(False, index=c.index)
    return c["verdict"].where(~small, c["verdict"] + "|small")


def _key_order() -> list[str]:
    return [k for v in VERDICTS for k in ((v, f"{v}|small") if v in ("helps", "hurts") else (v,))]


def axis_name(a: str) -> str:
    """An axis as the summary names it ('n_train' -> 'N')."""
    return AXIS_NAMES.get(a, a)


def short_label(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    """'N = 20, p = 0.5' (the summary's short names)."""
    return ", ".join(f"{axis_name(a)} = {value_text(row[a])}" for a in axes) if axes else "all trials"


def value_text(v: Any) -> str:
    """A setting's value as the summary writes it: floats without trailing zeros."""
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def share_text(x: tuple[float, float, float]) -> str:
    """'14% [8%, 20%]'; an unbounded interval says so."""
    r, lo, hi = x
    if not (abs(lo) < float("inf") and abs(hi) < float("inf")):
        return f"{100 * r:.0f}% (interval unbounded)"
    return f"{100 * r:.0f}% [{100 * lo:.0f}%, {100 * hi:.0f}%]"


def summary(rep: Estimates) -> list[str]:
    """Under the first screen's answer: what the verdicts are on, where in detail, the comparators,
    how much, the trend, what the compute went to, the least-squares line, the seeds."""
    c = rep.cells
    if rep.focus is None or not (c["delta_n"] > 0).any():
        return [_declared(rep)]
    out = [_declared(rep), *_where(rep), *_against(rep), _how_much(rep)]
    out += [s for s in (_trend(rep), _cost(rep), _line(rep), _seeds(rep)) if s]
    return out


def _declared(rep: Estimates) -> str:
    """Which outcome the verdicts are on, which were declared before the run, and which others exist."""
    o, declared = rep.outcome, OUTCOMES[rep.declared_outcome]
    held = [x.label for x in OUTCOMES.values() if x.name != o.name and f"delta_{x.name}" in rep.trials
            and rep.trials[f"delta_{x.name}"].notna().any()]
    also = (f" The records also hold {', '.join(held)}: a report on one of those, chosen after seeing these results, "
            "is exploratory." if held else "")
    if o.name == declared.name:
        return (f"Verdicts are on {o.label}, the outcome declared before the run (the spec's [report] outcome; test "
                f"MSE where it names none), with the smallest effect of interest {rep.smallest_effect}.{also}")
    return (f"Verdicts are on {o.label}, chosen after the run; the outcome declared before it is {declared.label}, "
            f"so these verdicts are exploratory.{also}")


def _against(rep: Estimates) -> list[str]:
    """Does dropout beat the alternatives? First each family's best against dropout's best, chosen on
    the even seeds and judged on the odd (analysis.numbers.families); then per setting
    (analysis.numbers.comparisons)."""
    from ..numbers.comparisons import VERDICT_WORDS

    out = _against_families(rep)
    for arm, c in rep.comparisons.items():
        if c.empty or not (c["delta_n"] > 0).any():
            continue
        counts = c["verdict"].value_counts()
        rest = [f"{n} {VERDICT_WORDS.get(v, v)}" for v, n in counts.items() if v not in ("helps", "hurts") and n]
        axes = c.attrs.get("axes", rep.axes)
        out.append(f"Per setting, against {label(arm)} (all seeds, no choice made): dropout does better in "
                   f"{counts.get('helps', 0)} of {len(c)} cells of "
                   f"{', '.join(axis_name(a) for a in axes) or 'the sweep'} and worse in {counts.get('hurts', 0)}"
                   + (f"; {', '.join(rest)}" if rest else "") + ".")
        words = {**{v: v for v in counts.index}, **VERDICT_WORDS}
        out += [f"Against {label(arm)}, {line[0].lower()}{line[1:]}" for line in _where_lines(c, axes, words)]
    return out


def _against_families(rep: Estimates) -> list[str]:
    """One sentence per rival family: in how many groups dropout's best beats its best, and by how much."""
    f = rep.families
    if f is None or f.empty:
        return []
    groups = f.attrs.get("group_axes", [])
    unit = f"({', '.join(axis_name(a) for a in groups)}) groups" if groups else "groups"
    per = " and ".join(axis_name(a) for a in groups) or "sweep"
    out = []
    from ..numbers.families import questions

    for q in questions():
        g = f[f["question"] == q]
        if g.empty:
            continue
        counts = g["verdict"].value_counts()
        chose = [f"{arm_kind(q).chosen} per {per}" if g["rival_settings"].max() > 1 else "",
                 f"dropout's best rate per {per}" if g["dropout_settings"].max() > 1 else ""]
        how = (", ".join(x for x in chose if x) + ", chosen on the even seeds, judged on the odd" if any(chose)
               else "one setting each, judged on the odd seeds")
        head = (f"Against {label(q)} ({how}): dropout better in "
                f"{counts.get('dropout better', 0)} of {len(g)} {unit}, worse in {counts.get('dropout worse', 0)}")
        rest = [f"{counts.get(v, 0)} {v}" for v in ("not detected", "too few seeds") if counts.get(v, 0)]
        decided = g[g["verdict"].isin(["dropout better", "dropout worse"])]
        if len(decided):
            shown = decided.reindex(decided["delta_mean"].abs().sort_values(ascending=False).index)[:4]
            where = "; ".join(f"{r['verdict'].split()[1]} at {short_label(r, groups)}{_choices(r)}: {_family_diff(r)}"
                              for _, r in shown.iterrows())
            tail = f"; where decided, {rep.outcome.label} difference (rival - dropout) " + where
            if len(decided) > len(shown):
                tail += f"; {len(decided) - len(shown)} more in the table"
        elif g["delta_mean"].notna().any():
            r = g.loc[g["delta_mean"].abs().idxmax()]
            tail = f"; the largest mean difference, at {short_label(r, groups)}, is {_family_diff(r)}"
        else:   # a partial sweep: no seed of the judging half has finished yet
            tail = "; no seed of the judging (odd) half has finished yet"
        div = int(g["diverged_dropout"].sum()), int(g["diverged_rival"].sum())
        if any(div):
            tail += (f"; diverged seeds counted against their arm: dropout {div[0]}, {label(q)} {div[1]}")
        out.append(head + (f", {', '.join(rest)}" if rest else "") + tail + ".")
    if out:
        out.append("Each question above is one Holm family across its groups (the verdicts' test of the mean paired "
                   "difference, the verdicts' test); the rule: 'Best of each family' below.")
    return out


def _choices(r: Mapping[str, Any]) -> str:
    """' (dropout=0.5, weight_decay=0.001)': the chosen settings, where there was a choice."""
    said = [x for x, n in ((r["dropout_choice"], r["dropout_settings"]), (r["rival_choice"], r["rival_settings"]))
            if x and n > 1]
    return f" ({', '.join(said)})" if said else ""


def _family_diff(r: Mapping[str, Any]) -> str:
    return (f"{r['delta_mean']:+.4f} [{r['delta_ci_low']:+.4f}, {r['delta_ci_high']:+.4f}], "
            f"Holm p = {R.pvalue(r['p_holm'])}")


def _trend(rep: Estimates) -> str:
    """The trend model's answer in one sentence: the best rate, where the benefit peaks in N, the fit."""
    tr = rep.trend
    if tr is None:
        return ""
    parts = []
    best = tr.best_rate
    if len(best):
        by = [a for a in best.columns if a in ("n_train", "width")]
        where = [(", ".join(f"{axis_name(a)} = {value_text(r[a])}" for a in by) or "overall",
                  (R.ci(r["p_star"], r["ci_low"], r["ci_high"], 2) + (f" ({r['note']})" if r["note"] else ""))
                  if np.isfinite(r["p_star"]) else r["note"])
                 for _, r in best.iterrows()]
        if len(where) > 4 and best["p_star"].notna().any():   # a long list: its two ends, the table for the rest
            lo, hi = best["p_star"].idxmin(), best["p_star"].idxmax()
            where = [where[lo], where[hi]]
            parts.append(f"the rate with the largest benefit, p̂*, runs from {where[0][1]} at {where[0][0]} to "
                         f"{where[1][1]} at {where[1][0]} (every setting: the trend table)")
        else:
            parts.append("the rate with the largest benefit, p̂*, is " + "; ".join(f"{v} at {k}" for k, v in where))
    if tr.peak_n:
        pk = tr.peak_n
        extra = "".join(f"; {s}" for s in pk.get("notes", []))     # where an end left the grid of N
        parts.append(f"at p = {pk['p']:.2g} the benefit peaks near N = {R.ci(pk['n'], pk['ci_low'], pk['ci_high'], 0)}"
                     f" (a quadratic in log N{extra})" if np.isfinite(pk["n"])
                     else f"at p = {pk['p']:.2g} the benefit peaks in N {'; '.join(pk['notes'])}")
    fit = (f"it fits the cell means badly (lack of fit F = {tr.lack_of_fit_f:.2f} on {tr.lack_of_fit_df[0]} and "
           f"{tr.lack_of_fit_df[1]} df, p = {R.pvalue(tr.lack_of_fit_p)}), so read the cells, not the curve"
           if tr.fits_badly else f"it fits the cell means (lack of fit p = {R.pvalue(tr.lack_of_fit_p)})"
           if np.isfinite(tr.lack_of_fit_p) else "its lack of fit cannot be tested with these cells and seeds")
    scope = f", {tr.scope}" if tr.scope else ""
    if not parts:
        return f"Trend across the grid ({tr.method}{scope}): {fit}."
    return f"Trend across the grid ({tr.method}, {formula(tr.formula)}{scope}): " + "; ".join(parts) + f"; {fit}."


def _where(rep: Estimates) -> list[str]:
    """Per value of the axis with the fewest values: the verdict at each value of the others."""
    return _where_lines(rep.cells, rep.axes)


def _where_lines(c: pd.DataFrame, axes: Sequence[str], words: Mapping[str, str] | None = None) -> list[str]:
    """'Where N = 20: helps at p = 0.3, 0.5; ...', verdicts named by ``words`` (default: themselves);
    a helps/hurts cell below the smallest effect of interest is named apart."""
    words = dict(words or {v: v for v in VERDICTS})
    words.update({f"{v}|small": f"{words.get(v, v)}, {SMALL}," for v in ("helps", "hurts")})
    if not axes:
        return []
    c = c.assign(_key=verdict_keys(c))
    order = _key_order() + sorted(set(c["_key"]) - set(_key_order()))   # a verdict the rule adds later, too
    if len(axes) == 1:
        a = axes[0]
        by = {words.get(v, v): [value_text(x) for x in c.loc[c["_key"] == v, a]] for v in order}
        return ["Where: " + "; ".join(f"{v} at {axis_name(a)} = {', '.join(xs)}" for v, xs in by.items() if xs) + "."]
    group = "task" if "task" in axes else min(axes, key=lambda a: (c[a].nunique(), axes.index(a)))
    rest = [a for a in axes if a != group]
    lines = []
    for g, sub in c.groupby(group, sort=True):
        said = []
        for v in order:
            hit = sub[sub["_key"] == v]
            if len(hit):
                where = (f"{axis_name(rest[0])} = " + ", ".join(value_text(x) for x in hit[rest[0]]) if len(rest) == 1
                         else "; ".join(short_label(r, rest) for _, r in hit.iterrows()))
                said.append(f"{words.get(v, v)} at {where}")
        lines.append(f"Where {axis_name(group)} = {value_text(g)}: {'; '.join(said)}.")
    return lines


def _how_much(rep: Estimates) -> str:
    """The best cell in full: both arms' means, the cut, and the cut as a share of the plain net's error and
    of its error above the noise floor, each with an interval simultaneous over the cells it was chosen from."""
    c, b, o = rep.cells, rep.best, rep.outcome
    if b is None:
        return ("By how much: no cell has enough seeds yet to name the best (a cell needs half its planned "
                "seeds, and at least 3).")
    r = c.loc[b.index]
    choice = (f"chosen among the {b.family} cells with at least {b.min_seeds} seeds; its 95% intervals are "
              f"simultaneous over them, so they allow for the choice")
    fieller = "; the shares' intervals are Fieller's over the same seeds"
    if b.low <= 0 or r["verdict"] != "helps":
        why = ("that interval includes 0, so the largest mean cut does not survive the choice" if b.low <= 0 else
               f"that cell's verdict is '{r['verdict']}' ({r['reason']}), so no benefit is claimed there")
        return (f"By how much: the largest mean benefit, at {short_label(r, rep.axes)}, is {b.mean:.4f} {o.label} "
                f"[{b.low:.4f}, {b.high:.4f}] ({choice}); {why}.")
    plain = r[f"{o.name}_plain_mean"]
    known = r.get("task") not in TASKS or TASKS[r["task"]].noise_known   # real labels: no noise of ours, no floor
    floor = o.floor(r["noise_std"]) if o.noisy and known else (None if o.noisy else 0.0)
    ok = rep.pairs[rep.pairs["status"] == "ok"]     # each (seed, pair of arms) once
    rel = relative(ok, r, rep.axes, o.name, floor=floor if floor else None, confidence=1 - ALPHA / b.family)
    shares = ""
    if rel is not None:
        shares = f", {share_text(rel.of_plain)} of the plain net's {o.label}"
        if rel.above_floor is not None:
            shares += f" and {share_text(rel.above_floor)} of its error above the noise floor σ² = {floor:.3g}"
    return (f"By how much: most at {short_label(r, rep.axes)}, where {o.label} falls from {plain:.3f} (plain) to "
            f"{r[f'{o.name}_dropout_mean']:.3f} (dropout): a cut of {b.mean:.4f} [{b.low:.4f}, {b.high:.4f}]"
            f"{shares} ({choice}{fieller if shares else ''}).")


def _cost(rep: Estimates) -> str:
    k = rep.cost
    if k is None:
        return ""
    return (f"Compute: dropout arms took {_pct(k.dropout_share)} of this sweep's training time; a plain arm does not "
            f"depend on the rate, so it is trained once and shared by every rate.")


def _diff(name: str, mean: float, low: float, high: float) -> str:
    """'the plain net is 0.021 [0.012, 0.030] worse': the direction only where the interval excludes 0."""
    ci = f"{abs(mean):.3f} [{low:.3f}, {high:.3f}]" if low > 0 else f"{abs(mean):.3f} [{-high:.3f}, {-low:.3f}]"
    if low > 0:
        return f"{name} is {ci} worse"
    if high < 0:
        return f"{name} is {ci} better"
    if np.isfinite(low):
        return f"{name} is not distinguishable from it ({mean:+.3f} [{low:.3f}, {high:.3f}])"
    return f"{name} differs by {mean:+.3f} (no interval below {MIN_SEEDS} seeds)"


def _line(rep: Estimates) -> str:
    """The least-squares line on the same seeds: the correct model where the truth is a line, a rival elsewhere."""
    ln = rep.line
    if ln is None or ln.empty:
        return ""
    f = rep.cells.loc[rep.focus]
    row = ln
    for a in rep.axes:
        row = row[row[a] == f[a]]
    if not len(row):
        return ""
    r = row.iloc[0]
    o = rep.outcome.label
    plain, drop = ([r[f"{arm}_minus_line{s}"] for s in ("", "_low", "_high")] for arm in ("plain", "dropout"))
    nets = (f"on the same {r['n']} seeds {_diff('the plain net', *plain)}, {_diff('dropout', *drop)} (paired "
            "differences, 95% t-intervals; per cell: tables/versus_line.csv)")
    score = f"{R.ci(r['line_mean'], r['line_low'], r['line_high'])} {o}"
    if r["correct_line"]:
        return (f"Reference: on {r['task']} the truth is a line, so the least-squares line is the correctly "
                f"specified model; at {short_label(f, rep.axes)} it scores {score}; {nets}.")
    return (f"Beside a least-squares linear fit (misspecified on {r['task']}: its truth is not a line): at "
            f"{short_label(f, rep.axes)} it scores {score}; {nets}.")


def _seeds(rep: Estimates) -> str:
    p = rep.plan
    if p is None:
        return ""
    few = ("; so here 'not detected' does not mean 'no effect'" if p.seeds < p.detect_typical else "")
    return (f"Seeds: to detect a true change of {p.margin:.4g} in {rep.outcome.label} (the smallest effect of interest, "
            f"{rep.smallest_effect}) with 80% power under Holm over {p.family} cells, a cell needs about "
            f"{R.count(p.detect_typical)} seeds at the typical SD of Δ ({p.sd_typical:.3g}) and "
            f"{R.count(p.detect_largest)} at the largest ({p.sd_largest:.3g}); showing 'no effect' (|Δ| < "
            f"{p.margin:.4g}) takes about {R.count(p.equivalence_typical)}. This sweep has {p.seeds}{few}.")


def findings(rep: Estimates, *, method: str) -> list[str]:
    """The details under the summary: what finished, the focus cell in full, the known-answer check."""
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
    out.append(_focus(rep, method))
    if len(rep.known):
        out.append(_known(rep))
    if len(rep.variance):
        out.append(_variance(rep))
    if rep.noise_free_ratio is not None:
        out.append(f"Noise-free outcome: against the known truth (excess risk) the per-seed Δ's SD, and so its "
                   f"interval's width, is {rep.noise_free_ratio:.2f}x that of test MSE (median over cells): the test "
                   f"noise accounts for {_pct(1 - rep.noise_free_ratio)} of the width. A sweep that wants it declares "
                   f"it in its spec before the run ([report] outcome = \"excess_risk\"); chosen after seeing the "
                   f"results, it makes the report exploratory (this report: {rep.outcome.label}).")
    return out


def _focus(rep: Estimates, method: str) -> str:
    f = rep.cells.loc[rep.focus]
    label = cell_label(f, rep.axes)
    n = int(f["delta_n"])
    k = int(round(f["delta_p_improve"] * n))
    if n < MIN_SEEDS:
        return (f"At {label} (the cell nearest the seed experiment), {n} finished seed{'s' if n != 1 else ''}: "
                f"mean paired delta {f['delta_mean']:.4f}, no interval below {MIN_SEEDS} seeds, no verdict.")
    said = {"helps": f"dropout lowers {rep.outcome.label} by {f['delta_mean']:.4f}",
            "hurts": f"dropout raises {rep.outcome.label} by {-f['delta_mean']:.4f}",
            "no effect": f"dropout has no effect larger than ±{f['margin']:.4g}",
            "withheld": "no direction is claimed (withheld)",
            "not detected": "no effect of dropout is detected"}.get(
        f["verdict"], f"the verdict is '{f['verdict']}'")
    if bool(f.get("below_margin", False)):
        said += f", {SMALL} (±{f['margin']:.4g})"
    interval = "t-interval" if method == "t" else f"{method} bootstrap interval"
    return (f"At {label} (the cell nearest the seed experiment), {said} ({f['reason']}): mean paired delta "
            f"{R.ci(f['delta_mean'], f['delta_ci_low'], f['delta_ci_high'], 4)} (95% {interval} over {n} seeds), "
            f"Hodges-Lehmann {R.num(f['delta_hl'], 4)}; it helped on {k} of {n} seeds (P(delta > 0) = "
            f"{R.ci(f['delta_p_improve'], f['delta_p_improve_low'], f['delta_p_improve_high'], 2)}), "
            f"d_z = {R.num(f['delta_dz'], 2)}, p = {R.pvalue(f['delta_p'])} (Holm {R.pvalue(f['p_holm'])}).")


def _variance(rep: Estimates) -> str:
    """Which source of randomness moves the delta most, at the focus cell (or the first split cell)."""
    v = rep.variance[rep.variance["quantity"] == "delta"]
    f = rep.cells.loc[rep.focus]
    here = v
    for a in rep.axes:
        here = here[here[a] == f[a]]
    here = here if len(here) else v.head(len(v["component"].unique()))
    parts = ", ".join(f"{r['component']} {_pct(r['share'])}" for _, r in here.iterrows())
    return f"Where the variance of delta comes from (crossed seeds, {cell_label(f, rep.axes)}): {parts}."


def _known(rep: Estimates) -> str:
    f = rep.cells.loc[rep.focus]
    kn = rep.known[(rep.known["n_train"] == f["n_train"]) & (rep.known["noise_std"] == f["noise_std"])]
    o, ls = (kn[kn["predictor"] == p].iloc[0] for p in ("oracle", "least_squares"))
    checks = rep.known[[f"{m}_within" for m in ("train_mse", "test_mse", "gap")]].to_numpy().ravel()
    checks = np.array([bool(x) for x in checks if not pd.isna(x)], dtype=bool)   # values with an interval
    return (f"Known answers on the same seeds (N = {int(f['n_train'])}, σ² = {f['noise_std'] ** 2:.3f}): "
            f"the oracle's test MSE is {R.ci(o['test_mse'], o['test_mse_ci_low'], o['test_mse_ci_high'])} "
            f"(textbook {o['test_mse_expected']:.3f}) and the least-squares line's "
            f"{R.ci(ls['test_mse'], ls['test_mse_ci_low'], ls['test_mse_ci_high'])} (textbook "
            f"{ls['test_mse_expected']:.3f}); " + (
                f"{int(checks.sum())} of {checks.size} known-answer values with an interval lie inside it."
                if checks.size else f"no known-answer value has an interval yet ({MIN_SEEDS} seeds needed)."))
