"""Turn specs into work and run it: specs, trial identity, executors, the store, the CLI.

The drivers (which pull in torch) and the loaders of stored results (pandas) load on
first use, so ``dropout-bench --help``, ``status`` and ``export`` start fast.
"""
from importlib import import_module
from typing import Any

from .identity import trial_id
from .spec import SpecError, SweepSpec, load_spec, parse_spec
from .store import Store, StoreError

_LAZY = {"SweepSummary": ".run", "run_sweep": ".run",
         "load_records": ".records", "load_trials": ".records", "load_manifest": ".records",
         "load_curves": ".records", "load_search": ".records"}

__all__ = ["trial_id", "SweepSummary", "run_sweep", "SpecError", "SweepSpec", "load_spec",
           "parse_spec", "Store", "StoreError", "load_records", "load_trials", "load_manifest",
           "load_curves", "load_search"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
