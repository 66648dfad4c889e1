"""dropout-bench's analysis: results into numbers, pictures and a report.

    >>> from sweeps import load_manifest, load_records
    >>> from analysis import write_report
    >>> write_report("results/quick", records=load_records("results/quick"),
    ...              manifest=load_manifest("results/quick"))   # report.html, report.md, figures/, tables/

Everything here takes plain records and DataFrames and knows no store (``sweeps.records``
reads a sweep's folder). Four rooms, each importing only the ones below it
(``pages > numbers > records | inference``, an import-linter contract in pyproject.toml):

- ``analysis.records``: records into frames, the data contract (``frame``, ``pairs``,
  ``divergence``) and the registries read from records (``outcomes``, ``objectives``);
- ``analysis.inference``: pure statistics over arrays (``stats``, ``mean_test``, ``decisions``,
  ``ratio``, ``clustered``, ``trend``, ``variance``);
- ``analysis.numbers``: a report's numbers from those frames and tests (``cells``,
  ``comparisons``, ``families``, ``known_answers``, ``answers``, ``estimates``);
- ``analysis.pages``: words, pictures and files (``first_screen``, ``prose``, ``figures``,
  ``report``, ``search_report``).

The names below are imported on first use, so ``analysis.records.objectives`` and
``analysis.pages.files`` cost nothing to import.
"""
from importlib import import_module
from typing import Any

_LAZY = {
    **dict.fromkeys(("cell_axes", "cell_table", "focus_cell", "slice_through"), ".numbers.cells"),
    **dict.fromkeys(("known_answer_table", "known_answer_trials", "textbook"), ".numbers.known_answers"),
    **dict.fromkeys(("adjust_pvalues", "bootstrap_ci", "cohens_dz", "describe", "effective_df", "paired_summary",
                     "paired_t_power", "prob_improvement", "seeds_for_power", "wilcoxon_p", "wilcoxon_rows",
                     "wilson_interval"), ".inference.stats"),
    "records_frame": ".records.frame", "curves_frame": ".records.frame",
    "pair_trials": ".records.pairs", "best_of_families": ".numbers.families",
    "OBJECTIVES": ".records.objectives", "Objective": ".records.objectives",
    "atomic_write": ".pages.files", "atomic_write_text": ".pages.files",
    "write_report": ".pages.report", "build_report": ".pages.report",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
