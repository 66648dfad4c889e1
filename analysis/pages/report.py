"""The statistical report of a sweep: findings, design, tables and figures, in one page.

``build_report`` assembles the numbers (``analysis.numbers.estimates``), the sentences
(``analysis.pages.prose``) and the figures (``analysis.pages.report_figures``; pure, apart from
rerunning one trial for its picture); ``write_report`` writes ``report.html``
(self-contained), ``report.md``, ``figures/*.png`` and ``tables/*.csv``. Both take the
records and manifest as plain data (``sweeps.records`` reads them from a sweep's folder).
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pandas as pd

from bench.arms import label, methods

from ..inference.decisions import RULE, verdict_words
from ..numbers.cells import cell_label
from ..numbers.estimates import Estimates, StatsOptions, estimate
from . import _render as R
from .design import design
from .files import atomic_write
from .first_screen import first_screen
from .prose import findings, formula, summary, term


@dataclass
class Report(Estimates):
    """Everything the report says: the estimates, and the words and figures made of them."""
    lead: list[str] = field(default_factory=list)      # the first screen: where, how much, at what cost
    summary: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    design: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, str, Any]] = field(default_factory=list)   # (name, caption, figure)


def build_report(records: Sequence[Mapping[str, Any]], manifest: Optional[Mapping[str, Any]] = None, *,
                 options: StatsOptions = StatsOptions(), focus: Optional[Mapping[str, Any]] = None,
                 seed_picture: bool = True, figures: bool = True) -> Report:
    """Statistics, known answers and (unless ``figures=False``) figures of a set of records.

    ``options``: how the numbers are computed and judged (``analysis.numbers.estimates.StatsOptions``);
    ``focus`` picks the cell the findings lead with (default: nearest the seed experiment).
    """
    manifest = dict(manifest or {})
    clock = _Clock()
    est = estimate(records, manifest, options=options, focus=focus, lap=clock.lap)
    rep = Report(**{f.name: getattr(est, f.name) for f in fields(Estimates)})
    rep.seconds = clock.seconds
    rep.lead = first_screen(rep)
    rep.summary = summary(rep)
    rep.findings = findings(rep, method=options.method)
    rep.design = design(rep, manifest, records, seed=options.seed, n_resamples=options.n_resamples,
                        method=options.method)
    if figures and (rep.trials["status"] == "ok").any():
        from .report_figures import make_figures  # seaborn: only when figures are drawn

        rep.figures = make_figures(rep, records, seed_picture=seed_picture, seed=options.seed)
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


# ---- the page's tables: each number beside its interval ---------------------------------
def _axis_values(r: pd.Series, axes: list[str]) -> dict[str, Any]:
    return {a: R.num(r[a], 3).rstrip("0").rstrip(".") if isinstance(r[a], float) else r[a] for a in axes}


def decisions_display(rep: Estimates) -> pd.DataFrame:
    """The table under the summary: each cell's verdict beside the numbers it follows."""
    rows = []
    for _, r in rep.cells.iterrows():
        d = _axis_values(r, rep.axes)
        against = int(r.get("diverged_plain", 0)) + int(r.get("diverged_dropout", 0))
        d["seeds"] = f"{int(r['n_ok'])}/{int(r['n_expected'])}" + (
            f" ({int(r.get('diverged_plain', 0))} plain, {int(r.get('diverged_dropout', 0))} dropout diverged: "
            "counted against them" + (f"; {int(r['n_failed'])} failed" if r["n_failed"] else "") + ")"
            if against else f" ({int(r['n_diverged'])} div, {int(r['n_failed'])} fail)"
            if r["n_diverged"] or r["n_failed"] else "")
        o = rep.outcome
        d[f"{o.label} plain"] = R.num(r[f"{o.name}_plain_mean"])
        d[f"{o.label} dropout"] = R.num(r[f"{o.name}_dropout_mean"])
        d["mean Δ [95% CI]"] = R.ci(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], 4)
        if "delta_bonf_low" in r:   # simultaneous over the cells; the verdict follows the Holm test († where they differ)
            d["simultaneous CI"] = f"[{R.num(r['delta_bonf_low'], 4)}, {R.num(r['delta_bonf_high'], 4)}]"
        d["change"] = R.percent(-r["delta_mean"] / r[f"{o.name}_plain_mean"]) if r["delta_n"] else "-"
        d["p Holm"] = R.pvalue(r["p_holm"]) + ("*" if r["sig_holm"] else "")
        d["p BH"] = R.pvalue(r["p_bh"]) + ("*" if r["sig_bh"] else "")
        d["p equiv."] = R.pvalue(r["p_tost_holm"])
        d["verdict"] = verdict_words(r["verdict"], bool(r.get("below_margin", False))) + (
            " †" if r.get("interval_differs", False) else "")
        rows.append(d)
    return pd.DataFrame(rows)


