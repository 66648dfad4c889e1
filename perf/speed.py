"""How fast the engines train the seed config, measured against the seed's own loop in the same run.

``measure_speed`` times, in one process and one run: the reference loop (the seed
tutorial's nn.Sequential training, bench/reference.py), the single engine (one arm
at a time) and the batched engine (groups of arms); with ``workers > 1`` also the
batched engine in that many worker processes (one torch thread each). Every figure
is reported with its ratio to the reference loop measured in the same run, since on
a shared machine only same-run ratios are comparable.

The same run also measures training steps alone (``measure_steps``: no set-up, no
evaluation), alternating the engines, the reference loop and, with ``peers``, what a
user would write instead (perf/peers.py), with medians per arm-step; this machine's
limit for the config (perf/roofline.py: the matrix products and Adam alone) and each
engine's fraction of it; a profile of where the batched engine's step goes; and the
group size used and where it came from (perf/tune.py).

Units: seconds (wall clock), trials/s, arm-steps/s (one arm = one network, one step =
one optimizer update; a trial is two arms).
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from bench.config import ConfigError, TrialConfig
from bench.engine import ENGINE_REVISION
from bench.machine import cpu_model, gpu, host
from bench.reference import run_reference_trial
from bench.trial import GroupSize, check_device, run_trials

from .peers import PEERS, peer_stepper
from .roofline import limit_stepper, measure_roofline, profile_step
from .steppers import group_stepper, mixed_stepper, reference_stepper
from .tune import describe, group_size_choice

SPEED_SCHEMA_VERSION = 3   # 2: group_size_choice, steps (race, roofline, profile), roofline_fraction;
                           # 3: the limit's kernels as a racer, same_rounds_fraction
RACE_STEPS = 20            # steps per round of the step race
RACE_ROUNDS = 5            # alternating rounds; medians are kept
PEER_LABELS = {"stacked_autograd": "stacked autograd, fused Adam", "func_ensemble": "torch.func ensemble, vmap(grad)"}


def measure_speed(
    cfg: TrialConfig = TrialConfig(),
    *,
    trials: int = 16,
    reference_trials: int = 2,
    single_trials: int = 4,
    workers: int = 1,
    group_size: GroupSize = "auto",
    threads: int = 1,
    peers: bool = False,
) -> dict[str, Any]:
    """Time the reference loop, the single and the batched engine on ``cfg`` (seeds cfg.seed + i).

    trials: trials for the batched engine (and for the worker processes);
    reference_trials / single_trials: trials for the slower two; workers > 1 adds the
    batched engine in that many processes; group_size: a number, or "auto" (perf.tune);
    peers: also time perf/peers.py's steppers in the step race. The device is cfg.device.
    Returns a plain dict (JSON-ready).
    """
    _check_counts(trials=trials, reference_trials=reference_trials, single_trials=single_trials,
                  workers=workers, threads=threads)
    check_device(cfg.device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # tuned (if at all) before anything is timed, with the threads the timings use
        choice = group_size_choice(cfg, dropout=cfg.dropout > 0, group_size=group_size)
        size = choice["group_size"]
        _warm_up(cfg, size)
        load_before = _load_average()
        rows, same = _time_trials(cfg, size, trials, (reference_trials, single_trials), workers)
        steps = measure_steps(cfg, size, peers=peers)
        load_after = _load_average()
    finally:
        torch.set_num_threads(previous_threads)
    _add_ratios(rows, steps["roofline"]["limit_arm_steps_per_s"])
    return {
        "schema_version": SPEED_SCHEMA_VERSION,
        "config": cfg.to_dict(),
        "group_size": size,
        "group_size_choice": choice,
        "workers": workers,
        "engines": rows,
        "steps": steps,
        "batched_equals_single": same,
        "machine": machine_info(cfg.device),
        "threads": threads,
        # 1-minute load average before and after: above the core count, other work shared the CPUs
        "load_average": [load_before, load_after],
    }


def _time_trials(cfg: TrialConfig, size: int, trials: int, slow: tuple[int, int],
                 workers: int) -> tuple[dict[str, dict[str, Any]], bool]:
    """Whole trials (set-up and evaluations included): the rows by engine, and whether batched equals single."""
    reference_trials, single_trials = slow
    arm_steps, device, rows = 2 * cfg.steps, cfg.device, {}
    seconds, cpu, _ = _timed(lambda: [run_reference_trial(c) for c in _seeds(cfg, reference_trials)], device)
    rows["reference"] = _row("reference loop (nn.Sequential, 2 nets)", reference_trials, seconds, cpu, arm_steps)
    seconds, cpu, single = _timed(lambda: run_trials(_seeds(cfg, single_trials), engine="single"), device)
    rows["single"] = _row("single engine", single_trials, seconds, cpu, arm_steps)
    seconds, cpu, batched = _timed(lambda: run_trials(_seeds(cfg, trials), engine="batched",
                                                      group_size=size), device)
    rows["batched"] = _row(f"batched engine (group {size})", trials, seconds, cpu, arm_steps)
    if workers > 1:
        seconds, cpu = _time_workers(cfg, trials, workers, size)
        rows["workers"] = {**_row(f"batched engine, {workers} processes", trials, seconds, cpu, arm_steps),
                           "processes": workers}
    return rows, _bit_identical(single, batched)


def measure_steps(cfg: TrialConfig, group_size: int, *, peers: bool = False, steps: int = RACE_STEPS,
                  rounds: int = RACE_ROUNDS) -> dict[str, Any]:
    """Training steps alone, in alternating rounds: seconds per arm-step (medians), ratio to the
    reference loop and fraction of this machine's limit; the limit itself (perf/roofline.py at
    group sizes 1 and ``group_size``, the faster kept) and a profile of the batched engine's step.

    Every racer trains arms mixed as trials mix them (half with dropout when cfg.dropout > 0;
    one arm at a time: a plain and a dropout net in turn). Peers run at ``group_size`` arms.
    The limit's own kernels race too (``limit_stepper``, at the limit's group size): each
    row's ``same_rounds_fraction`` is that racer's median over the row's, the fraction of
    the limit's work as it runs under the race's conditions, beside ``roofline_fraction``
    (the kernels' minimums, timed apart on hot caches).
    """
    dropout, g = cfg.dropout > 0, group_size
    roof = {str(n): measure_roofline(cfg, n) for n in sorted({1, g})}
    best = min(roof.values(), key=lambda r: r["limit_s_per_arm_step"])
    racers = {"reference": ("reference loop (nn.Sequential, 1 net at a time)",
                            mixed_stepper(_reference, cfg, 1, dropout=dropout, steps=steps)),
              "single": ("single engine", mixed_stepper(group_stepper, cfg, 1, dropout=dropout, steps=steps)),
              "batched": (f"batched engine (group {g})", mixed_stepper(group_stepper, cfg, g, dropout=dropout,
                                                                       steps=steps))}
    for name in PEERS if peers else ():
        make = functools.partial(peer_stepper, name)
        racers[name] = (f"{PEER_LABELS[name]} (group {g})", mixed_stepper(make, cfg, g, dropout=dropout, steps=steps))
    racers["limit"] = (f"limit: products and Adam alone (group {best['group_size']})",
                       limit_stepper(cfg, best["group_size"], steps))
    medians = race({k: stepper for k, (_, stepper) in racers.items()}, rounds, cfg.device)
    limit, ref = best["limit_s_per_arm_step"], medians["reference"]
    rows = {k: {"label": label, "s_per_arm_step": medians[k], "arm_steps_per_s": 1.0 / medians[k],
                "vs_reference": ref / medians[k], "roofline_fraction": limit / medians[k],
                "same_rounds_fraction": medians["limit"] / medians[k]}
            for k, (label, _) in racers.items()}
    run, _ = mixed_stepper(group_stepper, cfg, g, dropout=dropout, steps=steps)
    return {"steps_per_round": steps, "rounds": rounds, "rows": rows,
            "roofline": {"limit_s_per_arm_step": limit, "limit_arm_steps_per_s": 1.0 / limit,
                         "at_group_size": best["group_size"], "by_group_size": roof},
            "profile": {"group_size": g, **profile_step(run, steps, cfg.device)}}


def _reference(cfg: TrialConfig, n_arms: int, *, n_dropout: int, steps: int):
    """The seed loop's net as a mixed_stepper maker: one net, with dropout if n_dropout."""
    assert n_arms == 1
    return reference_stepper(cfg, dropout=n_dropout > 0, steps=steps)


def race(racers: dict[str, tuple[Any, int]], rounds: int, device: str = "cpu") -> dict[str, float]:
    """Median seconds per arm-step of each (stepper, arm-steps per call), in alternating rounds
    after one untimed round, so every racer sees the same conditions (as same_run_ratio)."""
    times: dict[str, list[float]] = {k: [] for k in racers}
    for r in range(rounds + 1):
        for name, (run, arm_steps) in racers.items():
            _sync(device)
            t0 = time.perf_counter()
            run()
            if r:
                times[name].append((time.perf_counter() - t0) / arm_steps)
    return {k: statistics.median(v) for k, v in times.items()}


def _check_counts(**counts: Any) -> None:
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}={value!r}: must be an integer >= 1")


