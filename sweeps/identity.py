"""Trial identity: a stable id from the canonical config (seed included) and the result schema.

The same trial in another sweep, or in a rerun, gets the same id, so a store can tell
what is already done. A change of result schema that changes what a config's record holds
changes every id (``bench.results.IDENTITY_SCHEMA_VERSION``): old results are never
silently mixed with new ones; one that only adds what older configs cannot ask for
(schema 3's comparator arms) keeps them, so older stores resume.
"""
from __future__ import annotations

import hashlib

from bench import TrialConfig
from bench.results import IDENTITY_SCHEMA_VERSION


def trial_id(cfg: TrialConfig, schema_version: int = IDENTITY_SCHEMA_VERSION) -> str:
    payload = f"dropout-bench/v{schema_version}/{cfg.canonical_json()}"
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
