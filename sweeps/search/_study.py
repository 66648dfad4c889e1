"""The Optuna side of a search: study, sampler and pruner, and recovery of stale trials.

Where the study is stored (the folder's journal file or an RDB) is ``_backends``'s.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.rng import derive_seed

from ._liveness import dead_trials
from ._optuna_compat import storage_trial_id, study_storage
from ._spec import SearchSpec

STALE = "stale"            # fail_reason of a trial left RUNNING by a process that stopped
INTERRUPTED = "interrupted"
RETRYABLE = (STALE, INTERRUPTED)


def make_sampler(spec: SearchSpec, asked: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded for the ask that follows ``asked`` trials of the study.

    Workers in parallel would otherwise share one seed and propose the same points. A
    fresh sampler per ask (the samplers here keep their state in the study; GP's
    warm-start cache is only a speed-up) seeded by (sampler_seed, trials so far, read
    under the study lock) gives each ask its own stream; one worker still repeats the
    same search exactly.
    """
    seed = derive_seed(spec.sampler_seed, f"sampler/ask-{asked}") % 2**32
    if spec.sampler == "tpe":
        # constant_liar: a worker's sampler sees its siblings' running trials, so parallel
        # workers spread out instead of proposing the same point
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if spec.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if spec.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.RandomSampler(seed=seed)


def check_sampler_available(spec: SearchSpec) -> None:
    """Missing optional packages are bad input: one line, before anything is written."""
    from bench import ConfigError

    if spec.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise ConfigError(f"{spec.source}: sampler: 'cmaes' needs the package cmaes "
                              "(pip install cmaes); or choose tpe, gp or random") from None


def make_pruner(spec: SearchSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "wilcoxon":
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.WilcoxonPruner(p_threshold=spec.p_threshold,
                                             n_startup_steps=spec.n_startup_seeds)
    return optuna.pruners.NopPruner()


def load_study(spec: SearchSpec, storage: optuna.storages.BaseStorage, *, create: bool = False) -> optuna.Study:
    directions = list(spec.directions)
    if create:
        return optuna.create_study(storage=storage, study_name=spec.name, directions=directions,
                                   sampler=make_sampler(spec), pruner=make_pruner(spec),
                                   load_if_exists=True)
    return optuna.load_study(storage=storage, study_name=spec.name, sampler=make_sampler(spec),
                             pruner=make_pruner(spec))


def fail_reason(t: FrozenTrial) -> str | None:
    return t.user_attrs.get("fail_reason")


def fail_trials(study: optuna.Study, trials: list[FrozenTrial], reason: str) -> int:
    """Mark trials FAIL with ``fail_reason``; those that finish meanwhile are left as they are."""
    storage = study_storage(study)
    n = 0
    for t in trials:
        try:
            storage.set_trial_user_attr(storage_trial_id(t), "fail_reason", reason)
            storage.set_trial_state_values(storage_trial_id(t), TrialState.FAIL)
            n += 1
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue
    return n


def recover(study: optuna.Study, names: list[str], out_dir: str | os.PathLike,
            dead_pids: set[int] | None, trials: list[FrozenTrial] | None = None) -> tuple[int, int]:
    """Fail the trials nobody will finish (see ``dead_trials``) and enqueue retries.

    Call it holding the ``StudyLock``. A stopped trial is retried once per stop, with its
    own parameters (``retry_of``); one stopped before its parameters were all drawn is not
    retried (it evaluated nothing). ``trials``: the study's trials, if the caller has just
    read them. Returns (failed, enqueued).
    """
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    failed = fail_trials(study, dead_trials(study, running, Path(out_dir), dead_pids), STALE)
    if failed:
        trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    enqueued = 0
    for t in trials:
        if (t.state == TrialState.FAIL and fail_reason(t) in RETRYABLE and t.number not in retried
                and set(t.params) >= set(names)):
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
            enqueued += 1
    return failed, enqueued


def counted(t: FrozenTrial) -> bool:
    """Does this trial use up the budget? Everything but trials stopped from outside (retried)."""
    if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and fail_reason(t) not in RETRYABLE


def used_budget(trials: list[FrozenTrial]) -> int:
    return sum(counted(t) for t in trials)


def snapshot(study: optuna.Study) -> list[dict[str, Any]]:
    """The study's trials as JSON-able dicts (seed results left out), for the report."""
    from optuna.distributions import distribution_to_json

    out = []
    for t in study.get_trials(deepcopy=False):
        out.append({
            "number": t.number, "state": t.state.name, "values": t.values, "params": t.params,
            "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
            "intermediate_values": {str(k): v for k, v in t.intermediate_values.items()},
            "user_attrs": {k: v for k, v in t.user_attrs.items() if not k.startswith("result_seed_")},
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        })
    return out
