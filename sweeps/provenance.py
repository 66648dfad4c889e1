"""What a record needs to describe where it came from: code version, packages, host."""
from __future__ import annotations

import importlib.metadata
import socket
import subprocess
from pathlib import Path
from typing import Any

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
