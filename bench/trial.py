"""Trials: the plain arm, the dropout arm and any comparator arms of one config, paired on the same seed."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterator, Literal, Sequence, Union

import torch

from .arms import PAIR
from .config import ENGINES, ConfigError, TrialConfig
from .engine import ENGINE_REVISION, group_key, train_group
from .results import Arm, ArmResult, TrialResult, environment, pair, trial_arms

Engine = Literal["auto", "single", "batched"]
# Arms per stacked group: a number; "auto" or None, the budget rule (default_group_size); or a
# rule (arms' config, whether the group has dropout arms) -> number, as a driver passes the
# sizes it measured beforehand (perf.tune). Nothing here measures the machine.
GroupSize = Union[int, Literal["auto"], None, Callable[[TrialConfig, bool], int]]
# The budget rule: as many arms as keep parameters + gradients + Adam's two moments within a
# budget. 3 MB on CPU is a share of the 32 MiB L3 of the machine where docs/measurements.md's
# scans were taken (width 100: 18 arms, 300: 2, 1000: 1); on CUDA the budget only bounds memory.
GROUP_STATE_BYTES = {"cpu": 3 * 2**20, "cuda": 4 * 2**30}
MAX_GROUP_SIZE = {"cpu": 64, "cuda": 4096}  # arms per stacked computation


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

    ``group_size`` is used as given: a number, or a rule (config, has dropout) -> number.
    For a notebook caller, ``"auto"`` (or None) is the budget rule of ``default_group_size``,
    which measures nothing; this machine's measured best per network shape is
    ``perf.tune`` (``group_size=perf.tune.tuned_group_size``, measured once, cached), which
    the sweep driver resolves before its workers start.
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
    """Indices of arms, split into stackable groups of at most ``group_size`` (see ``run_trials``).

    A lone arm needs no size: its rule is not asked.
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
        lone = len(idxs) == 1 and (group_size in (None, "auto") or callable(group_size))
        size = 1 if lone else group_size_for(c, dropout, group_size)
        for start in range(0, len(idxs), size):
            yield idxs[start:start + size]


def group_size_for(cfg: TrialConfig, dropout: bool, group_size: GroupSize = "auto") -> int:
    """Arms per group for arms shaped like ``cfg``: ``group_size`` if a number, its answer if a rule,
    else the budget rule. A size that is not an integer >= 1 raises ConfigError."""
    if group_size in (None, "auto"):
        return default_group_size(cfg.device, cfg.width, cfg.depth)
    size = group_size(cfg, dropout) if callable(group_size) else group_size
    if not _is_number(size) or size < 1:
        raise ConfigError(f"group_size={size!r}: must be an integer >= 1 or 'auto'")
    return size


def _is_number(size: object) -> bool:
    return isinstance(size, int) and not isinstance(size, bool)


def default_group_size(device: str, width: int = 300, depth: int = 2) -> int:
    """Arms per stacked group without measuring: as many as keep the group's training state within budget.

    ``group_size="auto"`` here, and the tuner's fallback (perf.tune). State per arm =
    4 float32 buffers (parameters, gradients, Adam's m and v) of width * (width + 1) *
    (depth - 1) + 3 * width + 1 parameters. The defaults are the seed's architecture
    (width 300, depth 2): 2 arms on CPU, 2,943 on CUDA.
    """
    kind = "cuda" if device.startswith("cuda") else "cpu"
    n_params = width * (width + 1) * (depth - 1) + 3 * width + 1
    return max(1, min(MAX_GROUP_SIZE[kind], GROUP_STATE_BYTES[kind] // (16 * n_params)))


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}: CUDA is not available on this machine (torch {torch.__version__})")

