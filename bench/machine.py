"""The machine a number was measured on, read in one place.

Stored results (``bench.results.environment``), speed reports (``perf.speed.machine_info``),
the tuner's cache key (``perf.tune``) and a sweep's manifest (``sweeps.provenance``) each
describe the machine in their own fields; the reading is here. No torch at import: a
manifest is written without it.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Optional


def _first_processor() -> Optional[dict[str, str]]:
    """The first processor's fields in /proc/cpuinfo; None where there is no such file."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if not line.strip():
                    break                                   # the first processor is enough
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        return None
    return fields


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC 7763 64-Core Processor"); elsewhere platform.processor()."""
    return _name(_first_processor() or {})


def _name(fields: dict[str, str]) -> str:
    return fields.get("model name", platform.processor() or "unknown")


def cpu_model() -> str:
    """The CPU: its model name, family, model and L2 size ("AMD EPYC (family 25 model 17, L2 1024K)").

    A virtual machine may show only "AMD EPYC", and hosts behind that name differ in the
    caches the best group size depends on, so the family, model and L2 size are part of it.
    Read from /proc/cpuinfo and sysfs; elsewhere platform.processor().
    """
    fields = _first_processor()
    if fields is None:
        return platform.processor() or "unknown"
    try:
        l2 = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
    except OSError:
        l2 = "?"
    detail = f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, L2 {l2}"
    return f"{_name(fields)} ({detail})"


def host() -> dict[str, Any]:
    """Python version, operating system and logical core count: what every description shares."""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}


def gpu(device: str) -> Optional[tuple[str, Optional[str]]]:
    """(GPU name, CUDA version torch was built with) for a usable cuda device; None otherwise."""
    import torch  # here, not at the top: describing a CPU host needs no torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device)), torch.version.cuda
    return None
