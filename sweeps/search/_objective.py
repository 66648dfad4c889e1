"""One Optuna trial: draw a configuration, train it on the spec's seeds, report and tell.

Seeds are trained in batched chunks (``bench.run_trials`` stacks a chunk's arms into one
computation; results are bit-identical however they are grouped). Without a pruner a
trial is one chunk of all its seeds. With the Wilcoxon pruner the first chunk holds
``n_startup_seeds`` seeds (a one-sided signed-rank test on n pairs cannot go below
p = 2^-n, so fewer than 4 could never prune at p < 0.1), then chunks of 2: batching
keeps most of its speed, and a clearly worse configuration stops after 4 or 6 seeds.
Every trial sees the seeds in the same order (common random numbers): the pruner pairs
seed k of this trial with seed k of the best trial.

Each finished seed is written at once as the trial's user attribute ``result_seed_<seed>``
(durable in the study's storage); the driver copies them into the store. A seed already
trained by an earlier trial (same configuration, same seed) is reused, not retrained.
"""
from __future__ import annotations

import math
import sys
import time
import traceback
from typing import Any, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from analysis.records.objectives import OBJECTIVES
from bench import run_trials
from perf.tune import tuned_group_size

from ..identity import trial_id
from ._optuna_compat import storage_trial_id, study_storage
from ._spec import SearchSpec
from ._study import INTERRUPTED, fail_trials

SEED_ATTR = "result_seed_"


def suggest(trial: optuna.Trial, spec: SearchSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in spec.space:
        if p.kind == "int":
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return out


def chunks(spec: SearchSpec) -> Iterator[list[int]]:
    seeds = list(spec.seeds)
    if spec.pruner == "none":
        yield seeds
        return
    first = spec.n_startup_seeds
    yield seeds[:first]
    for i in range(first, len(seeds), 2):
        yield seeds[i:i + 2]


def seed_cache(trials: list[FrozenTrial]) -> dict[str, dict[str, Any]]:
    """trial_id -> seed record, from every trial's user attributes."""
    cache: dict[str, dict[str, Any]] = {}
    for t in trials:
        for key, rec in t.user_attrs.items():
            if key.startswith(SEED_ATTR):
                cache[rec["trial_id"]] = rec
    return cache


def evaluate(study: optuna.Study, trial: optuna.Trial, spec: SearchSpec, device: str) -> None:
    """Run one asked trial to its end and tell the study. KeyboardInterrupt: FAIL(interrupted), re-raised."""
    try:
        _evaluate(study, trial, spec, device)
    except optuna.exceptions.UpdateFinishedTrialError:
        # another process judged this worker dead (its heartbeats were late) and failed the
        # trial, queueing a retry; drop this one and go on
        print(f"trial {trial.number} was failed by another process while it ran (late heartbeats); "
              "it is retried", file=sys.stderr, flush=True)


def _evaluate(study: optuna.Study, trial: optuna.Trial, spec: SearchSpec, device: str) -> None:
    try:
        params = suggest(trial, spec)
        values, note = _train(study, trial, spec, params, device)
    except KeyboardInterrupt:
        fail_trials(study, [study_storage(study).get_trial(storage_trial_id(trial))], INTERRUPTED)
        raise
    except optuna.exceptions.UpdateFinishedTrialError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken configuration fails its trial, not the search
        msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:500]
        note, values = f"error: {msg}", None
    if values is None:
        trial.set_user_attr("fail_reason", note)
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    else:
        study.tell(trial, values, skip_if_finished=True)


def _train(study: optuna.Study, trial: optuna.Trial, spec: SearchSpec, params: dict[str, Any],
           device: str) -> tuple[list[float] | None, str]:
    cache = seed_cache(study.get_trials(deepcopy=False))
    single = len(spec.directions) == 1
    done: list[tuple[float, ...]] = []
    for chunk in chunks(spec):
        cfgs = [spec.config(params, s, device) for s in chunk]
        ids = [trial_id(c) for c in cfgs]
        todo = [(tid, c) for tid, c in zip(ids, cfgs) if tid not in cache]
        if todo:
            start = time.perf_counter()
            # a configuration's shape is drawn here, so its group size is measured here (once per shape, cached)
            results = run_trials([c for _, c in todo], engine="auto", group_size=tuned_group_size)
            share = (time.perf_counter() - start) / len(todo)   # seconds per trained seed
            for (tid, _), r in zip(todo, results):
                cache[tid] = {"trial_id": tid, "status": r.status, "result": r.to_dict(), "seconds": share}
        bad = []
        for tid, c in zip(ids, cfgs):
            rec = cache[tid]
            trial.set_user_attr(f"{SEED_ATTR}{c.seed}", rec)        # durable before it counts
            v = OBJECTIVES[spec.objective].seed_value(rec)
            if not all(math.isfinite(x) for x in v):
                bad.append(c.seed)
                continue
            done.append(v)
            if single and spec.pruner != "none":
                trial.report(v[0], c.seed)
        if bad:
            return None, f"diverged: non-finite objective on seed(s) {', '.join(map(str, bad))}"
        if single and spec.pruner != "none" and len(done) < len(spec.seeds) and trial.should_prune():
            # Optuna's advice for this pruner: tell the mean so far, not PRUNED, so the sampler learns
            trial.set_user_attr("pruned_after_seeds", len(done))
            break
    trial.set_user_attr("n_seeds", len(done))
    return OBJECTIVES[spec.objective].aggregate(done), ""
