"""Peak memory of one stacked group against a count of the buffers it must hold.

``group_buffer_bytes`` counts what training a group of A arms needs, from the shapes
in bench/engine.py (float32 = 4 bytes): parameters, gradients and Adam's two moments
(four flat buffers of A * n_params, padded to 64 floats), activations (the
workspace: L + 3 buffers of (A, n, w), the output's gradient, and a chunk of
residuals and their squares), and small items (data,
losses, mask keys, one chunk of mask multipliers). ``measure_group_memory`` trains such a
group and reports its peak: on CUDA ``torch.cuda.max_memory_allocated`` (exact, the
caching allocator's live tensors); on CPU the peak resident set size of a fresh
process (Linux: VmHWM after resetting it through /proc/self/clear_refs), minus the
resident size just before the group was built. RSS counts pages, not tensors: it
includes allocator slack and freed-but-kept memory, so on CPU it is an upper bound.
"""
from __future__ import annotations

import math
import multiprocessing
from typing import Any

import torch

from bench.config import TrialConfig
from bench.engine import DropoutMasks, Group, aligned_arm_floats, residual_chunk
from bench.results import dropout_arm, plain_arm
from bench.task import layer_dims

FLOAT = 4  # bytes of float32 / int32


def group_buffer_bytes(cfg: TrialConfig, n_arms: int, n_dropout: int | None = None) -> dict[str, int]:
    """Bytes per category for a group of ``n_arms`` arms, ``n_dropout`` of them with dropout (default half)."""
    A, n, w, L = n_arms, cfg.n_train, cfg.width, cfg.depth
    k = A // 2 if n_dropout is None else n_dropout
    dims = layer_dims(cfg)
    n_params = sum(i * o + o for i, o in zip(dims[:-1], dims[1:]))
    flat = -(-A * n_params // 64) * 64 * FLOAT
    pairs = (n * w + 1) // 2
    per_step = L * k * pairs * FLOAT
    chunk = max(1, min(cfg.steps, DropoutMasks.CHUNK_BYTES // per_step)) if k else 0
    return {
        "parameters": flat,
        "gradients": flat,
        "optimizer_state": 2 * flat,                                 # Adam's m and v
        "activations": ((L + 3) * A * n * w + A * n                    # the workspace, a chunk of residuals
                        + 2 * residual_chunk(A, n, cfg.steps) * A * n      # and their squares, and with several
                        + (A * aligned_arm_floats(dims[0], w) if dims[0] > 1 else 0)) * FLOAT,   # inputs an aligned gradient
        "masks": (cfg.steps * L * k + pairs) * FLOAT                 # keys, pair counter
                 + chunk * L * k * (2 * pairs * FLOAT + 2 + FLOAT)   # one chunk: hash, scratch, thresholds, scales
                 + chunk * L * k * n * w * FLOAT,                    # and its multipliers
        "other": (3 * A * n + cfg.steps * A) * FLOAT,                 # X, Y, Y_test, losses
    }


def _group_arms(cfg: TrialConfig, n_arms: int) -> list:
    return [(dropout_arm if i % 2 else plain_arm)(cfg.replace(seed=cfg.seed + i)) for i in range(n_arms)]


def _train(cfg: TrialConfig, n_arms: int) -> None:
    grp = Group(_group_arms(cfg, n_arms))
    with torch.no_grad():
        for s in range(cfg.steps):
            grp.step(s)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _cpu_peak_child(cfg_dict: dict, n_arms: int) -> int:
    """In a fresh process: peak RSS growth (bytes) while building and training one group."""
    torch.set_num_threads(1)
    cfg = TrialConfig.from_dict(cfg_dict)
    _train(cfg.replace(steps=2, width=8), 2)        # load kernels and libraries before the baseline
    before = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets the peak RSS (VmHWM) to the current RSS
        fh.write("5")
    _train(cfg, n_arms)
    return (_rss_kib("VmHWM") - before) * 1024


def measure_group_memory(cfg: TrialConfig, n_arms: int, steps: int = 20) -> dict[str, Any]:
    """Measured peak bytes of training one group of ``n_arms`` (half dropout) for ``steps`` steps,
    with the buffer count and their ratio. ``cfg.device`` picks CUDA or CPU."""
    cfg = cfg.replace(steps=steps)
    counted = group_buffer_bytes(cfg, n_arms)
    core = sum(counted[c] for c in ("parameters", "gradients", "optimizer_state", "activations"))
    if cfg.device.startswith("cuda"):
        dev = torch.device(cfg.device)
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        _train(cfg, n_arms)
        torch.cuda.synchronize(dev)
        peak, method = torch.cuda.max_memory_allocated(dev) - base, "torch.cuda.max_memory_allocated"
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            peak = pool.apply(_cpu_peak_child, (cfg.to_dict(), n_arms))
        method = "peak RSS growth of a fresh process (VmHWM after clear_refs)"
    return {"n_arms": n_arms, "width": cfg.width, "device": cfg.device, "steps": steps,
            "counted": counted, "counted_total": sum(counted.values()),
            "params_grads_optimizer_activations": core, "measured_peak": peak,
            "peak_over_core": peak / core if core else math.nan, "method": method}
