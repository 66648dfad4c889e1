"""Read a sweep or search folder's store into what ``analysis`` takes: plain records, DataFrames,
a manifest, and a search's study snapshot.

    >>> from sweeps import load_trials
    >>> df = load_trials("results/quick")      # one row per trial (columns: analysis/records/frame.py)

The store is opened read-only, so a sweep still running in the folder is not disturbed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.records.frame import curves_frame, records_frame

from .store import Store

if TYPE_CHECKING:
    from analysis.pages.search_report import SearchRecords


def load_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every stored trial: {trial_id, status, error, attempts, config, result, finished_at}."""
    with Store.open(out_dir, readonly=True) as store:
        return list(store.records())


def load_trials(out_dir: str | Path) -> pd.DataFrame:
    """One row per trial; columns documented in analysis/records/frame.py."""
    return records_frame(load_records(out_dir))


def load_curves(out_dir: str | Path) -> pd.DataFrame:
    """One row per (trial, arm, evaluation step); columns documented in analysis/records/frame.py."""
    return curves_frame(load_records(out_dir))


def load_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The sweep's self-description: spec, axes, seeds, versions, host, device, times."""
    with Store.open(out_dir, readonly=True) as store:
        meta = store.meta()
        runs = store.runs()
    spec = json.loads(meta.get("spec", "{}"))
    last = runs[-1]["info"] if runs else {}
    return {
        "kind": meta.get("kind"), "name": meta.get("name"), "spec": spec,
        "spec_text": meta.get("spec_text", ""),
        "grid_axes": [*spec.get("grid", {}), *spec.get("families", {})], "seeds": spec.get("seeds", []),
        "code_version": last.get("code_version"), "packages": last.get("packages", {}),
        "host": last.get("host"), "processor": last.get("processor"), "device": last.get("device"),
        "engine": last.get("engine"), "n_jobs": last.get("n_jobs"),
        "threads": last.get("threads_per_worker"),
        "started_at": runs[0]["started_at"] if runs else None,
        "ended_at": runs[-1]["ended_at"] if runs else None,
        "runs": runs,
    }


def load_search(out_dir: str | Path) -> SearchRecords:
    """What the search report reads from a search folder: spec, study snapshot, confirmation plan, records."""
    # matplotlib comes with the search report: load it only when a search is read
    from analysis.pages.search_report import SearchRecords

    with Store.open(out_dir, readonly=True) as store:
        meta, records = store.meta(), list(store.records())
    return SearchRecords(spec=json.loads(meta.get("spec", "{}")),
                         snapshot=json.loads(meta.get("search_study", "[]") or "[]"),
                         confirm=json.loads(meta.get("search_confirm", "[]") or "[]"),
                         records=records, meta=meta)
