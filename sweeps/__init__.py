"""Turn specs into work and run it: specs, trial identity, executors, the store, the CLI."""
from .identity import trial_id
from .run import SweepSummary, run_sweep
from .spec import SpecError, SweepSpec, load_spec, parse_spec
from .store import Store, StoreError

__all__ = ["trial_id", "SweepSummary", "run_sweep", "SpecError", "SweepSpec", "load_spec",
           "parse_spec", "Store", "StoreError"]
