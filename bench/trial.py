"""Trials: the plain arm, the dropout arm and any comparator arms of one config, paired on the same seed."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Literal, Sequence

import torch

from .arms import PAIR
from .config import ENGINES, ConfigError, TrialConfig
from .engine import ENGINE_REVISION, group_key, train_group
from .results import Arm, ArmResult, TrialResult, environment, pair, trial_arms
from .tune import GroupSize, budget_group_size, resolve_group_size

Engine = Literal["auto", "single", "batched"]


def run_trial(cfg: TrialConfig, *, record_fits: bool = False) -> TrialResult:
    """Train both arms of one trial, one arm at a time (the single engine). Pure."""
    return run_trials([cfg], engine="single", record_fits=record_fits)[0]


def run_trials(
    cfgs: Sequence[TrialConfig],
    *,
    engine: Engine = "auto",
    device: str | None = None,
    group_size: GroupSize = None,
    record_fits: bool = False,
) -> list[TrialResult]:
    """Run many trials; results in input order. Each distinct arm is trained once.

    ``device`` overrides every config's device. ``engine="single"`` trains arms one at a
    time, ``"batched"`` stacks up to ``group_size`` compatible arms, ``"auto"`` picks
    batched whenever more than one arm can share a group.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r}: must be one of {', '.join(ENGINES)}")
    if device is not None:
        cfgs = [c.replace(device=device) for c in cfgs]
    for c in cfgs:
        check_device(c.device)
    arms_of = [trial_arms(c) for c in cfgs]
    unique = list(dict.fromkeys(a for arms in arms_of for a in arms.values()))
    trained = dict(zip(unique, train_arms(unique, engine=engine, group_size=group_size,
                                          record_fits=record_fits)))
    results = []
    for c, arms in zip(cfgs, arms_of):
        others = {k: trained[a] for k, a in arms.items() if k not in PAIR}
        env = {**environment(c.device), "engine_revision": ENGINE_REVISION}   # the step that trained it
        results.append(pair(c, trained[arms["plain"]], trained[arms["dropout"]], env, others))
    return results


def train_arms(arms: Sequence[Arm], *, engine: Engine = "auto", group_size: GroupSize = None,
               record_fits: bool = False) -> list[ArmResult]:
    """Train arms, grouped by compatibility; results in input order."""
    out: dict[int, ArmResult] = {}
    for idx_group in plan_groups(arms, engine=engine, group_size=group_size):
        group = [arms[i] for i in idx_group]
        name = "single" if len(group) == 1 and engine != "batched" else "batched"
        for i, res in zip(idx_group, train_group(group, record_fits=record_fits, engine=name)):
            out[i] = res
    return [out[i] for i in range(len(arms))]


def plan_groups(arms: Sequence[Arm], *, engine: Engine = "auto", group_size: GroupSize = "auto") -> Iterator[list[int]]:
    """Indices of arms, split into stackable groups of at most ``group_size``.

    ``group_size`` "auto" (or None): this machine's measured best for the arms' shape
    (bench.tune: cached after the first measurement; DROPOUT_BENCH_TUNE=0 uses the budget
    rule of ``default_group_size`` instead). A lone arm needs no size and is never tuned for.
    """
    if engine == "single":
        yield from ([i] for i in range(len(arms)))
        return
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i, a in enumerate(arms):
        by_key[group_key(a)].append(i)
    for idxs in by_key.values():
        c = arms[idxs[0]].cfg
        dropout = any(arms[i].rate > 0 for i in idxs)
        size = 1 if len(idxs) == 1 and group_size in (None, "auto") else resolve_group_size(c, dropout, group_size)
        for start in range(0, len(idxs), size):
            yield idxs[start:start + size]


def default_group_size(device: str, width: int = 300, depth: int = 2) -> int:
    """Arms per stacked group without measuring: as many as keep the group's training state within budget.

    The fallback of ``group_size="auto"`` (bench.tune.budget_group_size). State per arm =
    4 float32 buffers (parameters, gradients, Adam's m and v) of width * (width + 1) *
    (depth - 1) + 3 * width + 1 parameters. The defaults are the seed's architecture
    (width 300, depth 2): 2 arms on CPU, 2,943 on CUDA.
    """
    return budget_group_size(device, width, depth)


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}: CUDA is not available on this machine (torch {torch.__version__})")