def comparisons_display(rep: Estimates) -> pd.DataFrame:
    """Dropout against each comparator arm, per cell: each arm's mean, the paired delta, the verdict."""
    from ..numbers.comparisons import VERDICT_WORDS

    rows, o = [], rep.outcome
    for arm, c in rep.comparisons.items():
        for _, r in c.iterrows():
            axes = c.attrs.get("axes", rep.axes)   # the settings dropout and this arm read (analysis.records.pairs)
            d = {"against": label(arm), **{a: f"{r[a]:g}" if isinstance(r[a], float) else r[a] for a in axes},
                 "seeds": int(r["delta_n"])}
            d[f"{o.label} alternative"] = R.num(r[f"{o.name}_{arm}_mean"])
            d[f"{o.label} dropout"] = R.num(r[f"{o.name}_dropout_mean"])
            d[f"{o.label} plain"] = R.num(r[f"{o.name}_plain_mean"])
            d["mean delta [95% CI]"] = R.ci(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], 4)
            d["p Holm"] = R.pvalue(r["p_holm"]) + ("*" if r["sig_holm"] else "")
            d["verdict"] = VERDICT_WORDS[r["verdict"]]
            rows.append(d)
    return pd.DataFrame(rows)


def cells_display(rep: Estimates) -> pd.DataFrame:
    """More of each cell's paired statistics: medians, effect sizes, unadjusted tests."""
    rows = []
    for _, r in rep.cells.iterrows():
        d = _axis_values(r, rep.axes)
        d["seeds"] = int(r["delta_n"])
        d["median delta [95% CI]"] = R.ci(r["delta_median"], r["delta_median_ci_low"], r["delta_median_ci_high"], 4)
        d["Hodges-Lehmann"] = R.num(r["delta_hl"], 4)
        d["sd delta"] = R.num(r["delta_sd"], 4)
        d["d_z"] = R.num(r["delta_dz"], 2)
        d["skewness"] = R.num(r["delta_skew"], 2) + (" (skewed)" if r.get("skewed", False) else "")
        d["P(delta>0) [95% CI]"] = R.ci(r["delta_p_improve"], r["delta_p_improve_low"], r["delta_p_improve_high"], 2)
        d["p Wilcoxon"] = R.pvalue(r["delta_p_wilcoxon"])
        d["p TOST"] = R.pvalue(r["delta_p_tost"])
        d["reason"] = r["reason"]
        rows.append(d)
    return pd.DataFrame(rows)


def trend_display(rep: Estimates) -> pd.DataFrame:
    """The trend model's coefficients, then its best rate per setting, each with its interval."""
    tr = rep.trend
    rows = [{"term": term(r["term"]), "estimate [95% CI]": R.ci(r["estimate"], r["ci_low"], r["ci_high"], 4),
             "p": R.pvalue(r["p"])} for _, r in tr.coefficients.iterrows()]
    for _, r in tr.best_rate.iterrows():
        at = ", ".join(f"{a}={r[a]:g}" for a in ("n_train", "width") if a in r)
        rows.append({"term": f"best rate p̂* ({at or 'overall'})",
                     "estimate [95% CI]": R.ci(r["p_star"], r["ci_low"], r["ci_high"], 3), "p": r["note"]})
    return pd.DataFrame(rows)


def variance_display(rep: Estimates) -> pd.DataFrame:
    """Per cell and quantity: each source's variance with its interval, and its share."""
    rows = []
    for _, r in rep.variance.iterrows():
        d = {a: r[a] for a in rep.axes}
        d.update({"quantity": r["quantity"], "source": r["component"],
                  "variance [95% CI]": R.ci(r["variance"], r["var_low"], r["var_high"], 6),
                  "share": R.percent(r["share"]).lstrip("+")})
        rows.append(d)
    return pd.DataFrame(rows)


def arms_display(rep: Estimates) -> pd.DataFrame:
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


