"""Best of each family against best of each family: a fair fight between dropout and its rivals.

A family is an arm with its settings (``families()``): dropout over its rates, weight decay over
its lambdas, early stopping over its patience (and validation share); the plain net is a
family of one. Comparing dropout's best rate, read off afterwards, with one untuned lambda
flatters dropout. Here, per group (the cell axes no family reads: task, N, ...), every family
chooses its best setting on the same half of the seeds (``SELECT``: the even seeds), and the
chosen settings are compared on the other half (the odd seeds), which played no part in the
choice: paired delta = outcome(rival's best) - outcome(dropout's best) on the same seed (> 0:
dropout better), its mean with a 95% t-interval and the verdicts' test of the mean
(``analysis.inference.mean_test``), Holm-adjusted across the groups of one question (dropout against one rival family): one multiplicity family per
question. A seed on which an arm diverged counts against it (``analysis.records.divergence``; the
cell of that rule is the arm setting's seeds of the same group and half).

Input is the trials frame of ``analysis.records.frame.records_frame``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from bench.arms import PAIR, comparators
from bench.arms import label as arm_label

from ..inference import stats
from ..inference.mean_test import mean_test
from ..records.divergence import count_against, diverged
from ..records.pairs import DuplicateMismatch, arm_keys, reads
from . import formatting as fmt
from .comparisons import trained



def families() -> tuple[str, ...]:
    """Every family: dropout first (every question starts there), the plain net, the comparators."""
    return ("dropout", "plain", *comparators())


def questions() -> tuple[str, ...]:
    """The rival families dropout's best meets: each comparator, then the plain net."""
    return (*comparators(), "plain")

SELECT = ("The selection half is the even seeds (seed % 2 == 0): each family's best setting is the one with "
          "the lowest mean outcome there; the odd seeds confirm.")
ALPHA = 0.05


def family_settings(frame: pd.DataFrame, axes: Sequence[str]) -> dict[str, list[str]]:
    """Per family, the axes its arm reads and the plain arm does not: the settings it chooses among."""
    base = [a for a in axes if reads(frame, a, ("plain",))]
    return {k: ([] if k == "plain" else [a for a in axes if a not in base and reads(frame, a, (k,))])
            for k in families()}


def _long(frame: pd.DataFrame, kind: str, group_axes: list[str], settings: list[str], outcome: str) -> pd.DataFrame:
    """One row per (group, setting of ``kind``, seed): value, diverged, setting label. Copies of one arm
    on one seed (trials that differ in other arms' settings) are kept once, after checking they agree."""
    sub = frame[trained(frame, kind)] if kind not in PAIR else frame
    sub = sub[sub["status"].isin(["ok", "diverged"])]
    if not len(sub):
        return pd.DataFrame()
    label = sub[settings].apply(lambda r: ", ".join(f"{a}={_v(r[a])}" for a in settings), axis=1) if settings \
        else pd.Series("", index=sub.index)
    long = pd.DataFrame({**{a: sub[a] for a in group_axes}, "setting": arm_keys(sub, kind), "label": label,
                         "seed": sub["seed"].astype(int), "value": sub[f"{outcome}_{kind}"].astype(float),
                         "diverged": diverged(sub, kind)}, index=sub.index)
    key = [*group_axes, "setting", "seed"]
    copies = long[long.duplicated(key, keep=False)]
    for _, g in copies.groupby(key, sort=False, dropna=False):
        v = g["value"].to_numpy()
        if not ((v == v[0]) | (np.isnan(v) & np.isnan(v[0]))).all():
            raise DuplicateMismatch(f"the {kind} arm on seed {g['seed'].iat[0]} has two {outcome} values "
                                    f"({v[0]!r}, {v[1]!r}) in trials {', '.join(frame.loc[g.index, 'trial_id'])}")
    return long.drop_duplicates(key)


