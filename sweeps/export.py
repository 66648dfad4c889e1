"""Exports of a store's trials: Parquet (typed) and CSV (for anything else), written atomically."""
from __future__ import annotations

from pathlib import Path

from analysis.pages.files import atomic_write

from .records import load_trials


def export_trials(out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    frame = load_trials(out_dir)
    parquet, csv = out_dir / "trials.parquet", out_dir / "trials.csv"
    atomic_write(parquet, lambda tmp: frame.to_parquet(tmp, index=False))
    atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False))
    return [parquet, csv]
