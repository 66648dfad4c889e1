"""The confirmation stage: the best configurations of the search, retrained on fresh seeds.

A search picks its winners by their noisy mean over a few seeds, so the winners' search
means are biased in their favour (the winner's curse). Retraining each of the best
``confirm.top`` configurations on seeds the search never used gives unbiased estimates;
the report sets them beside the search's own. The retraining is a small sweep (the same
executors, the same store), so it resumes and never trains a stored seed twice.
"""
from __future__ import annotations

import sys
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from analysis.records.objectives import OBJECTIVES

from ..execute import arms_per_unit, make_units
from ..executors import make_executor
from ..identity import trial_id
from ..options import ExecutionOptions
from ..session import FolderSession
from ._spec import SearchSpec


def pick_best(study: optuna.Study, spec: SearchSpec) -> list[FrozenTrial]:
    """The best ``confirm_top`` distinct configurations evaluated on every search seed.

    One objective: by value. Two: the Pareto front, by the first objective.
    """
    full = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "pruned_after_seeds" not in t.user_attrs]
    objective = OBJECTIVES[spec.objective]
    if len(objective.directions) > 1:
        front = {t.number for t in study.best_trials}
        full = sorted((t for t in full if t.number in front),
                      key=lambda t: (objective.lower_is_better(t.values[0]), t.number))
    else:
        full = sorted(full, key=lambda t: (objective.lower_is_better(t.value), t.number))
    picked, seen = [], set()
    for t in full:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            picked.append(t)
    return picked[:spec.confirm_top]


def confirm_best(session: FolderSession, study: optuna.Study, spec: SearchSpec, opts: ExecutionOptions,
                 progress: bool) -> list[dict[str, Any]]:
    """Retrain the picks on ``spec.confirm_seeds``; returns one description per pick (for the report)."""
    picks = pick_best(study, spec)
    plan = []
    for rank, t in enumerate(picks, 1):
        search_ids = [trial_id(spec.config(t.params, s, opts.device)) for s in spec.seeds]
        confirm_cfgs = [spec.config(t.params, s, opts.device) for s in spec.confirm_seeds]
        plan.append(({"rank": rank, "number": t.number, "params": t.params, "values": t.values,
                      "search_ids": search_ids, "confirm_ids": [trial_id(c) for c in confirm_cfgs]},
                     confirm_cfgs))
    stored = session.store.statuses()
    todo = [c for _, cfgs in plan for c in cfgs if trial_id(c) not in stored]
    if todo:
        if progress:
            print(f"[{spec.name}] confirming the best {len(picks)} configuration(s) on "
                  f"{len(spec.confirm_seeds)} fresh seeds ({len(todo)} trials)", file=sys.stderr, flush=True)
        # the same executors as a sweep's, with its group size; units sized for the workers
        executor = make_executor(opts)
        units = make_units(todo, arms_per_unit(len(todo), executor.n_workers))
        try:
            executor.run(units, session.store_outcomes)
        finally:
            executor.close()
    return [info for info, _ in plan]
