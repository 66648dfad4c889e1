"""Is the engine the tutorial's experiment? Equivalence tests over the rows of
``bench.validate.validation_rows`` (one row of final metrics per seed and source).

Three comparisons, each metric on its own row:

- **engine vs reference loop, same masks** (source ``masked``), paired by seed: same data,
  initial weights and dropout masks, so both arms differ only by float rounding; margin a
  share of the reference's mean (``rel_margin``, default 2%).
- **engine vs reference loop, nn.Dropout masks** (source ``reference``), paired by seed (same
  data and initial weights). The plain arms are as above (they have no masks); the dropout
  arms draw different masks, so their margin is a share of the per-seed SD (``sd_margin``,
  default 0.2 SD: a small effect in Cohen's terms).
- **engine vs tutorial loop**, unpaired (the tutorial draws its own data and weights from the
  global RNG): Welch's t, margin ``sd_margin`` per-seed SDs.

A verdict is ``equivalent`` when the two one-sided tests (TOST) reject both ends of
+-margin at alpha, ``differs`` when the 95% interval of the difference excludes 0 and
equivalence is not shown, ``inconclusive`` otherwise. A small difference can be both
detected and equivalent; the table shows the interval beside the verdict.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..inference import stats

METRICS = ("plain_train_mse", "plain_test_mse", "dropout_train_mse", "dropout_test_mse")
REL_MARGIN = 0.02
SD_MARGIN = 0.2
ALPHA = 0.05


def _column(rows: Sequence[Mapping[str, Any]], source: str, metric: str) -> np.ndarray:
    return np.array([r[source][metric] for r in rows if source in r], dtype=float)


COMPARISONS = {"masked": "engine vs reference loop, same masks",
               "reference": "engine vs reference loop, nn.Dropout masks"}


def _paired(rows: Sequence[Mapping[str, Any]], source: str, metric: str, rel_margin: float,
            sd_margin: float) -> dict[str, Any]:
    both = [r for r in rows if "engine" in r and source in r]
    a, b = _column(both, "engine", metric), _column(both, source, metric)
    d = a - b
    if metric.startswith("plain") or source == "masked":
        margin, rule = rel_margin * b.mean(), f"{100 * rel_margin:g}% of the reference mean"
    else:
        margin, rule = sd_margin * b.std(ddof=1), f"{sd_margin:g} SD of the reference (masks differ)"
    low, high = stats.t_interval(d)
    return {"comparison": COMPARISONS[source], "design": "paired by seed", "metric": metric, "n": len(d),
            "mean_engine": a.mean(), "mean_other": b.mean(), "diff": d.mean(), "ci_low": low, "ci_high": high,
            "sd_diff": d.std(ddof=1), "p_diff": float(sps.ttest_1samp(d, 0.0).pvalue),
            "margin": margin, "margin_rule": rule, "p_tost": float(stats.tost_p(d, margin))}


def _unpaired(rows: Sequence[Mapping[str, Any]], metric: str, sd_margin: float) -> dict[str, Any]:
    from statsmodels.stats.weightstats import ttost_ind

    a, b = _column(rows, "engine", metric), _column(rows, "tutorial", metric)
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    margin = sd_margin * sd
    test = sps.ttest_ind(a, b, equal_var=False)
    ci = test.confidence_interval()
    p_tost = float(ttost_ind(a, b, -margin, margin, usevar="unequal")[0])
    return {"comparison": "engine vs tutorial loop", "design": "unpaired (Welch)", "metric": metric, "n": min(len(a), len(b)),
            "mean_engine": a.mean(), "mean_other": b.mean(), "diff": a.mean() - b.mean(), "ci_low": ci.low,
            "ci_high": ci.high, "sd_diff": np.nan, "p_diff": float(test.pvalue), "margin": margin,
            "margin_rule": f"{sd_margin:g} pooled per-seed SD", "p_tost": p_tost}


def equivalence_table(rows: Sequence[Mapping[str, Any]], *, rel_margin: float = REL_MARGIN,
                      sd_margin: float = SD_MARGIN, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (comparison, metric): means, the difference with its 95% interval, the
    margin, the TOST p-value and the verdict. Comparisons without at least 3 seeds are left out."""
    out = []
    have = {src: sum(1 for r in rows if "engine" in r and src in r) >= stats.MIN_SEEDS
            for src in ("masked", "reference", "tutorial")}
    for metric in METRICS:
        if have["masked"]:
            out.append(_paired(rows, "masked", metric, rel_margin, sd_margin))
        if have["reference"] and not (have["masked"] and metric.startswith("plain")):  # plain: no masks
            out.append(_paired(rows, "reference", metric, rel_margin, sd_margin))
        if have["tutorial"]:
            out.append(_unpaired(rows, metric, sd_margin))
    table = pd.DataFrame(out)
    if len(table):
        table["rel_diff"] = table["diff"] / table["mean_other"]
        table["verdict"] = np.where(table["p_tost"] < alpha, "equivalent",
                                    np.where((table["ci_low"] > 0) | (table["ci_high"] < 0), "differs",
                                             "inconclusive"))
        table = table.sort_values(["comparison", "metric"], kind="stable").reset_index(drop=True)
    return table


def markdown(table: pd.DataFrame) -> str:
    """The table for a person: one line per comparison and metric."""
    head = ("| comparison | metric | n | engine | other | difference [95% CI] | relative | margin | p TOST | verdict |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['comparison']} ({r['design']}) | {r['metric']} | {r['n']} | {r['mean_engine']:.5f} | "
            f"{r['mean_other']:.5f} | {r['diff']:+.5f} [{r['ci_low']:+.5f}, {r['ci_high']:+.5f}] | "
            f"{100 * r['rel_diff']:+.1f}% | +-{r['margin']:.5f} ({r['margin_rule']}) | {r['p_tost']:.2g} | "
            f"{r['verdict']} |")
    return "\n".join(lines) + "\n"
