"""After a run: the folder's report and exports, written from its store (the CLI calls these).

A failure here never loses results: they are in the store (and the study), and
``dropout-bench report DIR`` writes the report again.
"""
from __future__ import annotations

import sys
from pathlib import Path


def write_sweep_outputs(out: Path) -> None:
    """trials.parquet/csv and report.html (with its Markdown, figures and tables) of a sweep folder."""
    from analysis.pages.report import write_report

    from .export import export_trials
    from .records import load_manifest, load_records

    try:
        export_trials(out)
    except Exception as exc:  # noqa: BLE001 - the trials are safe in the store
        print(f"export failed: {exc}", file=sys.stderr)
    try:
        path = write_report(out, records=load_records(out), manifest=load_manifest(out))
        print(f"report: {path}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the trials are safe in the store
        print(f"report failed ({exc}); rerun: dropout-bench report {out}", file=sys.stderr)


def write_search_outputs(out: Path) -> None:
    """search_report.html of a search folder."""
    from analysis.pages.search_report import write_search_report

    from .records import load_search

    try:
        print(f"report: {write_search_report(out, load_search(out))}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the results are safe in the store and the study
        print(f"search report failed ({exc}); rerun: dropout-bench report {out}", file=sys.stderr)
