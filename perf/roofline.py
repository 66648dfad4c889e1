"""How fast the engine could be on this machine, and where its step's time goes.

``measure_roofline(cfg, n_arms)`` times, in isolation and with hot caches, the only work
a training step cannot do without: the engine's matrix products on their real shapes
(per hidden-to-hidden layer: the forward ``baddbmm`` (A, n, w) x (A, w, w), the weight
gradient (A, w, n) x (A, n, w) and the input gradient (A, n, w) x (A, w, w); with d > 1
inputs also the first layer's (A, n, d) x (A, d, w) and its weight gradient), and one
fused Adam step (``torch._fused_adam_``, as ``bench.engine.FusedAdam`` calls it) over a flat
buffer of the group's parameter count. Their sum per arm-step is the limit: a step that
did nothing else (no activation, mask, loss or output-layer work, no Python) would run at
``limit_arm_steps_per_s``. An engine's fraction of it is limit time / engine time.

``profile_step(run, steps)`` splits a stepper's op time by category with torch.profiler:
matrix products, Adam, dropout masks (ops called from the mask code) and the rest, beside
the unprofiled wall time per step.

Units: seconds, FLOP/s, bytes/s, arm-steps/s.
"""
from __future__ import annotations

import os
import re
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

from bench.config import TrialConfig
from bench.engine import FusedAdam, Group, step_products
from bench.results import plain_arm
from bench.task import layer_dims

ROUND_SECONDS = 0.02     # one timed round of one product
ROUNDS = 5               # the minimum over rounds is kept: the kernel's rate on a hot cache
PROFILE_ROUNDS = 3       # profiled calls of a stepper; the one with the least op time is kept
ADAM_BYTES = 7 * 4       # per float32 element: reads param, grad, m, v; writes param, m, v
MATMUL_OPS = {"aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm", "aten::matmul", "aten::linear"}
ADAM_OPS = {"aten::_fused_adam_", "aten::_foreach_add_"}
# Python frames of the mask code (bench/rng.py, DropoutMasks.keep / .multiplier), as the profiler names them
MASK_FRAMES = re.compile(r"rng\.py\(\d+\)|engine\.py\(\d+\): (keep|multiplier)$")


# the engine's products (bench.engine.step_products) as this report names them
PRODUCT_NAMES = {("forward", True): "input layer forward", ("weight grad", True): "input layer weight grad",
                 ("forward", False): "hidden forward (baddbmm)", ("weight grad", False): "hidden weight grad (bmm)",
                 ("input grad", False): "hidden input grad (bmm)"}


def matmul_shapes(cfg: TrialConfig, n_arms: int) -> list[dict[str, Any]]:
    """The engine's matrix products of one step (``bench.engine.step_products``): name, (batch, m, k, n)
    and count per step."""
    out: dict[tuple[str, tuple], dict[str, Any]] = {}
    for p in step_products(n_arms, cfg.n_train, cfg.input_dim, cfg.width, cfg.depth):
        name = PRODUCT_NAMES[p.name, p.layer == 0]
        out.setdefault((name, p.shape), {"name": name, "shape": p.shape, "count": 0})["count"] += 1
    return list(out.values())


def measure_roofline(cfg: TrialConfig, n_arms: int) -> dict[str, Any]:
    """This machine's rates on a group of ``n_arms`` arms shaped like ``cfg`` and the limit they imply.

    Returns products (seconds per call, FLOP/s), Adam (seconds, bytes/s), and
    ``limit_s_per_arm_step`` = (products + Adam) per step / n_arms, with its inverse.
    """
    device = torch.device(cfg.device)
    products, matmul_s, flops = [], 0.0, 0.0
    for p in matmul_shapes(cfg, n_arms):
        fn, f = _product(p["name"], p["shape"], device)
        s = _best_seconds(fn, device)
        products.append({**p, "shape": list(p["shape"]), "seconds": s, "flop_per_s": f / s})
        matmul_s += p["count"] * s
        flops += p["count"] * f
    adam_s, n_elems = _adam_seconds(cfg, n_arms, device)
    limit = (matmul_s + adam_s) / n_arms
    return {"group_size": n_arms, "products": products,
            "matmul_flop_per_arm_step": flops / n_arms,
            "matmul_flop_per_s": flops / matmul_s if matmul_s else None,
            "adam": {"elements": n_elems, "seconds": adam_s, "bytes_per_s": n_elems * ADAM_BYTES / adam_s},
            "limit_s_per_arm_step": limit, "limit_arm_steps_per_s": 1.0 / limit}


def limit_stepper(cfg: TrialConfig, n_arms: int, steps: int) -> tuple[Callable[[], Any], int]:
    """The limit's work as a racer: ``steps`` times, the products of an engine step (the calls
    the step makes, ``bench.engine.Group.products``) and its fused Adam step, on a real group's
    buffers, nothing else.
    Returns (run, arm-steps per call).

    ``measure_roofline`` times these kernels apart, each repeated on a hot cache, and keeps
    minimums. Raced in the same alternating rounds as the engines (``perf.speed.race``,
    medians), they run under the engines' conditions: caches cooled by the other racers
    between rounds, the step's real buffers, the same clock drift. An engine's fraction of
    this racer is then the share of its step that is not products and Adam. The products
    read and write the group's own parameters, gradients and activations (one real step
    fills them first), as the engine's do: operands of their own made a larger working set
    and a racer 12% slower (0.214 against 0.191 ms per arm-step, group 4, docs/measurements.md).
    """
    grp = Group(_limit_arms(cfg, n_arms, steps))
    with torch.no_grad():
        grp.step(0)
    calls = [call for _, call in grp.products()] + [grp.opt.step]

    def run() -> None:
        with torch.no_grad():
            for _ in range(steps):
                for call in calls:
                    call()
        if grp.device.type == "cuda":
            torch.cuda.synchronize(grp.device)
    return run, n_arms * steps


