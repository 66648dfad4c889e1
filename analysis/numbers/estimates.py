"""The numbers of a sweep's report: per-cell paired statistics, known answers on the same
seeds, and the focus cell's nets beside them.

``estimate(records, manifest)`` returns an ``Estimates``; the prose (``analysis.pages.prose``),
the figures (``analysis.pages.report_figures``) and the page (``analysis.pages.report``) read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from bench import TASKS

from ..inference.decisions import Best, best_cell
from ..inference.stats import DEFAULT_METHOD, DEFAULT_RESAMPLES, effective_df, interval
from ..inference.trend import Trend, fit_trend
from ..inference.variance import variance_table
from ..records.divergence import pair_under_rule
from ..records.frame import records_frame
from ..records.outcomes import DEFAULT, OUTCOMES, Outcome, outcome as find_outcome
from ..records.pairs import pair_trials
from . import formatting as fmt
from .answers import Cost, Plan, cost, noise_free_ratio, plan, versus_line
from .cells import cell_axes, cell_table, focus_cell
from .comparisons import comparison_tables, counts_per_cell
from .families import best_of_families
from .known_answers import known_answer_table, known_answer_trials, textbook

METRICS = ("train_mse", "test_mse", "gap")


@dataclass(frozen=True)
class StatsOptions:
    """How a report computes and judges its numbers.

    method: the interval of means ("t", Student's, the default; or a bootstrap: "BCa",
    "percentile", "basic", which under-cover at small seed counts); seed and n_resamples: the
    bootstrap's, when one is used; smallest_effect: the smallest change in test MSE worth
    finding (None: the spec's ``[report] smallest_effect`` from the manifest, else 10% of sigma^2);
    outcome: what the arms are compared on (``analysis.records.outcomes``).
    """
    method: str = DEFAULT_METHOD
    seed: int = 0
    n_resamples: int = DEFAULT_RESAMPLES
    smallest_effect: Optional[float] = None
    outcome: Optional[str] = None    # analysis.records.outcomes; None: the spec's [report] outcome, else test_mse


@dataclass
class Estimates:
    """A sweep's numbers: ``trials`` (analysis.records.frame.records_frame), ``cells``
    (analysis.numbers.cells.cell_table)."""
    trials: pd.DataFrame             # one row per trial
    cells: pd.DataFrame              # one row per cell of ``axes``
    axes: list[str]                  # the swept fields plain or dropout reads: they define a cell (records.pairs)
    focus: Optional[int]             # index in ``cells`` of the cell the findings lead with
    known: pd.DataFrame              # numbers.known_answers.known_answer_table over every finished trial
    beside: pd.DataFrame             # the focus cell's nets beside the known answers, formatted
    best: Optional[Best] = None      # inference.decisions.best_cell
    line: pd.DataFrame = field(default_factory=pd.DataFrame)  # numbers.answers.versus_line
    cost: Optional[Cost] = None      # numbers.answers.cost
    plan: Optional[Plan] = None      # numbers.answers.plan
    smallest_effect: str = ""        # where the margin came from, in words
    outcome: Outcome = OUTCOMES[DEFAULT]   # what the arms are compared on
    noise_free_ratio: Optional[float] = None  # median over cells: SD of delta, excess risk / test MSE
    trend: Optional[Trend] = None    # inference.trend.fit_trend over the grid
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)  # inference.variance.variance_table (crossed designs)
    comparisons: dict[str, pd.DataFrame] = field(default_factory=dict)  # numbers.comparisons, per comparator arm
    families: pd.DataFrame = field(default_factory=pd.DataFrame)  # numbers.families: best of each family, per group
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``trials`` with each (seed, plain-dropout pair) once
    declared_outcome: str = DEFAULT  # the spec's [report] outcome (declared before the run), else the default
    exploratory: list[str] = field(default_factory=list)  # why this report is not the declared analysis
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage


def estimate(records: Sequence[Mapping[str, Any]], manifest: Optional[Mapping[str, Any]] = None, *,
             options: StatsOptions = StatsOptions(), focus: Optional[Mapping[str, Any]] = None,
             lap: Callable[[str], None] = lambda stage: None) -> Estimates:
    """Cell statistics and known answers of a set of records; ``lap(stage)`` is called after each stage.

    ``focus`` picks the cell the findings lead with (default: nearest the seed experiment).
    """
    manifest = dict(manifest or {})
    asked = (manifest.get("spec") or {}).get("report") or {}
    smallest_effect = options.smallest_effect if options.smallest_effect is not None else asked.get("smallest_effect")
    out = find_outcome(options.outcome or asked.get("outcome") or DEFAULT)
    seed, n_resamples, method = options.seed, options.n_resamples, options.method
    trials = records_frame(records)
    swept = cell_axes(trials, manifest)
    # plain against dropout: cells from the settings those two arms read, each (seed, pair) once
    pairs = pair_trials(trials, swept, "plain", "dropout")
    axes = pairs.axes
    finished = pairs.frame[pairs.frame["status"] == "ok"]
    if len(finished) and finished[f"delta_{out.name}"].isna().all():
        raise ValueError(f"outcome {out.name!r}: these records do not hold it (results of schema 1 "
                         "measured test_mse only); rerun the trials or report test_mse")
    # a seed on which plain or dropout diverged counts against that arm (analysis.records.divergence)
    kept = pair_under_rule(pairs.frame, axes, "plain", "dropout",
                           list(dict.fromkeys([out.name, "test_mse", "train_mse", "gap"])), f"delta_{out.name}")
    ok = kept[kept["status"] == "ok"]
    expected = len(manifest.get("seeds") or []) or None
    cells = cell_table(kept, axes, expected_seeds=expected, seed=seed, n_resamples=n_resamples,
                       method=method, smallest_effect=smallest_effect, outcome=out.name)
    if len(cells):
        counted = counts_per_cell(kept, axes, ["div_plain", "div_dropout"])
        cells["diverged_plain"], cells["diverged_dropout"] = (counted[c].to_numpy() for c in ("div_plain", "div_dropout"))
    comparisons = comparison_tables(trials, swept, outcome=out.name, expected_seeds=expected,
                                    smallest_effect=smallest_effect, seed=seed, n_resamples=n_resamples, method=method)
    families = best_of_families(trials, swept, outcome=out.name)
    lap("cells")
    fidx = focus_cell(cells, axes, focus) if len(cells) else None
    ka = known_answer_trials(_data_keys(ok)) if len(ok) else pd.DataFrame()
    known = known_answer_table(ka, seed=seed, n_resamples=n_resamples, method=method) if len(ok) else pd.DataFrame()
    beside = _beside(ok, ka, cells, axes, fidx, seed=seed, n_resamples=n_resamples, method=method)
    lap("known answers")
    trend, variance = _trend(ok, cells, axes, fidx, f"delta_{out.name}"), variance_table(ok, axes, out.name)
    lap("trend and variance")   # its own stage: the clustered fit is what a loaded machine slows most
    return Estimates(trials=trials, cells=cells, axes=axes, focus=fidx, known=known, beside=beside,
                     best=best_cell(cells) if len(cells) else None,
                     line=versus_line(ok, ka, cells, axes, out.name) if len(ok) else pd.DataFrame(),
                     cost=cost(ok), plan=plan(cells) if len(cells) else None,
                     smallest_effect=(f"{float(smallest_effect):g}, as set for this report"
                                      if smallest_effect is not None else "by default 10% of σ²"),
                     outcome=out, noise_free_ratio=noise_free_ratio(ok, axes),
                     trend=trend, variance=variance, comparisons=comparisons,
                     families=families, pairs=kept,
                     declared_outcome=asked.get("outcome") or DEFAULT, exploratory=exploratory(asked, options))


def exploratory(declared: Mapping[str, Any], options: StatsOptions) -> list[str]:
    """Why a report departs from the analysis its spec declared before the run ([report]); [] if it does not.

    An outcome or smallest effect chosen after the results were seen turns the verdicts into
    exploratory ones: the choice could have followed the numbers.
    """
    why = []
    outcome = declared.get("outcome") or DEFAULT
    if options.outcome is not None and options.outcome != outcome:
        why.append(f"the outcome was changed after the run (declared: {OUTCOMES[outcome].label}; shown: "
                   f"{find_outcome(options.outcome).label})")
    effect = declared.get("smallest_effect")
    if options.smallest_effect is not None and (effect is None or float(effect) != float(options.smallest_effect)):
        was = f"{float(effect):g}" if effect is not None else "none, so 10% of σ²"
        why.append(f"the smallest effect of interest was changed after the run (declared: {was}; shown: "
                   f"{float(options.smallest_effect):g})")
    return why


def _trend(ok: pd.DataFrame, cells: pd.DataFrame, axes: list[str], fidx: Optional[int], column: str) -> Optional[Trend]:
    """The trend model over rate, N and width, at the focus cell's value of every other swept axis.

    The model has no term for the other axes (a task, a noise level, a depth...), and one curve
    through their values would describe none of them; so it is fitted where the focus cell is,
    and says so. Tasks in particular differ in kind (a line, a sine, ten inputs, real data).
    """
    if not len(ok):
        return None
    held = [a for a in axes if a not in TREND_TERMS and ok[a].nunique() > 1]
    if not held or fidx is None:
        return fit_trend(ok, axes, column)
    at = {a: cells.loc[fidx, a] for a in held}
    sel = ok
    for a, v in at.items():
        sel = sel[sel[a] == v]
    trend = fit_trend(sel, [a for a in axes if a not in held], column)
    if trend is not None:
        where = ", ".join(f"{a} = {v:g}" if isinstance(v, float) else f"{a} = {v}" for a, v in at.items())
        trend.scope = f"{where} only"
        trend.notes.append(f"Fitted at {where} (the focus cell's) only: the model has no term for "
                           f"{', '.join(held)}, and one curve through its values would describe none of them; "
                           "read the other cells in the tables.")
    return trend


TREND_TERMS = ("dropout", "n_train", "width")   # the swept settings the trend model has terms for


def _data_keys(trials: pd.DataFrame):
    """(data seed, n_train, noise_std, task, n_features, test_size) per trial: what its data depend on."""
    return zip(trials["data_stream"], trials["n_train"], trials["noise_std"], trials["task"],
               trials["n_features"], trials["test_size"])


def _beside(ok: pd.DataFrame, known: pd.DataFrame, cells: pd.DataFrame, axes: list[str], fidx: Optional[int],
            **boot) -> pd.DataFrame:
    """The focus cell's nets beside the known answers on the same seeds (``known``: known_answer_trials of ``ok``)."""
    if fidx is None or cells.loc[fidx, "delta_n"] == 0:
        return pd.DataFrame()
    row = cells.loc[fidx]
    sel = ok
    for a in axes:
        sel = sel[sel[a] == row[a]]
    n, sd, task = int(row["n_train"]), float(row["noise_std"]), str(sel["task"].iloc[0])
    keys = pd.DataFrame(list(set(_data_keys(sel))), columns=["seed", "n_train", "noise_std", "task", "n_features",
                                                             "test_size"])
    ka = known.merge(keys, on=list(keys.columns))            # the rows of this cell's data, in known's order
    values = {"plain net": {m: sel[f"{m}_plain"].to_numpy(float) for m in METRICS},
              f"dropout net (p={row.get('dropout', sel['dropout'].iloc[0]):g})":
                  {m: sel[f"{m}_dropout"].to_numpy(float) for m in METRICS}}
    book = textbook(sd, n, task)
    expected: list = [None, None]
    for pred in ("oracle", "least_squares", "ridge"):
        g = ka[ka["predictor"] == pred]
        if len(g):
            values[TASKS[task].predictor_labels.get(pred, pred)] = {m: g[m].to_numpy(float) for m in METRICS}
            expected.append(book.loc[pred] if pred in book.index and book.loc[pred].notna().any() else None)
    out = []
    for (name, v), exp in zip(values.items(), expected):
        r: dict[str, Any] = {"predictor": name, "seeds": len(v["test_mse"])}
        for j, m in enumerate(METRICS):
            low, high = interval(v[m], seed=np.random.SeedSequence([boot["seed"], j]),
                                     n_resamples=boot["n_resamples"], method=boot["method"])
            r[m] = fmt.ci(v[m].mean(), low, high)
            r[f"{m} textbook"] = fmt.num(exp[m]) if exp is not None else ""
        r["eff. df"] = fmt.num(float(effective_df(v["gap"].mean(), n, sd)), 1)
        out.append(r)
    return pd.DataFrame(out)
