"""Every reach into Optuna's private attributes, in one place (Optuna 5.0).

The search needs a few things Optuna's public API does not give: the storage a study
writes through, the storage and trial ids Optuna already holds, and which RUNNING trials
have a stale heartbeat without failing them. Each is one function here, saying what it
reaches into and why no public call does it; ``tests/test_optuna_compat.py`` runs each
against a real study, so a renamed attribute fails there and not in a search. Nothing
else in the project touches an Optuna name that starts with an underscore.
"""
from __future__ import annotations

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes through: ``Study._storage``.

    For an RDB this is Optuna's per-process cache around the ``RDBStorage``; writes that
    must agree with ``study.get_trials`` (failing a trial, its ``fail_reason``) go through
    it. ``Study`` has no public accessor, and the object passed to ``load_study`` is not it
    (``load_study`` wraps an ``RDBStorage`` in the cache).
    """
    return study._storage


def uncached(storage: BaseStorage) -> BaseStorage:
    """The storage under Optuna's RDB cache (``_CachedStorage._backend``); others as they are.

    The heartbeat and stale-trial queries, the engine (for the study-wide lock) and the
    heartbeat settings live on the ``RDBStorage`` itself; the cache that ``Study`` wraps
    it in exposes none of them publicly.
    """
    if isinstance(storage, optuna.storages._CachedStorage):
        return storage._backend
    return storage


def storage_study_id(study: optuna.Study) -> int:
    """The study's id in its storage: ``Study._study_id``.

    Public but a database query each time: ``storage.get_study_id_from_name(study.study_name)``;
    it is needed inside the study-wide lock step, where each query delays every worker.
    """
    return study._study_id


def storage_trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a live or frozen trial: ``Trial._trial_id`` / ``FrozenTrial._trial_id``.

    Storage calls (heartbeats, failing a trial, ``get_trial``) take this id, not the trial's
    number. Public but one or two database queries per trial:
    ``get_trial_id_from_study_id_trial_number(study id, trial.number)``; ``dead_trials``
    would pay them for every RUNNING trial on every ask, inside the study-wide lock.
    """
    return trial._trial_id


def stale_trial_ids(rdb: RDBStorage, study: optuna.Study, heartbeat_interval: int,
                    grace_period: int) -> list[int]:
    """Ids of the study's RUNNING trials whose last heartbeat is older than ``grace_period`` seconds.

    Calls ``RDBStorage._get_stale_trial_ids`` (it judges by the database server's clock),
    with the storage's ``heartbeat_interval`` and ``grace_period`` rewritten for the call
    and restored after: that method reads the grace period only from them. The public
    ``optuna.storages.fail_stale_trials`` fails the trials itself, with the reader's own
    grace period and without the search's ``fail_reason`` (which keeps a stopped trial off
    the budget and gets it retried), and its callback runs after the trial is finished,
    when Optuna no longer lets its attributes change.
    """
    saved = rdb.heartbeat_interval, rdb.grace_period
    try:
        rdb.heartbeat_interval, rdb.grace_period = heartbeat_interval, grace_period
        return list(rdb._get_stale_trial_ids(storage_study_id(study)))
    finally:
        rdb.heartbeat_interval, rdb.grace_period = saved