def _v(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _choose(long: pd.DataFrame) -> tuple[Optional[Any], str, int, int]:
    """The setting with the lowest mean on the selection half (even seeds), after the divergence rule:
    (setting, label, selection seeds, settings compared)."""
    select = long[long["seed"] % 2 == 0]
    best, best_mean, label = None, np.inf, ""
    settings = list(dict.fromkeys(long["setting"]))
    for s in settings:
        g = select[select["setting"] == s]
        mean = float(np.mean(count_against(g["value"].to_numpy(), g["diverged"].to_numpy()))) if len(g) else np.nan
        if np.isfinite(mean) and mean < best_mean:
            best, best_mean, label = s, mean, g["label"].iat[0]
    n = int(select.loc[select["setting"] == best, "seed"].nunique()) if best is not None else 0
    return best, label, n, len(settings)


def _confirm(long: pd.DataFrame, setting: Any) -> pd.DataFrame:
    """The chosen setting on the confirmation half (odd seeds), by seed: value (rule applied), diverged."""
    g = long[(long["setting"] == setting) & (long["seed"] % 2 == 1)]
    g = g.assign(value=count_against(g["value"].to_numpy(), g["diverged"].to_numpy()))
    return g.set_index("seed")[["value", "diverged"]]


def best_of_families(trials: pd.DataFrame, axes: Sequence[str], *, outcome: str = "test_mse",
                     alpha: float = ALPHA) -> pd.DataFrame:
    """Per group and question (dropout's best against each rival family's best), on the confirmation half.

    Columns: the group axes; ``question`` (the rival family: weight_decay, early_stop, plain);
    ``dropout_choice``, ``rival_choice`` (the chosen settings, e.g. "dropout=0.5"; "" for plain);
    ``dropout_settings``, ``rival_settings`` (how many each chose among); ``n_select`` (selection
    seeds of dropout's choice); ``n`` (confirmation seeds with both arms); ``{outcome}_dropout_mean``,
    ``{outcome}_rival_mean``; ``delta_mean``, ``delta_ci_low``, ``delta_ci_high`` (95% t); ``p``
    (the verdicts' test of the mean delta, analysis.inference.mean_test); ``p_holm`` (Holm across the groups of this question);
    ``diverged_dropout``, ``diverged_rival`` (confirmation seeds counted against each arm);
    ``verdict`` ("dropout better", "dropout worse", "not detected", "too few seeds").
    ``table.attrs["group_axes"]`` names the group axes. Empty when the trials carry no comparator arm.
    """
    if not len(trials) or not any(trained(trials, c).any() for c in comparators()):
        return pd.DataFrame()   # no rival family beside the plain net: the cell table answers that one
    settings = family_settings(trials, axes)
    chosen_by = {a for s in settings.values() for a in s}
    group_axes = [a for a in axes if a not in chosen_by]
    longs = {k: _long(trials, k, group_axes, settings[k], outcome) for k in families()}
    if longs["dropout"].empty:
        return pd.DataFrame()
    rows = []
    groups = longs["dropout"].groupby(group_axes, sort=True, dropna=False) if group_axes \
        else [((), longs["dropout"])]
    for values, drop in groups:
        where = dict(zip(group_axes, values if isinstance(values, tuple) else (values,)))
        d_set, d_label, n_select, d_count = _choose(drop)
        if d_set is None:
            continue
        chosen = (_confirm(drop, d_set), d_label, d_count, n_select)
        for q in questions():
            row = _question(longs[q], where, chosen, outcome)
            if row:
                rows.append({**where, "question": q, **row})
    return _judge(pd.DataFrame(rows), group_axes, alpha)


def _question(long: pd.DataFrame, where: dict, chosen: tuple, outcome: str) -> Optional[dict]:
    """Dropout's chosen setting (``chosen``: confirmation values, label, settings, selection seeds)
    against the best of the rival family ``long`` in the group ``where``, on the confirmation half."""
    d, d_label, d_count, n_select = chosen
    mine = long
    for a, v in where.items():
        mine = mine[mine[a] == v] if len(mine) else mine
    if mine.empty:
        return None
    r_set, r_label, _, r_count = _choose(mine)
    if r_set is None:
        return None
    both = d.merge(_confirm(mine, r_set), left_index=True, right_index=True, suffixes=("_d", "_r")).sort_index()
    both = both[np.isfinite(both["value_d"]) & np.isfinite(both["value_r"])]
    delta = (both["value_r"] - both["value_d"]).to_numpy()
    low, high = stats.interval(delta, method="t")
    p = float(mean_test(delta)[0]) if len(delta) >= stats.MIN_SEEDS else np.nan   # the verdicts' test
    return {"dropout_choice": d_label, "rival_choice": r_label, "dropout_settings": d_count,
            "rival_settings": r_count, "n_select": n_select, "n": len(delta),
            f"{outcome}_dropout_mean": float(both["value_d"].mean()),
            f"{outcome}_rival_mean": float(both["value_r"].mean()),
            "delta_mean": float(delta.mean()) if len(delta) else np.nan,
            "delta_ci_low": float(low), "delta_ci_high": float(high), "p": p,
            "diverged_dropout": int(both["diverged_d"].sum()), "diverged_rival": int(both["diverged_r"].sum())}


def _judge(table: pd.DataFrame, group_axes: list[str], alpha: float) -> pd.DataFrame:
    """Holm across the groups of each question (one multiplicity family per question), then the verdicts."""
    if table.empty:
        return table
    table["p_holm"] = np.nan
    for q, idx in table.groupby("question", sort=False).groups.items():   # one family per question
        table.loc[idx, "p_holm"] = stats.adjust_pvalues(table.loc[idx, "p"].to_numpy(), method="holm")
    table["verdict"] = [_verdict(r, alpha) for _, r in table.iterrows()]
    table.attrs["group_axes"] = group_axes
    return table


def _verdict(r: pd.Series, alpha: float) -> str:
    if r["n"] < stats.MIN_SEEDS:
        return "too few seeds"
    if np.isfinite(r["p_holm"]) and r["p_holm"] < alpha:
        return "dropout better" if r["delta_mean"] > 0 else "dropout worse"
    return "not detected"


RULE = (f"Per group, each family (dropout over its rates, weight decay over its lambdas, early stopping over "
        f"its patience; the plain net a family of one) chooses its best setting on one half of the seeds. "
        f"{SELECT} delta = outcome(rival's choice) - outcome(dropout's choice) on the same odd seed (> 0: "
        f"dropout better); mean with a 95% t-interval, the verdicts' test of the mean (t and Hall's skewness-corrected t, the larger p), Holm across the groups of each "
        f"question (one multiplicity family per rival). ")


def families_display(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """The best-of-family table for the report: one row per (group, rival), ``label`` naming the outcome."""
    rows = []
    for _, r in table.iterrows():
        d = {a: f"{r[a]:g}" if isinstance(r[a], float) else r[a] for a in table.attrs.get("group_axes", [])}
        d.update({"against": arm_label(r["question"]), "dropout's choice": r["dropout_choice"],
                  "rival's choice": r["rival_choice"] or "-", "seeds (select / judge)": f"{r['n_select']} / {r['n']}",
                  f"{label} rival": fmt.num(r[[c for c in table.columns if c.endswith("_rival_mean")][0]]),
                  f"{label} dropout": fmt.num(r[[c for c in table.columns if c.endswith("_dropout_mean")][0]]),
                  "mean delta [95% CI]": fmt.ci(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], 4),
                  "p Holm": fmt.pvalue(r["p_holm"]) + ("*" if r["p_holm"] < ALPHA else ""),
                  "diverged (dropout / rival)": f"{r['diverged_dropout']} / {r['diverged_rival']}",
                  "verdict": r["verdict"]})
        rows.append(d)
    return pd.DataFrame(rows)
