"""How fast the engines train the seed config, measured against the seed's own loop in the same run.

``measure_speed`` times, in one process and one run: the reference loop (the seed
tutorial's nn.Sequential training, bench/reference.py), the single engine (one arm
at a time) and the batched engine (groups of arms); with ``workers > 1`` also the
batched engine in that many worker processes (one torch thread each). Every figure
is reported with its ratio to the reference loop measured in the same run, since on
a shared machine only same-run ratios are comparable. ``memory_report`` compares a
group's measured peak memory with a count of its buffers.

Units: seconds (wall clock), trials/s, arm-steps/s (one arm = one network, one step =
one optimizer update; a trial is two arms).
"""
from __future__ import annotations

import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from .config import ConfigError, TrialConfig
from .reference import run_reference_trial
from .trial import check_device, default_group_size, run_trials

SPEED_SCHEMA_VERSION = 1


def measure_speed(
    cfg: TrialConfig = TrialConfig(),
    *,
    trials: int = 16,
    reference_trials: int = 2,
    single_trials: int = 4,
    workers: int = 1,
    group_size: int | None = None,
    device: str | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Time the reference loop, the single and the batched engine on ``cfg`` (seeds cfg.seed + i).

    trials: trials for the batched engine (and for the worker processes);
    reference_trials / single_trials: trials for the slower two; workers > 1 adds the
    batched engine in that many processes. Returns a plain dict (JSON-ready).
    """
    device = device or cfg.device
    _check_counts(group_size, trials=trials, reference_trials=reference_trials, single_trials=single_trials,
                  workers=workers, threads=threads)
    cfg = cfg.replace(device=device)
    check_device(device)
    size = group_size or default_group_size(device, cfg.width, cfg.depth)
    arm_steps = 2 * cfg.steps  # per trial

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _warm_up(cfg, size)
        rows: dict[str, dict[str, Any]] = {}
        load_before = _load_average()
        seconds, cpu, _ = _timed(lambda: [run_reference_trial(c) for c in _seeds(cfg, reference_trials)], device)
        rows["reference"] = _row("reference loop (nn.Sequential, 2 nets)", reference_trials, seconds, cpu, arm_steps)
        seconds, cpu, single = _timed(lambda: run_trials(_seeds(cfg, single_trials), engine="single"), device)
        rows["single"] = _row("single engine", single_trials, seconds, cpu, arm_steps)
        seconds, cpu, batched = _timed(lambda: run_trials(_seeds(cfg, trials), engine="batched",
                                                          group_size=size), device)
        rows["batched"] = _row(f"batched engine (group {size})", trials, seconds, cpu, arm_steps)
        if workers > 1:
            seconds, cpu = _time_workers(cfg, trials, workers, size)
            rows["workers"] = _row(f"batched engine, {workers} processes", trials, seconds, cpu, arm_steps)
        load_after = _load_average()
    finally:
        torch.set_num_threads(previous_threads)
    _add_ratios(rows)
    same = _bit_identical(single, batched)
    return {
        "schema_version": SPEED_SCHEMA_VERSION,
        "config": cfg.to_dict(),
        "group_size": size,
        "workers": workers,
        "engines": rows,
        "batched_equals_single": same,
        "machine": machine_info(device),
        "threads": threads,
        # 1-minute load average before and after: above the core count, other work shared the CPUs
        "load_average": [load_before, load_after],
    }


def _check_counts(group_size: int | None, **counts: Any) -> None:
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}={value!r}: must be an integer >= 1")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ConfigError(f"group_size={group_size!r}: must be an integer >= 1 (or omitted for the default)")


def _bit_identical(single: list, batched: list) -> bool:
    """Batched and single-engine results are bit-identical by design; the report records the check."""
    return all(a.plain.test_mse == b.plain.test_mse and a.dropout.test_mse == b.dropout.test_mse
               for a, b in zip(single, batched))


def _add_ratios(rows: dict[str, dict[str, Any]]) -> None:
    """Each engine against the reference loop of the same run: wall-clock and CPU-time ratios."""
    ref = rows["reference"]
    ref_rate, ref_cpu = ref["trials_per_s"], ref["cpu_seconds"] / ref["trials"]
    for row in rows.values():
        row["vs_reference"] = row["trials_per_s"] / ref_rate
        # CPU seconds per trial, reference over engine: robust to time-sharing, not to cache contention
        row["cpu_vs_reference"] = ref_cpu / (row["cpu_seconds"] / row["trials"])


def _seeds(cfg: TrialConfig, n: int) -> list[TrialConfig]:
    return [cfg.replace(seed=cfg.seed + i) for i in range(n)]


def _warm_up(cfg: TrialConfig, size: int) -> None:
    """One short run of each path, so first-call costs (kernel selection, allocation) are not timed."""
    short = cfg.replace(steps=min(cfg.steps, 10))
    run_reference_trial(short)
    run_trials(_seeds(short, 2), engine="batched", group_size=size)


def _timed(fn, device: str) -> tuple[float, float, Any]:
    """(wall seconds, this process's CPU seconds, fn's result)."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, out


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without it
        return None


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def _row(label: str, trials: int, seconds: float, cpu_seconds: float,
         arm_steps_per_trial: int) -> dict[str, Any]:
    return {"label": label, "trials": trials, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "trials_per_s": trials / seconds, "arm_steps_per_s": trials * arm_steps_per_trial / seconds}


# ---- worker processes ----------------------------------------------------------------
def _worker_init() -> None:
    torch.set_num_threads(1)  # two threads per process on two cores made the seed loop ~2.5x slower


def _worker_run(cfg_dicts: list[dict], size: int) -> tuple[int, float]:
    """(trials run, CPU seconds spent) in one worker."""
    c0 = time.process_time()
    cfgs = [TrialConfig.from_dict(d) for d in cfg_dicts]
    return len(run_trials(cfgs, engine="batched", group_size=size)), time.process_time() - c0


def _time_workers(cfg: TrialConfig, trials: int, workers: int, size: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds summed over workers) for ``trials`` trials split over
    ``workers`` warm processes; process start-up is excluded."""
    cfgs = [c.to_dict() for c in _seeds(cfg, trials)]
    chunks = [cfgs[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")  # no inherited torch thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        short = cfg.replace(steps=min(cfg.steps, 10)).to_dict()
        list(pool.map(_worker_run, [[short]] * workers, [size] * workers))  # start and warm every worker
        t0 = time.perf_counter()
        done = list(pool.map(_worker_run, chunks, [size] * workers))
        seconds = time.perf_counter() - t0
    assert sum(n for n, _ in done) == trials
    return seconds, sum(c for _, c in done)


# ---- environment ---------------------------------------------------------------------
def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model and core count, torch and python versions, and the GPU if one is used."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def format_speed(report: dict[str, Any]) -> str:
    """A readable table of a ``measure_speed`` report."""
    c, m = report["config"], report["machine"]
    lines = [
        f"config: width {c['width']}, depth {c['depth']}, n_train {c['n_train']}, {c['steps']} steps, "
        f"dropout {c['dropout']}; device {m['device']}, {report['threads']} torch thread(s) per process",
        f"machine: {m['cpu']} ({m['cpu_count']} cores)" + (f", {m['gpu']}" if "gpu" in m else "")
        + f"; torch {m['torch']}, python {m['python']}",
        "",
        f"{'engine':<40} {'trials':>6} {'seconds':>8} {'trials/s':>9} {'arm-steps/s':>12} "
        f"{'vs reference':>13} {'CPU s vs ref':>13}",
    ]
    for row in report["engines"].values():
        lines.append(f"{row['label']:<40} {row['trials']:>6} {row['seconds']:>8.2f} {row['trials_per_s']:>9.2f} "
                     f"{row['arm_steps_per_s']:>12.0f} {row['vs_reference']:>12.2f}x {row['cpu_vs_reference']:>12.2f}x")
    lines.append("")
    load = report.get("load_average") or [None, None]
    if load[0] is not None:
        lines.append(f"load average (1 min) before/after: {load[0]:.2f} / {load[1]:.2f} on {m['cpu_count']} cores"
                     + ("  -- other work shared the CPUs; ratios are less certain"
                        if max(load) > (m["cpu_count"] or 1) else ""))
    lines.append("batched results equal the single engine's bit for bit: "
                 + ("yes" if report["batched_equals_single"] else "NO"))
    return "\n".join(lines)
