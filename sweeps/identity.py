"""Trial identity: a stable id from the canonical config (seed included) and the result schema.

The same trial in another sweep, or in a rerun, gets the same id, so a store can tell
what is already done. A change of result schema changes every id: old results are
never silently mixed with new ones.
"""
from __future__ import annotations

import hashlib

from bench import RESULT_SCHEMA_VERSION, TrialConfig


def trial_id(cfg: TrialConfig, schema_version: int = RESULT_SCHEMA_VERSION) -> str:
    payload = f"dropout-bench/v{schema_version}/{cfg.canonical_json()}"
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
