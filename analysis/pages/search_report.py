"""The report of a search: the study's course and the confirmed best configurations, in one page.

``search_summary`` computes the confirmation table (pure over records); ``search_answer`` says
what it means in a few lines (the confirmed score on fresh seeds first: the CLI's closing lines
and the report's Answer block); ``build_search_figures``
draws Optuna's own static views of the study (``optuna.visualization.matplotlib``);
``write_search_report`` writes ``DIR/search_report.html``, self-contained (PNGs embedded).
Its input is ``SearchRecords``, plain data: the study comes from the snapshot the search
keeps beside its results (``sweeps.records.load_search`` reads one from a folder), so the
report needs neither the study's storage nor its credentials.
"""
from __future__ import annotations

import html
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: the report embeds PNGs, nothing is shown
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..inference.stats import DEFAULT_METHOD, MIN_SEEDS, interval  # noqa: E402
from ..records.objectives import OBJECTIVES, Objective  # noqa: E402
from . import _render as R  # noqa: E402
from .files import atomic_write_text  # noqa: E402

DEFAULT_OBJECTIVE = "dropout_test_mse"  # what a spec without an objective is reported as


@dataclass(frozen=True)
class SearchRecords:
    """Everything the search report reads, as plain data."""
    spec: Mapping[str, Any]                    # the search spec as a dict: objective, space, seeds, confirm, ...
    snapshot: Sequence[Mapping[str, Any]]      # the study's trials: number, state, values, params, user_attrs, ...
    confirm: Sequence[Mapping[str, Any]]       # one per confirmed pick: rank, number, params, search_ids, confirm_ids
    records: Sequence[Mapping[str, Any]]       # every trial record: {trial_id, status, config, result, ...}
    meta: Mapping[str, str] = field(default_factory=dict)  # study_name and search_storage, for the design block


def _objective(name: Optional[str]) -> Objective:
    return OBJECTIVES[name or DEFAULT_OBJECTIVE]


