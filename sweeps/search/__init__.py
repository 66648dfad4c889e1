"""Optuna searches over trial configurations: noisy-objective aware, parallel and resumable.

    >>> from sweeps.search import run_search
    >>> summary = run_search("sweeps/where_dropout_helps.toml", workers=2)

- ``_spec``: the TOML search spec, validated on load.
- ``_backends``: where the study lives (journal file, PostgreSQL, SQLite, another RDB), one
  ``StudyBackend`` per kind: opening it, the study-wide lock, what it answers.
- ``_study``: sampler, pruner, recovery of dead trials.
- ``_liveness``: worker identity, heartbeats, which trials are dead.
- ``_objective``: one Optuna trial = one configuration trained on several seeds.
- ``_worker``: the ask/train/tell loop of a worker process.
- ``_confirm``: the best configurations retrained on fresh seeds.
- ``_run``: the driver (store, workers, progress, Ctrl-C, confirmation).
"""
from ._confirm import pick_best
from ._run import SearchSummary, resolve_out_dir, run_search
from ._spec import OBJECTIVES, PRUNERS, SAMPLERS, Param, SearchSpec, load_search_spec, parse_search_spec
from ._backends import JOURNAL_FILE, StudyBackend, mask_argv, mask_url, open_storage, study_backend

__all__ = [
    "pick_best", "SearchSummary", "resolve_out_dir", "run_search", "OBJECTIVES", "PRUNERS", "SAMPLERS",
    "Param", "SearchSpec", "load_search_spec", "parse_search_spec", "JOURNAL_FILE", "mask_argv", "mask_url", "open_storage",
    "StudyBackend", "study_backend",
]
