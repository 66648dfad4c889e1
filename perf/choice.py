"""A run's group sizes, chosen in the driver before its workers start, and handed to them.

``group_size_provenance`` measures (or reads from the cache) the best group size of each
network shape of a run, with the CPUs idle, and says where each came from; ``worker_sizes``
turns that into the ``group_size`` a worker passes to ``bench.run_trials``: the chosen
number per shape, so no worker times the machine.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import torch

from bench.config import TrialConfig
from bench.trial import GroupSize, default_group_size

from .tune import group_size_choice, tuned_group_size, tuning_key


def group_size_provenance(cfgs: Sequence[TrialConfig], *, engine: str = "auto",
                          group_size: int | str | None = "auto", threads: int = 1) -> list[dict[str, Any]]:
    """The group size each network shape of a run uses and where it came from (perf.tune), one
    plain dict per distinct tuning key: ``group_size``, ``source`` ("given", "cache", "tuned
    now" or "fallback"), ``cache_file``, ``key``, the candidates' ``seconds_per_arm_step``...

    Call it in the driver before the workers start: a shape not yet in the cache is measured
    here, with ``threads`` torch threads (the workers' count) and no training running beside
    it, and the workers then find it cached. ``engine="single"`` stacks nothing: [].
    """
    if engine == "single" or not cfgs:
        return []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        choices: dict[str, dict[str, Any]] = {}
        for cfg in cfgs:
            dropout = cfg.dropout > 0
            key = json.dumps(tuning_key(cfg, dropout), sort_keys=True)
            if key not in choices:
                choices[key] = {"shape": {"device": cfg.device, "width": cfg.width, "depth": cfg.depth,
                                          "n_train": cfg.n_train, "inputs": cfg.input_dim, "dropout": dropout},
                                **group_size_choice(cfg, dropout=dropout, group_size=group_size)}
        return list(choices.values())
    finally:
        torch.set_num_threads(previous)


class ChosenSizes:
    """A ``group_size`` rule that answers from choices made beforehand (``group_size_provenance``),
    looked up by tuning key; a shape it was not given gets the budget rule. Picklable: it goes
    to worker processes with their work."""

    def __init__(self, choices: Sequence[dict[str, Any]]) -> None:
        self.sizes = {json.dumps(c["key"], sort_keys=True): c["group_size"] for c in choices if "key" in c}

    def __call__(self, cfg: TrialConfig, dropout: bool) -> int:
        size = self.sizes.get(json.dumps(tuning_key(cfg, dropout), sort_keys=True))
        return size if size is not None else default_group_size(cfg.device, cfg.width, cfg.depth)


def worker_sizes(group_size: int | str | None, choices: Sequence[dict[str, Any]]) -> GroupSize:
    """What workers pass to ``bench.run_trials`` as ``group_size``: a given number as given; else the
    driver's choices (``choices``, from ``group_size_provenance``); with none made (workers on other
    machines), each worker measures its own machine once per shape (``perf.tune.tuned_group_size``)."""
    if group_size not in (None, "auto"):
        return group_size
    if choices:
        return ChosenSizes(choices)
    return tuned_group_size