def study_from_snapshot(snapshot: Sequence[Mapping[str, Any]], directions: Sequence[str]):
    """An in-memory Optuna study holding the finished trials of a stored snapshot."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=list(directions))
    for t in snapshot:
        state = TrialState[t["state"]]
        if not state.is_finished():
            continue
        study.add_trial(create_trial(
            state=state, values=t["values"] if state == TrialState.COMPLETE else None, params=t["params"],
            distributions={k: json_to_distribution(d) for k, d in t["distributions"].items()},
            user_attrs=t["user_attrs"], intermediate_values={int(k): v for k, v in t["intermediate_values"].items()},
        ))
    return study


def search_summary(records: Sequence[Mapping[str, Any]], confirm: Sequence[Mapping[str, Any]], objective: str,
                   *, seed: int = 0, n_resamples: int = 9_999, method: str = DEFAULT_METHOD) -> pd.DataFrame:
    """One row per confirmed configuration: the search's estimate beside the fresh seeds'.

    Columns: rank, trial, the parameters, then for the first objective ``search_*`` (mean and
    interval over the search seeds) and ``confirm_*`` (over the fresh seeds), ``optimism``
    = how much better the search's mean looked than the fresh seeds' (> 0: the winner's curse),
    and the paired ``delta`` (test MSE plain - dropout) on the fresh seeds with its CI.
    """
    obj = _objective(objective)
    by_id = {r["trial_id"]: r for r in records}
    rows = []
    for c in confirm:
        def values(ids: Sequence[str], index: int = 0) -> np.ndarray:
            recs = [by_id[i] for i in ids if i in by_id and by_id[i]["result"] is not None]
            v = np.array([obj.seed_value(r)[index] for r in recs], dtype=float)
            return v[np.isfinite(v)]

        s, f = values(c["search_ids"]), values(c["confirm_ids"])
        delta = np.array([by_id[i]["result"]["delta_test_mse"] for i in c["confirm_ids"]
                          if i in by_id and by_id[i]["result"] is not None], dtype=float)
        delta = delta[np.isfinite(delta)]
        row: dict[str, Any] = {"rank": c["rank"], "trial": c["number"], **c["params"]}
        for name, x in (("search", s), ("confirm", f), ("delta", delta)):
            lo, hi = interval(x, seed=seed, n_resamples=n_resamples, method=method) if len(x) else (np.nan, np.nan)
            row.update({f"{name}_n": len(x), f"{name}_mean": x.mean() if len(x) else np.nan,
                        f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        row["optimism"] = obj.lower_is_better(row["confirm_mean"]) - obj.lower_is_better(row["search_mean"])
        if len(obj.directions) > 1:                                 # the second value is step time
            row["step_time_median"] = float(np.median(values(c["confirm_ids"], 1))) if len(f) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _g(v: Any) -> str:
    """A score in a sentence: four significant digits, '-' for missing."""
    return "-" if v is None or not np.isfinite(float(v)) else f"{float(v):.4g}"


def _with_interval(mean: float, low: float, high: float, n: int, seeds: str) -> str:
    """'0.1234 [0.1, 0.15], 95% t-interval over 3 fresh seeds' (no interval below 3 seeds)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{_g(mean)} (mean of {n} {seeds}; no interval below {MIN_SEEDS} seeds)"
    return f"{_g(mean)} [{_g(low)}, {_g(high)}], 95% t-interval over {n} {seeds}"


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def search_answer(search: SearchRecords, *, unconfirmed: str = "", seed: int = 0,
                  n_resamples: int = 9_999) -> list[str]:
    """The search's answer in a few plain lines: the CLI's closing lines and the report's Answer block.

    With a confirmation: the search's pick (rank 1), its score on the fresh seeds with its 95%
    t-interval first, then the search's own score for it (optimistic: selected on those seeds),
    the optimism and the paired delta on the fresh seeds. Without one (``search.confirm``
    empty): ``unconfirmed`` (why) and the search's best, labelled not confirmed.
    """
    objective = search.spec.get("objective", DEFAULT_OBJECTIVE)
    table = search_summary(search.records, search.confirm, objective, seed=seed, n_resamples=n_resamples)
    return answer_lines(objective, search.snapshot, table, unconfirmed)


def answer_lines(objective: str, snapshot: Sequence[Mapping[str, Any]], table: pd.DataFrame,
                 unconfirmed: str = "") -> list[str]:
    """``search_answer`` from the summary table (``search_summary``) and the study's snapshot."""
    obj = _objective(objective)
    name = obj.value_names[0]
    if table.empty:
        return [f"not confirmed on fresh seeds: {unconfirmed or 'no confirmation stage has run'}",
                _unconfirmed_best(obj, snapshot)]
    i = table["rank"].idxmin()
    r = table.loc[i]
    params = {k: table.at[i, k] for k in table.columns if k not in ("rank", "trial") and not k.startswith(
        ("search_", "confirm_", "delta_")) and k not in ("optimism", "step_time_median")}   # each its own type
    step = (f"; median {obj.value_names[1]} {_g(r['step_time_median'])}" if "step_time_median" in r else "")
    lines = [f"confirmed best (the search's pick, trial {int(r['trial'])}: {_params_text(params)}): {name} "
             + _with_interval(r["confirm_mean"], r["confirm_ci_low"], r["confirm_ci_high"], int(r["confirm_n"]),
                              "fresh seeds") + step,
             f"  search's own score for it: {_g(r['search_mean'])} over {int(r['search_n'])} search seeds, "
             f"optimistic (selected on those seeds); optimism {_g(r['optimism'])} (> 0: it looked better than it is)"]
    if obj.name != "dropout_benefit":           # that objective's score is the delta already
        lines.append("  delta test MSE (plain - dropout; > 0: dropout helps), paired on the fresh seeds: "
                     + _with_interval(r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], int(r["delta_n"]),
                                      "fresh seeds"))
    return lines


def _unconfirmed_best(obj: Objective, snapshot: Sequence[Mapping[str, Any]]) -> str:
    """The search's best trial by its first value, labelled as the optimistic number it is."""
    done = [t for t in snapshot if t["state"] == "COMPLETE" and t.get("values")
            and "pruned_after_seeds" not in t["user_attrs"]]
    if not done:
        return "the search has no trial completed on every seed"
    best = min(done, key=lambda t: (obj.lower_is_better(t["values"][0]), t["number"]))
    return (f"search's best: {obj.value_names[0]} {_g(best['values'][0])} over "
            f"{best['user_attrs'].get('n_seeds', '?')} search seeds (trial {best['number']}: "
            f"{_params_text(best['params'])}), not confirmed on fresh seeds (optimistic: the best of "
            f"{len(done)} trials, selected on those seeds)")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figure_of(ax) -> Any:
    """The figure of Optuna's axes; grids of panels get room to breathe."""
    if not isinstance(ax, np.ndarray):
        return ax.figure
    fig = np.ravel(ax)[0].figure
    rows, cols = ax.shape if ax.ndim == 2 else (1, ax.size)
    fig.set_size_inches(max(6.0, 3.4 * cols), max(4.0, 3.0 * rows))
    return fig


def importance_evaluator(seed: int = 0):
    """fANOVA (seeded) where scikit-learn is installed, else PED-ANOVA (needs only scipy)."""
    import optuna

    try:
        import sklearn  # noqa: F401
    except ImportError:
        return (optuna.importance.PedAnovaImportanceEvaluator(),
                "PED-ANOVA: how much each parameter's distribution differs in the best 10% of trials")
    return optuna.importance.FanovaImportanceEvaluator(seed=seed), f"fANOVA, random forests seeded with {seed}"