def _limit_arms(cfg: TrialConfig, n_arms: int, steps: int) -> list:
    """Plain arms on seeds cfg.seed + i (masks are not the limit's work)."""
    c = cfg.replace(steps=max(steps, 1))
    return [plain_arm(c.replace(seed=c.seed + i)) for i in range(n_arms)]


def _product(name: str, shape: tuple[int, int, int, int], device: torch.device) -> tuple[Callable[[], Any], float]:
    """A zero-argument call of one product (A, m, k) x (A, k, n) laid out as the engine lays it out, and its FLOPs."""
    A, m, k, n = shape
    g = torch.Generator().manual_seed(0)

    def t(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g).to(device)
    out = torch.empty(A, m, n, device=device)
    if "forward" in name:                       # baddbmm(b, h, W)
        b, a, w = t(A, 1, n), t(A, m, k), t(A, k, n)
        return (lambda: torch.baddbmm(b, a, w, out=out)), 2.0 * A * m * k * n
    if "weight grad" in name:                   # bmm(h^T, g): h is (A, k, m) in memory, read transposed
        a, w = t(A, k, m).transpose(1, 2), t(A, k, n)
        return (lambda: torch.bmm(a, w, out=out)), 2.0 * A * m * k * n
    a, w = t(A, m, k), t(A, n, k).transpose(1, 2)   # bmm(g, W^T): W is (A, n, k) in memory
    return (lambda: torch.bmm(a, w, out=out)), 2.0 * A * m * k * n


def _adam_seconds(cfg: TrialConfig, n_arms: int, device: torch.device) -> tuple[float, int]:
    """One fused Adam step over the group's flat buffer (padded to 64 floats, as the engine pads it)."""
    dims = layer_dims(cfg)
    n_params = sum(i * o + o for i, o in zip(dims[:-1], dims[1:]))
    total = -(-n_arms * n_params // 64) * 64
    flat = torch.randn(total, generator=torch.Generator().manual_seed(1)).to(device)
    grad = torch.randn(total, generator=torch.Generator().manual_seed(2)).to(device).mul_(1e-3)
    return _best_seconds(FusedAdam(flat, grad, cfg.lr).step, device), total


def _best_seconds(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds per call: calls repeated to fill ROUND_SECONDS, the minimum over ROUNDS rounds."""
    fn()
    once = _timed(fn, 1, device)
    reps = max(1, min(10_000, round(ROUND_SECONDS / max(once, 1e-7))))
    return min(_timed(fn, reps, device) for _ in range(ROUNDS)) / reps


def _timed(fn: Callable[[], Any], reps: int, device: torch.device) -> float:
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


# ---- where a step's time goes ----------------------------------------------------------
def profile_step(run: Callable[[], Any], steps: int, device: str = "cpu") -> dict[str, Any]:
    """Seconds per step of ``run`` (a stepper of ``steps`` steps) by op category, from torch.profiler.

    Categories of the ops' own time: "matmuls", "adam", "masks" (any op called from the
    mask code) and "other ops"; ``share`` is each one's fraction of their sum. Of
    PROFILE_ROUNDS profiled calls the one with the least op time is kept (the least
    disturbed by other work). ``wall_s_per_step`` is the unprofiled step (the best of
    ROUNDS calls): the profiler adds about a microsecond to every op, so on small nets the
    ops' sum can exceed it; trust the shares over the sums. On CUDA op times are device times.
    """
    from torch.profiler import ProfilerActivity, profile

    dev = torch.device(device)
    run()
    wall = min(_timed(run, 1, dev) for _ in range(ROUNDS)) / steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    profiles = []
    for _ in range(PROFILE_ROUNDS):
        with _quiet_stderr(), profile(activities=activities, with_stack=True) as prof:
            run()
        profiles.append(_op_seconds(prof.events(), dev.type == "cuda", steps))
    sums = min(profiles, key=lambda p: sum(p.values()))       # the round least disturbed by other work
    total = sum(sums.values())
    return {"steps": steps, "wall_s_per_step": wall, "ops_s_per_step": total, "s_per_step": sums,
            "share": {k: v / total for k, v in sums.items()} if total else {}}


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null: torch's profiler backend (kineto) prints a line to it at every
    start and stop, which no setting turns off; Python's own errors still surface as exceptions."""
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):   # no real descriptor 2 (an embedded interpreter)
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _op_seconds(events: Any, cuda: bool, steps: int) -> dict[str, float]:
    sums = {"matmuls": 0.0, "adam": 0.0, "masks": 0.0, "other ops": 0.0}
    for ev in events:
        if ev.name.startswith("aten::"):
            us = ev.self_device_time_total if cuda else ev.self_cpu_time_total
            sums[_category(ev)] += us * 1e-6 / steps
    return sums


def _category(ev: Any) -> str:
    """The category of an op, from itself or the nearest enclosing op or Python frame that has one."""
    node = ev
    while node is not None:
        if node.name in MATMUL_OPS:
            return "matmuls"
        if node.name in ADAM_OPS:
            return "adam"
        if MASK_FRAMES.search(node.name):
            return "masks"
        node = node.cpu_parent
    return "other ops"
