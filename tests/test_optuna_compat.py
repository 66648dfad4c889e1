"""The fence around Optuna's private attributes (sweeps/search/_optuna_compat.py).

Each compat function runs against a real small study, a journal file and an SQLite RDB,
and is checked against a public Optuna call that answers the same question where one
exists: an Optuna release that renames what the search reaches into fails here, with the
function's name, not halfway through a search. A scan of the production code keeps every
such access inside the compat module.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage, RDBStorage

from sweeps.search import open_storage
from sweeps.search._optuna_compat import stale_trial_ids, storage_study_id, storage_trial_id, study_storage, uncached

ROOT = Path(__file__).resolve().parents[1]
COMPAT = ROOT / "sweeps" / "search" / "_optuna_compat.py"

optuna.logging.set_verbosity(optuna.logging.WARNING)
# an RDB with heartbeats warns that ask() is not optimize(); the search beats itself
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")


def _storage(tmp_path: Path, backend: str, heartbeat: int = 7) -> BaseStorage:
    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else None
    return open_storage(tmp_path, url, heartbeat)


@pytest.fixture(params=["journal", "sqlite"])
def opened(request, tmp_path):
    """(storage passed to Optuna, study "s"); another study with a trial comes first, so
    the storage ids of "s" and its trials are not just 0, 1, ... by accident."""
    st = _storage(tmp_path, request.param)
    optuna.create_study(storage=st, study_name="other").ask()
    return st, optuna.create_study(storage=st, study_name="s")


def test_study_storage_is_the_storage_the_study_writes_through(opened):
    st, study = opened
    storage = study_storage(study)
    assert isinstance(storage, BaseStorage)
    assert uncached(storage) is st
    study.ask()
    storage.set_trial_user_attr(storage_trial_id(study.ask()), "k", 1)    # a write the study sees
    assert [t.user_attrs for t in study.get_trials(deepcopy=False)] == [{}, {"k": 1}]


def test_uncached_unwraps_only_optunas_rdb_cache(opened):
    st, study = opened
    if isinstance(st, RDBStorage):
        assert study_storage(study) is not st            # load_study wrapped it
        assert isinstance(uncached(study_storage(study)), RDBStorage)
    assert uncached(st) is st


def test_storage_study_id_matches_the_public_lookup(opened):
    _, study = opened
    sid = storage_study_id(study)
    assert sid == study_storage(study).get_study_id_from_name("s")
    assert sid != study_storage(study).get_study_id_from_name("other")


def test_storage_trial_id_of_live_and_frozen_trials_matches_the_public_lookup(opened):
    _, study = opened
    storage, sid = study_storage(study), storage_study_id(study)
    live = [study.ask(), study.ask()]
    frozen = study.get_trials(deepcopy=False)
    for trial, ft in zip(live, frozen):
        tid = storage.get_trial_id_from_study_id_trial_number(sid, trial.number)
        assert storage_trial_id(trial) == storage_trial_id(ft) == tid
        assert storage.get_trial(tid).number == trial.number
    assert storage_trial_id(live[0]) != storage_trial_id(live[1])


def _backdate_heartbeat(db: Path, trial_id: int, seconds: int) -> None:
    """Move a trial's last heartbeat into the past: staleness without waiting for it."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', ?) WHERE trial_id = ?",
                     (f"-{seconds} seconds", trial_id))
    conn.close()


def test_stale_trial_ids_judges_by_the_given_grace_period_and_restores_the_storage(tmp_path):
    rdb = _storage(tmp_path, "sqlite", heartbeat=7)
    assert (rdb.heartbeat_interval, rdb.grace_period) == (7, 21)
    study = optuna.create_study(storage=rdb, study_name="s")
    old, fresh, mute, done = (storage_trial_id(study.ask()) for _ in range(4))
    for tid in (old, fresh, done):
        rdb.record_heartbeat(tid)
    _backdate_heartbeat(tmp_path / "s.db", old, 3600)
    _backdate_heartbeat(tmp_path / "s.db", done, 3600)
    study_storage(study).set_trial_state_values(done, optuna.trial.TrialState.COMPLETE, [1.0])

    # RUNNING with a heartbeat an hour old: stale at a 3-minute grace period, not at 2 hours;
    # a fresh heartbeat, none at all, or a finished trial: never
    assert stale_trial_ids(rdb, study, 60, 180) == [old]
    assert stale_trial_ids(rdb, study, 3600, 7200) == []
    assert (rdb.heartbeat_interval, rdb.grace_period) == (7, 21)


# --- the fence: no Optuna private name outside the compat module ---------------------------

# Optuna's private attributes the search uses or might (Study._storage, _study_id,
# Trial._trial_id, _cached_frozen_trial, _CachedStorage._backend, RDBStorage's stale-trial
# query), getattr on them, any import or use of a private Optuna module or class, and
# rewriting an RDBStorage's heartbeat settings.
PRIVATE = re.compile(
    r"\.(_storage|_backend|_trial_id|_study_id|_get_stale_trial_ids|_cached_\w+|_CachedStorage)\b"
    r"|getattr\([^,]+,\s*['\"]_(storage|backend|trial_id|study_id)['\"]"
    r"|\boptuna(\.\w+)*\._\w+"
    r"|^\s*[\w.]+\.(heartbeat_interval|grace_period)\s*(,\s*[\w.]+\s*)*=(?!=)"
)


def _private_uses(text: str, name: str) -> list[str]:
    return [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if PRIVATE.search(line)]


def test_the_scan_sees_each_kind_of_private_access():
    snippet = "\n".join([
        "storage = study._storage",
        "rdb.record_heartbeat(trial._trial_id)",
        "ids = rdb._get_stale_trial_ids(study._study_id)",
        'rdb = getattr(storage, "_backend", storage)',
        "t = trial._cached_frozen_trial",
        "from optuna.storages._rdb import models",
        "if isinstance(s, optuna.storages._CachedStorage):",
        "    rdb.heartbeat_interval, rdb.grace_period = 5, 15",
        "rdb.grace_period = 15",
    ])
    assert len(_private_uses(snippet, "x")) == len(snippet.splitlines())
    ours = "\n".join([
        "return open_storage(out, storage, heartbeat)",
        "rdb = _open_storage(out, url, heartbeat) if url else None",
        "optuna.storages.RDBStorage(url, heartbeat_interval=h, grace_period=3 * h)",
        "saved = rdb.heartbeat_interval, rdb.grace_period",
        "tid = trial_id(cfg)",
    ])
    assert _private_uses(ours, "x") == []


def test_no_optuna_private_access_outside_the_compat_module():
    found = []
    for package in ("sweeps", "analysis", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != COMPAT:
                found += _private_uses(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, ("Optuna private attributes used outside sweeps/search/_optuna_compat.py; "
                       "add a function there and call it:\n" + "\n".join(found))
