"""dropout-bench's analysis: stored results into numbers, pictures and a report.

    >>> from analysis import write_report
    >>> write_report("results/quick")          # report.html, report.md, figures/, tables/

Statistics are pure functions over arrays (``analysis.stats``); per-cell tables in
``analysis.cells``; known answers in ``analysis.known_answers``. The loaders and the report
(which pull in the store, matplotlib and seaborn) are imported on first use.
"""
from importlib import import_module
from typing import Any

from .cells import cell_axes, cell_table, focus_cell, slice_through
from .known_answers import known_answer_table, known_answer_trials, textbook
from .stats import (
    adjust_pvalues, bootstrap_ci, cohens_dz, describe, effective_df, paired_summary, paired_t_power,
    prob_improvement, seeds_for_power, wilcoxon_p, wilcoxon_rows, wilson_interval,
)

_LAZY = {
    "load_records": ".load", "load_trials": ".load", "load_manifest": ".load", "load_curves": ".load",
    "records_frame": ".frame", "curves_frame": ".frame",
    "write_report": ".report", "build_report": ".report",
}

__all__ = [
    "cell_axes", "cell_table", "focus_cell", "slice_through",
    "known_answer_table", "known_answer_trials", "textbook",
    "adjust_pvalues", "bootstrap_ci", "cohens_dz", "describe", "effective_df", "paired_summary",
    "paired_t_power", "prob_improvement", "seeds_for_power", "wilcoxon_p", "wilcoxon_rows",
    "wilson_interval",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