def _bit_identical(single: list, batched: list) -> bool:
    """Batched and single-engine results are bit-identical by design; the report records the check."""
    return all(a.plain.test_mse == b.plain.test_mse and a.dropout.test_mse == b.dropout.test_mse
               for a, b in zip(single, batched))


def _add_ratios(rows: dict[str, dict[str, Any]], limit_arm_steps_per_s: float) -> None:
    """Each engine against the reference loop of the same run (wall-clock and CPU-time ratios),
    and its fraction of this machine's limit (whole trials: set-up and evaluations count against it)."""
    ref = rows["reference"]
    ref_rate, ref_cpu = ref["trials_per_s"], ref["cpu_seconds"] / ref["trials"]
    for row in rows.values():
        row["vs_reference"] = row["trials_per_s"] / ref_rate
        # CPU seconds per trial, reference over engine: robust to time-sharing, not to cache contention
        row["cpu_vs_reference"] = ref_cpu / (row["cpu_seconds"] / row["trials"])
        # the limit is one core's: n processes are held to n times it
        row["roofline_fraction"] = row["arm_steps_per_s"] / (limit_arm_steps_per_s * row.get("processes", 1))


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
    h, card = host(), gpu(device)
    info: dict[str, Any] = {
        "cpu": cpu_model(), "cpu_count": h["cpu_count"], "torch": torch.__version__,
        "python": h["python"], "platform": h["platform"], "device": device,
        "engine_revision": ENGINE_REVISION,
    }
    if card:
        info["gpu"], info["cuda"] = card
    return info


