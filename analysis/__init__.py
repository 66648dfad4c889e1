"""dropout-bench's analysis: results into numbers, pictures and a report.

    >>> from sweeps import load_manifest, load_records
    >>> from analysis import write_report
    >>> write_report("results/quick", records=load_records("results/quick"),
    ...              manifest=load_manifest("results/quick"))   # report.html, report.md, figures/, tables/

Everything here takes plain records and DataFrames and knows no store (``sweeps.records``
reads a sweep's folder). Statistics are pure functions over arrays (``analysis.stats``);
per-cell tables in ``analysis.cells``; known answers in ``analysis.known_answers``; the
report's numbers, sentences and figures in ``estimates``, ``prose`` and ``report_figures``.
Every name is imported on first use, so ``analysis.objectives`` and ``analysis.files`` cost
nothing to import.
"""
from importlib import import_module
from typing import Any

_LAZY = {
    **dict.fromkeys(("cell_axes", "cell_table", "focus_cell", "slice_through"), ".cells"),
    **dict.fromkeys(("known_answer_table", "known_answer_trials", "textbook"), ".known_answers"),
    **dict.fromkeys(("adjust_pvalues", "bootstrap_ci", "cohens_dz", "describe", "effective_df", "paired_summary",
                     "paired_t_power", "prob_improvement", "seeds_for_power", "wilcoxon_p", "wilcoxon_rows",
                     "wilson_interval"), ".stats"),
    "records_frame": ".frame", "curves_frame": ".frame",
    "pair_trials": ".pairs", "best_of_families": ".families",
    "OBJECTIVES": ".objectives", "Objective": ".objectives",
    "atomic_write": ".files", "atomic_write_text": ".files",
    "write_report": ".report", "build_report": ".report",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