def build_search_figures(study, objective: str, *, seed: int = 0) -> list[tuple[str, str, Optional[bytes], str]]:
    """(name, caption, PNG bytes or None, why missing) for each view of the study."""
    import optuna.visualization.matplotlib as vm

    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    names = _objective(objective).value_names
    name0 = names[0]
    params = sorted({p for t in study.trials for p in t.params})
    evaluator, importance_name = importance_evaluator(seed)
    plans: list[tuple[str, str, Any]] = [
        ("history", f"Optimisation history: {name0} of each trial and the best so far.",
         lambda: vm.plot_optimization_history(study, target=target, target_name=name0)),
        ("importance", f"Parameter importances for {name0} ({importance_name}).",
         lambda: vm.plot_param_importances(study, target=target, target_name=name0, evaluator=evaluator)),
        ("slice", f"Slice views: {name0} against each parameter.",
         lambda: vm.plot_slice(study, target=target, target_name=name0)),
    ]
    if len(params) >= 2:
        plans.append(("contour", f"Contour of {name0} over pairs of parameters (interpolated between trials).",
                      lambda: vm.plot_contour(study, params=params[:3], target=target, target_name=name0)))
    if multi:
        plans.append(("pareto", "Pareto front: dropout test MSE against seconds per arm-step.",
                      lambda: vm.plot_pareto_front(study, target_names=list(names))))
    out = []
    for name, caption, draw in plans:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw()
            out.append((name, caption, _png(_figure_of(ax)), ""))
        except Exception as exc:  # noqa: BLE001 - too few trials for a view is not a failure
            plt.close("all")
            out.append((name, caption, None, f"{type(exc).__name__}: {exc}"[:200]))
    return out