def known_display(rep: Estimates) -> pd.DataFrame:
    rows = []
    for _, r in rep.known.iterrows():
        d = {"task": r["task"], "N": int(r["n_train"]), "σ": r["noise_std"]}
        for setting in ("n_features", "test_size"):   # shown only where some trial sets it
            if (rep.known[setting] != 0).any():
                d[setting] = int(r[setting])
        d.update({"predictor": r["predictor"], "seeds": int(r["n_seeds"])})
        for m in ("train_mse", "test_mse", "gap"):
            d[m] = R.ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
            within = r[f"{m}_within"]
            expected = r[f"{m}_expected"]
            d[f"{m} textbook"] = "" if pd.isna(expected) else R.num(expected) + (
                " (no interval)" if pd.isna(within) else "" if bool(within) else " (outside CI)")
        rows.append(d)
    return pd.DataFrame(rows)



def write_report(out_dir: str | Path, *, records: Sequence[Mapping[str, Any]],
                 manifest: Optional[Mapping[str, Any]] = None, options: StatsOptions = StatsOptions(),
                 seed_picture: bool = True, seconds: Optional[dict[str, float]] = None) -> Path:
    """Write report.html, report.md, figures/*.png and tables/*.csv into ``out_dir``; return the HTML path.

    ``records`` and ``manifest`` as ``sweeps.records.load_records`` / ``load_manifest`` give
    them; ``options`` as in ``build_report``. ``seconds``, if given, receives the wall time of each stage.
    """
    import matplotlib.pyplot as plt

    def put(path: Path, data: bytes) -> None:  # temp file, rename; readable by all, like any report
        atomic_write(path, lambda tmp: (Path(tmp).write_bytes(data), os.chmod(tmp, 0o644)))

    out_dir = Path(out_dir)
    rep = build_report(records, manifest, options=options, seed_picture=seed_picture)
    clock = _Clock()
    pngs: dict[str, bytes] = {}
    for name, _, fig in rep.figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)  # figures are drawn at the column's width in inches
        plt.close(fig)
        pngs[name] = buf.getvalue()
        put(out_dir / "figures" / f"{name}.png", pngs[name])
    for stale in (out_dir / "figures").glob("*.png"):  # a figure an earlier report drew and this one does not
        if stale.stem not in pngs:
            stale.unlink()
    clock.lap("png")
    tables = {"cells": rep.cells.drop(columns=["delta_values"], errors="ignore"), "known_answers": rep.known,
              "trials": rep.trials.drop(columns=["error"]), **({"versus_line": rep.line} if len(rep.line) else {}),
              **{f"versus_{arm}": c.drop(columns=["delta_values"], errors="ignore")
                 for arm, c in rep.comparisons.items()}}
    for name, table in tables.items():
        put(out_dir / "tables" / f"{name}.csv", table.to_csv(index=False).encode())
    blocks = page_blocks(rep)
    title = f"dropout-bench report: {(manifest or {}).get('name', 'trials')}"
    put(out_dir / "report.md", R.render_markdown(title, blocks).encode())
    html_path = out_dir / "report.html"
    put(html_path, R.render_html(title, blocks, pngs).encode())
    clock.lap("tables and pages")
    if seconds is not None:
        seconds.update(rep.seconds, **clock.seconds)
    return html_path


LEAD_FIGURES = ("delta_heatmap", "delta_vs_dropout", "delta_vs_n_train", "delta_vs_width", "delta")
TITLES = {"delta_heatmap": "Where dropout helps", "delta_vs_n_train": "Benefit against the number of training points",
          "delta_vs_dropout": "Benefit against the dropout rate", "delta_vs_width": "Benefit against width",
          "delta": "Benefit per seed", "arms_test_mse": "Both nets' test error per seed",
          "learning_curves": "Learning curves", "seed_picture": "One seed, as the tutorial drew it",
          "step_time": "What a step costs", "trend": "One model across the grid",
          "against": "Dropout against the alternatives, at a glance"}


