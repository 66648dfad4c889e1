"""The statistical report of a sweep: findings, design, tables and figures, in one page.

``build_report`` assembles the numbers (``analysis.estimates``), the sentences
(``analysis.prose``) and the figures (``analysis.report_figures``; pure, apart from
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

from . import _render as R
from .cells import cell_label
from .estimates import Estimates, estimate
from .files import atomic_write
from .prose import design, findings
from .stats import DEFAULT_METHOD, DEFAULT_RESAMPLES


@dataclass
class Report(Estimates):
    """Everything the report says: the estimates, and the words and figures made of them."""
    findings: list[str] = field(default_factory=list)
    design: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, str, Any]] = field(default_factory=list)   # (name, caption, figure)


def build_report(records: Sequence[Mapping[str, Any]], manifest: Optional[Mapping[str, Any]] = None, *,
                 seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES, method: str = DEFAULT_METHOD,
                 focus: Optional[Mapping[str, Any]] = None, seed_picture: bool = True,
                 figures: bool = True) -> Report:
    """Statistics, known answers and (unless ``figures=False``) figures of a set of records.

    ``focus`` picks the cell the findings lead with (default: nearest the seed experiment).
    """
    manifest = dict(manifest or {})
    clock = _Clock()
    est = estimate(records, manifest, seed=seed, n_resamples=n_resamples, method=method, focus=focus,
                   lap=clock.lap)
    rep = Report(**{f.name: getattr(est, f.name) for f in fields(Estimates)})
    rep.seconds = clock.seconds
    rep.findings = findings(rep, method=method)
    rep.design = design(rep, manifest, records, seed=seed, n_resamples=n_resamples, method=method)
    if figures and (rep.trials["status"] == "ok").any():
        from .report_figures import make_figures  # seaborn: only when figures are drawn

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


# ---- the page's tables: each number beside its interval ---------------------------------
def cells_display(rep: Estimates) -> pd.DataFrame:
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
        d = {"N": int(r["n_train"]), "sigma": r["noise_std"], "predictor": r["predictor"], "seeds": int(r["n_seeds"])}
        for m in ("train_mse", "test_mse", "gap"):
            d[m] = R.ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"])
            d[f"{m} textbook"] = R.num(r[f"{m}_expected"]) + ("" if r[f"{m}_within"] else " (outside CI)")
        rows.append(d)
    return pd.DataFrame(rows)



def write_report(out_dir: str | Path, *, records: Sequence[Mapping[str, Any]],
                 manifest: Optional[Mapping[str, Any]] = None, seed: int = 0,
                 n_resamples: int = DEFAULT_RESAMPLES, method: str = DEFAULT_METHOD,
                 seed_picture: bool = True, seconds: Optional[dict[str, float]] = None) -> Path:
    """Write report.html, report.md, figures/*.png and tables/*.csv into ``out_dir``; return the HTML path.

    ``records`` and ``manifest`` as ``sweeps.records.load_records`` / ``load_manifest`` give
    them. ``seconds``, if given, receives the wall time of each stage.
    """
    import matplotlib.pyplot as plt

    def put(path: Path, data: bytes) -> None:  # temp file, rename; readable by all, like any report
        atomic_write(path, lambda tmp: (Path(tmp).write_bytes(data), os.chmod(tmp, 0o644)))

    out_dir = Path(out_dir)
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
    sections = _sections(rep)
    title = f"dropout-bench report: {(manifest or {}).get('name', 'trials')}"
    put(out_dir / "report.md", R.render_markdown(title, rep.findings, rep.design, sections).encode())
    html_path = out_dir / "report.html"
    put(html_path, R.render_html(title, rep.findings, rep.design, sections, pngs).encode())
    clock.lap("tables and pages")
    if seconds is not None:
        seconds.update(rep.seconds, **clock.seconds)
    return html_path


def _sections(rep: Report) -> list[tuple[str, str, Any]]:
    """The page's sections after the findings and design: (heading, note, table or figure reference)."""
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
    return sections