def _confirm_table(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    keep = [c for c in frame.columns if c in ("rank", "trial") or not c.startswith(("search_", "confirm_", "delta_"))
            and c not in ("optimism", "step_time_median")]
    out = frame[keep].copy()
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = out[c].map(lambda v: f"{v:.4g}")
    out["search mean [95% CI]"] = [R.ci(r.search_mean, r.search_ci_low, r.search_ci_high, 4) + f" (n={r.search_n})"
                                   for r in frame.itertuples()]
    out["fresh seeds mean [95% CI]"] = [R.ci(r.confirm_mean, r.confirm_ci_low, r.confirm_ci_high, 4)
                                        + f" (n={r.confirm_n})" for r in frame.itertuples()]
    out["optimism"] = [R.num(v, 4) for v in frame["optimism"]]
    out["delta on fresh seeds [95% CI]"] = [R.ci(r.delta_mean, r.delta_ci_low, r.delta_ci_high, 4)
                                            for r in frame.itertuples()]
    if "step_time_median" in frame:
        out["s per arm-step"] = [f"{v:.3g}" for v in frame["step_time_median"]]
    return out


def _trials_table(snapshot: Sequence[Mapping[str, Any]], directions: Sequence[str], limit: int = 25) -> pd.DataFrame:
    rows = []
    for t in snapshot:
        row = {"trial": t["number"], "state": t["state"], **{k: (f"{v:.4g}" if isinstance(v, float) else v)
                                                              for k, v in t["params"].items()}}
        for i, v in enumerate(t["values"] or []):
            row[f"value {i}" if len(directions) > 1 else "value"] = v
        ua = t["user_attrs"]
        row["seeds"] = ua.get("n_seeds", "")
        row["note"] = ("seed experiment" if ua.get("seed_experiment") else
                       f"pruned after {ua['pruned_after_seeds']} seeds" if "pruned_after_seeds" in ua else
                       f"retry of {ua['retry_of']}" if "retry_of" in ua else "") + (
                       f" {ua['fail_reason']}" if ua.get("fail_reason") else "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    key = "value" if "value" in frame else "value 0"
    if key in frame:
        asc = directions[0] == "minimize"
        frame = frame.sort_values(key, ascending=asc, na_position="last")
        frame[key] = frame[key].map(lambda v: R.num(v, 5))
    for c in [c for c in frame.columns if c.startswith("value ")]:
        frame[c] = frame[c].map(lambda v: R.num(v, 5) if not isinstance(v, str) else v)
    return frame.head(limit)


def write_search_report(report_dir: str | Path, search: SearchRecords, *, seed: int = 0,
                        n_resamples: int = 9_999) -> Path:
    """Write ``report_dir/search_report.html`` (self-contained) for ``search``; return its path."""
    objective = search.spec.get("objective", DEFAULT_OBJECTIVE)
    directions = _objective(objective).directions
    study = study_from_snapshot(search.snapshot, directions)
    figures = build_search_figures(study, objective, seed=seed) if study.trials else []
    table = search_summary(search.records, search.confirm, objective, seed=seed, n_resamples=n_resamples)
    answer = answer_lines(objective, search.snapshot, table)
    page = render_search_html(search.meta, search.spec, search.snapshot, figures, _confirm_table(table, objective),
                              _trials_table(search.snapshot, directions), len(search.records), answer)
    path = Path(report_dir) / "search_report.html"
    atomic_write_text(path, page)
    return path


def _design(meta: Mapping[str, str], spec: Mapping[str, Any], snapshot: Sequence[Mapping[str, Any]],
            n_records: int) -> list[tuple[str, str]]:
    """The report's Design block: (heading, text) pairs."""
    states: dict[str, int] = {}
    for t in snapshot:
        states[t["state"]] = states.get(t["state"], 0) + 1
    objective = spec.get("objective", "")
    space = ", ".join(f"{k} in [{v['low']}, {v['high']}]{' (log)' if v.get('log') else ''}"
                      for k, v in spec.get("space", {}).items())
    label = OBJECTIVES[objective].label if objective in OBJECTIVES else ""
    return [
        ("Objective", f"{objective}: {label}; the mean over seeds (the median over seeds for step time)"),
        ("Space", space), ("Fixed settings", json.dumps(spec.get("base", {}), sort_keys=True) or "{}"),
        ("Seeds per configuration", f"{len(spec.get('seeds', []))} (the same seeds for every configuration: "
                                    "paired comparisons, common random numbers)"),
        ("Sampler", f"{spec.get('sampler')} (seed {spec.get('sampler_seed')}); pruner {spec.get('pruner')}"
                    + (f" (p < {spec.get('p_threshold')}, after {spec.get('n_startup_seeds')} seeds)"
                       if spec.get("pruner") == "wilcoxon" else "")),
        ("Budget", f"n_trials {spec.get('n_trials')}, timeout {spec.get('timeout')} s per invocation"),
        ("Trials", ", ".join(f"{k.lower()} {v}" for k, v in sorted(states.items())) or "none"),
        ("Seed-level results stored", f"{n_records} (search and confirmation; read them with sweeps.load_trials)"),
        ("Study", f"{meta.get('study_name')} in {meta.get('search_storage')}; "
                  "readable with `optuna studies --storage ...` and optuna-dashboard"),
        ("Confirmation", f"the best {spec.get('confirm', {}).get('top')} configurations retrained on "
                         f"{len(spec.get('confirm', {}).get('seeds', []))} fresh seeds; intervals are "
                         f"95% Student's t intervals of the mean (no interval below {MIN_SEEDS} seeds)"),
    ]


def render_search_html(meta: Mapping[str, str], spec: Mapping[str, Any], snapshot: Sequence[Mapping[str, Any]],
                       figures: Sequence[tuple[str, str, Optional[bytes], str]], confirm: pd.DataFrame,
                       trials: pd.DataFrame, n_records: int, answer: Sequence[str] = ()) -> str:
    """The search report's page; ``answer``: ``search_answer``'s lines, shown first."""
    e = html.escape
    design = _design(meta, spec, snapshot, n_records)
    lead, *rest = [*answer] or ["No answer: no trial has finished."]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Search: {e(str(spec.get('name')))}"
             f"</title><style>{R.CSS}</style></head><body><h1>Search: {e(str(spec.get('name')))}</h1>",
             "<h2>Answer</h2><div class='answer'>", f"<p><b>{e(lead)}</b></p>",
             *[f"<p>{e(line.strip())}</p>" for line in rest], "</div>",
             "<h2>Design</h2><dl>", *[f"<dt><b>{e(k)}</b></dt><dd>{e(str(v))}</dd>" for k, v in design], "</dl>",
             "<h2>Confirmed best configurations</h2>",
             "<p class='note'>The search chose these by their mean over its own seeds, so that mean is biased in "
             "their favour. Fresh seeds give an unbiased estimate; <b>optimism</b> = how much better the search's "
             "mean looked (&gt; 0: the winner's curse).</p>",
             R.html_table(confirm) if not confirm.empty else "<p class='note'>No confirmation stage has run.</p>"]
    for name, caption, png, why in figures:
        parts.append(f"<h2>{e(name.capitalize())}</h2>")
        if png is None:
            parts.append(f"<p class='note'>{e(caption)} Not drawn: {e(why)}</p>")
        else:
            parts.append(f"<figure><img src='{R.data_uri(png)}' alt='{e(caption)}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
    parts += ["<h2>Trials</h2>", "<p class='note'>The best trials first (at most 25).</p>",
              R.html_table(trials) if not trials.empty else "<p class='note'>No trials.</p>", "</body></html>"]
    return "\n".join(parts) + "\n"