def _alternatives_blocks(rep: Report, figures: dict[str, tuple[str, str]]) -> list[R.Block]:
    """Dropout against the other regularisers: the best of each family, then every setting per cell."""
    from ..records.divergence import RULE as DIVERGED

    blocks: list[R.Block] = []
    if len(rep.families):
        from ..numbers.families import RULE as FAMILIES, families_display
        blocks.append(("Best of each family", FAMILIES + DIVERGED, families_display(rep.families, rep.outcome.label)))
    if any(len(c) for c in rep.comparisons.values()):
        o = rep.outcome.label
        blocks.append(("Dropout against the alternatives", f"delta = {o}(alternative) - {o}(dropout) on the same "
                       f"seed: same data, same initial weights (> 0: dropout did better). A comparison's cells come "
                       f"from the settings dropout and that arm read, each seed's pair once. Holm across the cells "
                       f"of each comparison; verdicts by the same rule. {DIVERGED} {methods()}", comparisons_display(rep)))
        if "against" in figures:
            blocks.append((TITLES["against"], "", ("figure", *figures["against"])))
    return blocks


def page_blocks(rep: Report) -> list[R.Block]:
    """The page in reading order: the answer in three lines and the figure that carries it (the first
    screen), the summary, the verdicts, then the details."""
    figures = {name: (name, caption) for name, caption, _ in rep.figures}
    lead = next((n for n in LEAD_FIGURES if n in figures), None)
    blocks: list[R.Block] = [("", "", ("lead", rep.lead, *(figures[lead] if lead else (None, ""))))]
    blocks.append(("Summary", "", ("list", rep.summary)))
    if len(rep.cells):
        o = rep.outcome.label
        blocks.append(("Decision per cell", f"Δ = {o}(plain) − {o}(dropout) on the same seed (> 0: "
                       f"dropout helped); simultaneous CI: the mean's 95% t-interval over all the cells at once "
                       f"(Bonferroni, as drawn in the heatmap), beside the verdict's Holm-adjusted test; change = "
                       f"dropout's {o} against plain's; * adjusted p < 0.05; "
                       f"p equiv. = TOST within ±the smallest effect, Holm-adjusted; † the simultaneous interval and the "
                       f"Holm test disagree here (Holm steps down to looser levels than Bonferroni's after the "
                       f"strongest cells; the skewness guard can make the test stricter than the interval): the "
                       f"verdict follows the test. Rule: {RULE}",
                       decisions_display(rep)))
    blocks += _alternatives_blocks(rep, figures)
    blocks += [("Details", "", ("list", rep.findings)), ("Design", "", ("defs", rep.design))]
    if len(rep.cells):
        blocks.append(("More statistics per cell", "Unadjusted; median interval: order statistics, from 6 seeds; "
                       "skewness: the deltas' G1, '(skewed)' beyond 1.96 of its standard error under normality "
                       "(how the verdict allows for skew: the Statistics line of the design). "
                       "Full numbers: tables/cells.csv.", cells_display(rep)))
    if rep.trend is not None:
        blocks.append(("Trend model: coefficients", f"{rep.trend.method}, {rep.trend.n} seeds x cells: "
                       f"{formula(rep.trend.formula)} (p = dropout rate, N = n_train, w = width); 95% "
                       "intervals. " + " ".join(rep.trend.notes), trend_display(rep)))
    if len(rep.variance):
        blocks.append(("Where the variance comes from", "A crossed design: every combination of data, init and "
                       "mask seeds in each cell. Random-effects ANOVA of the balanced design (method of "
                       "moments); 95% Satterthwaite intervals, none for a source with fewer than 4 seeds "
                       "(docs/statistics.md). The plain arm has no masks: its masks share is 0 by design.",
                       variance_display(rep)))
    if len(rep.beside):
        blocks.append(("Nets beside the known answers", "The focus cell "
                       f"({cell_label(rep.cells.loc[rep.focus], rep.axes)}) on its own seeds: mean [95% CI].",
                       rep.beside))
    blocks.append(("Both arms per cell", "Mean [95% CI] and median of each arm's metrics; eff. df = N gap / "
                   "(2σ²).", arms_display(rep)))
    if len(rep.known):
        blocks.append(("Known answers on all seeds", "The oracle f (where the task has a known truth), the "
                       "least-squares linear fit and, on diabetes, ridge, on the data of every finished trial, "
                       "against ESL 7.4's in-sample table where it applies (toy1d; the oracle on every synthetic "
                       "task; σ is unused on diabetes).", known_display(rep)))
    blocks += [(TITLES.get(name, name.replace("_", " ").capitalize()), "", ("figure", name, caption))
               for name, caption, _ in rep.figures if name not in (lead, "against")]
    return blocks
