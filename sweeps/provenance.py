"""What a record needs to describe where it came from: code version, packages, host."""
from __future__ import annotations

import importlib.metadata
import json
import socket
import subprocess
from pathlib import Path
from typing import Any, Sequence

from bench.machine import cpu_name, host

PACKAGES = ("dropout-bench", "torch", "numpy", "optuna", "pandas", "scipy", "statsmodels",
            "seaborn", "matplotlib", "joblib")


def code_version() -> str:
    """The git commit of the source tree (with '+dirty' for local changes), else the package version."""
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        try:
            head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                  capture_output=True, text=True, timeout=10, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return head + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return package_versions().get("dropout-bench", "unknown")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def host_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), **host(), "processor": cpu_name()}


def group_size_provenance(cfgs: Sequence[Any], *, engine: str = "auto", group_size: int | str | None = "auto",
                          threads: int = 1) -> list[dict[str, Any]]:
    """The group size each network shape of a run uses and where it came from (bench.tune), one
    plain dict per distinct tuning key: ``group_size``, ``source`` ("given", "cache", "tuned
    now" or "fallback"), ``cache_file``, ``key``, the candidates' ``seconds_per_arm_step``...

    Call it in the driver before the workers start: a shape not yet in the cache is measured
    here, with ``threads`` torch threads (the workers' count) and no training running beside
    it, and the workers then find it cached. ``engine="single"`` stacks nothing: [].
    """
    if engine == "single" or not cfgs:
        return []
    import torch                      # only once there is work to run: status and --help stay fast

    from bench.tune import group_size_choice, tuning_key

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