def format_speed(report: dict[str, Any]) -> str:
    """A readable table of a ``measure_speed`` report."""
    c, m, st = report["config"], report["machine"], report["steps"]
    roof = st["roofline"]
    lines = [
        f"config: width {c['width']}, depth {c['depth']}, n_train {c['n_train']}, {c['steps']} steps, "
        f"dropout {c['dropout']}; device {m['device']}, {report['threads']} torch thread(s) per process",
        f"machine: {m['cpu']} ({m['cpu_count']} cores)" + (f", {m['gpu']}" if "gpu" in m else "")
        + f"; torch {m['torch']}, python {m['python']}",
        f"group size: {describe(report['group_size_choice'])}",
        _roofline_line(roof),
        "",
        "whole trials (set-up and evaluations included):",
        f"{'engine':<40} {'trials':>6} {'seconds':>8} {'trials/s':>9} {'arm-steps/s':>12} "
        f"{'vs reference':>13} {'CPU s vs ref':>13} {'of limit':>9}",
    ]
    for row in report["engines"].values():
        lines.append(f"{row['label']:<40} {row['trials']:>6} {row['seconds']:>8.2f} {row['trials_per_s']:>9.2f} "
                     f"{row['arm_steps_per_s']:>12.0f} {row['vs_reference']:>12.2f}x {row['cpu_vs_reference']:>12.2f}x"
                     f" {100 * row['roofline_fraction']:>8.1f}%")
    lines += ["", f"training steps only (medians of {st['rounds']} alternating rounds of {st['steps_per_round']} steps):",
              f"{'engine':<52} {'ms/arm-step':>11} {'arm-steps/s':>12} {'vs reference':>13} {'of limit':>9}"
              f" {'of limit racer':>15}"]
    for row in st["rows"].values():
        lines.append(f"{row['label']:<52} {1e3 * row['s_per_arm_step']:>11.3f} {row['arm_steps_per_s']:>12.0f} "
                     f"{row['vs_reference']:>12.2f}x {100 * row['roofline_fraction']:>8.1f}%"
                     f" {100 * row['same_rounds_fraction']:>14.1f}%")
    prof = st["profile"]
    lines += ["", f"where a step of the batched engine (group {prof['group_size']}) goes: torch.profiler, "
                  f"{prof['steps']} steps, ops' own time (unprofiled step: {1e3 * prof['wall_s_per_step']:.3f} ms)"]
    lines += [f"  {k:<10} {1e3 * v:>8.3f} ms {100 * prof['share'].get(k, 0):>4.0f}%" for k, v in prof["s_per_step"].items()]
    lines.append("")
    load = report.get("load_average") or [None, None]
    if load[0] is not None:
        lines.append(f"load average (1 min) before/after: {load[0]:.2f} / {load[1]:.2f} on {m['cpu_count']} cores"
                     + ("  -- other work shared the CPUs; ratios are less certain"
                        if max(load) > (m["cpu_count"] or 1) else ""))
    lines.append("batched results equal the single engine's bit for bit: "
                 + ("yes" if report["batched_equals_single"] else "NO"))
    return "\n".join(lines)


def _roofline_line(roof: dict[str, Any]) -> str:
    at = roof["by_group_size"][str(roof["at_group_size"])]
    rate = at["matmul_flop_per_s"]
    products = f"products {rate / 1e9:.1f} GFLOP/s" if rate else "no products"
    return (f"limit (matrix products and Adam alone, group {roof['at_group_size']}): "
            f"{1e3 * roof['limit_s_per_arm_step']:.3g} ms per arm-step = {roof['limit_arm_steps_per_s']:.0f} "
            f"arm-steps/s ({products}, fused Adam {at['adam']['bytes_per_s'] / 1e9:.1f} GB/s)")
