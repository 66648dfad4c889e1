"""How many arms to stack per group on this machine: measured once, cached, and said where it came from.

The best group size is a property of the machine (cache sizes, cores, GPU) and of the
network's shape, so a constant from one machine is wrong on others. On first use for a
key, ``group_size_choice`` times a few candidate sizes (powers of two up to
``MAX_GROUP_SIZE``, bounded by memory) for about ``TUNE_SECONDS`` in all, stepping real
groups of the engine (half the arms with dropout, as trials mix them), keeps the fastest
per arm-step, and caches it as JSON in the user's cache directory (``cache_file()``).

The key: device kind, CPU model or GPU name, torch version, the engine's revision
(``bench.engine.ENGINE_REVISION``), torch threads, depth, inputs,
whether the group has dropout arms, and width and n_train rounded to the nearest power of
two (log scale), so that a search over continuous widths does not measure every width:
the optimum moves with the group's state size by factors, not by a few percent. A new
torch, another CPU or a faster engine is another key, so their old entries are simply never read.

Environment:
    DROPOUT_BENCH_CACHE_DIR   where the cache lives (default: platformdirs' user cache dir)
    DROPOUT_BENCH_TUNE=0      never measure: the budget rule decides ("fallback",
                              ``bench.trial.default_group_size``),
                              for test suites and other places where timing must not happen

Units: seconds per arm-step (one network, one optimizer update).
"""
from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import platformdirs
import torch

from bench.config import ConfigError, TrialConfig
from bench.engine import ENGINE_REVISION
from bench.locks import FileLock
from bench.machine import cpu_model, gpu
from bench.trial import MAX_GROUP_SIZE, default_group_size

from .memory import group_buffer_bytes
from .steppers import Stepper, group_stepper, mixed_stepper

CACHE_ENV = "DROPOUT_BENCH_CACHE_DIR"
TUNE_ENV = "DROPOUT_BENCH_TUNE"
CACHE_FORMAT = 1
TUNE_SECONDS = 1.5      # measuring budget per key, calibration included
ROUNDS = 3              # interleaved rounds per candidate; the minimum is kept
PROBE_STEPS = 3         # steps of the calibration call that sizes each candidate's rounds
NEAR_BEST = 1.02        # the smallest size within 2% of the fastest wins: smaller groups lose less under load
MAX_ENTRIES = 256       # oldest entries are dropped beyond this


def tuned_group_size(cfg: TrialConfig, dropout: bool) -> int:
    """This machine's measured best group size for arms shaped like ``cfg`` (cached after the
    first measurement): a ``group_size`` rule for ``bench.run_trials``."""
    return group_size_choice(cfg, dropout=dropout)["group_size"]


def group_size_choice(cfg: TrialConfig, *, dropout: bool = True, group_size: int | str | None = "auto",
                      retune: bool = False) -> dict[str, Any]:
    """The group size for arms shaped like ``cfg`` and where it came from, as a plain dict.

    ``source`` is "given" (a number was passed), "fallback" (tuning is off or failed:
    ``reason`` says why), "cache" (``cache_file`` holds it) or "tuned now" (measured in
    this call; also cached unless ``cache_error``). Cached and tuned choices carry the
    ``key``, the candidates' ``seconds_per_arm_step`` and ``measured_at``. ``retune``
    measures again even when the cache has the key.
    """
    if group_size not in (None, "auto"):
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
            raise ConfigError(f"group_size={group_size!r}: must be an integer >= 1 or 'auto'")
        return {"group_size": group_size, "source": "given"}
    if os.environ.get(TUNE_ENV, "1").strip().lower() in ("0", "off", "no", "false"):
        return _fallback(cfg, f"{TUNE_ENV}={os.environ[TUNE_ENV]}")
    key, path = tuning_key(cfg, dropout), cache_file()
    if not retune and (entry := _read(path).get(_entry_id(key))) is not None:
        return {"group_size": entry["group_size"], "source": "cache", "cache_file": str(path), **entry}
    try:
        with _locked(path):
            entry = None if retune else _read(path).get(_entry_id(key))   # another process may have just tuned it
            if entry is not None:
                return {"group_size": entry["group_size"], "source": "cache", "cache_file": str(path), **entry}
            entry = _tune(cfg, dropout, key)
            error = _write(path, key, entry)
    except (RuntimeError, MemoryError) as exc:          # a measurement that cannot run must not stop the work
        return _fallback(cfg, f"tuning failed: {type(exc).__name__}: {exc}")
    out = {"group_size": entry["group_size"], "source": "tuned now", "cache_file": str(path), **entry}
    return {**out, "cache_error": error} if error else out


def describe(choice: dict[str, Any]) -> str:
    """One line: '2 arm(s) (cache /path/group_size.json; ms per arm-step: 1: 0.41, 2: 0.38, 4: 0.40)'."""
    where = {"cache": f"cache {choice.get('cache_file')}", "fallback": f"fallback: {choice.get('reason')}"}
    text = f"{choice['group_size']} arm(s) ({where.get(choice['source'], choice['source'])}"
    times = choice.get("seconds_per_arm_step")
    if times:
        text += "; ms per arm-step: " + ", ".join(f"{n}: {1e3 * times[n]:.3g}" for n in sorted(times, key=int))
    return text + ")"


def tuning_key(cfg: TrialConfig, dropout: bool) -> dict[str, Any]:
    """What the best group size depends on (see the module docstring); a plain, JSON-ready dict."""
    return {"device": _kind(cfg.device), "hardware": _hardware(cfg.device), "torch": str(torch.__version__),
            "engine": ENGINE_REVISION, "threads": torch.get_num_threads(), "width_bucket": _bucket(cfg.width),
            "n_train_bucket": _bucket(cfg.n_train), "depth": cfg.depth, "inputs": cfg.input_dim,
            "dropout": bool(dropout)}


def cache_file() -> Path:
    """The cache's JSON file: $DROPOUT_BENCH_CACHE_DIR/group_size.json, else the user's cache dir."""
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("dropout-bench")
    return Path(root) / "group_size.json"


# ---- measuring -----------------------------------------------------------------------
def candidate_sizes(cfg: TrialConfig) -> list[int]:
    """Powers of two up to MAX_GROUP_SIZE whose buffers take at most a quarter of the free memory."""
    kind, free = _kind(cfg.device), _free_memory(cfg.device)
    sizes, n = [], 1
    while n <= MAX_GROUP_SIZE[kind] and (n == 1 or sum(group_buffer_bytes(cfg, n).values()) <= free / 4):
        sizes.append(n)
        n *= 2
    return sizes


def measure_candidates(cfg: TrialConfig, dropout: bool, sizes: list[int],
                       seconds: float = TUNE_SECONDS) -> dict[int, float]:
    """Seconds per arm-step of each size: the minimum over ``ROUNDS`` interleaved rounds.

    Sizes are tried in ascending order; one whose single step would not fit its share of
    ``seconds`` ends the list (a short calibration call sizes each size's rounds; it is
    not used to judge speed, since one noisy call could drop the best size).
    Interleaving makes every size see the same machine.
    """
    share = seconds / (len(sizes) * (ROUNDS + 1))       # seconds per round of one size, calibration included
    runs: dict[int, tuple[Stepper, int]] = {}
    for n in sizes:
        probe, arm_steps = mixed_stepper(group_stepper, cfg, n, dropout=dropout, steps=PROBE_STEPS)
        probe()                                          # first call: kernel selection, first touches
        step_s = _seconds(probe, cfg.device) / PROBE_STEPS   # one step of the candidate
        if runs and step_s > share:
            break
        steps = max(1, min(200, round(share / step_s)))
        # a new group of the same shapes: the probe warmed the kernels; its first touches land
        # in one round, and the minimum over rounds drops that round
        runs[n] = mixed_stepper(group_stepper, cfg, n, dropout=dropout, steps=steps)
    times: dict[int, list[float]] = {n: [] for n in runs}
    for _ in range(ROUNDS):
        for n, (run, arm_steps) in runs.items():
            times[n].append(_seconds(run, cfg.device) / arm_steps)
    return {n: min(ts) for n, ts in times.items()}


def _tune(cfg: TrialConfig, dropout: bool, key: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    times = measure_candidates(cfg, dropout, candidate_sizes(cfg))
    fastest = min(times.values())
    chosen = min(n for n, s in times.items() if s <= NEAR_BEST * fastest)
    return {"group_size": chosen, "key": key,
            "seconds_per_arm_step": {str(n): s for n, s in sorted(times.items())},
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "measured_shape": {"width": cfg.width, "n_train": cfg.n_train},
            "tuning_seconds": round(time.perf_counter() - t0, 3)}


def _seconds(run: Stepper, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))
    t0 = time.perf_counter()
    run()                                                # steppers synchronise CUDA themselves
    return time.perf_counter() - t0


# ---- the cache file ------------------------------------------------------------------
def _read(path: Path) -> dict[str, dict[str, Any]]:
    """Entries by id; a missing, unreadable, corrupt or other-format file reads as empty (it is re-tuned)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["entries"] if data.get("format") == CACHE_FORMAT else {}
        return {k: v for k, v in entries.items() if isinstance(v, dict) and isinstance(v.get("group_size"), int)}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


def _write(path: Path, key: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """Add ``entry`` (write to a temporary file, then rename); an error message instead of raising."""
    entries = _read(path)
    entries[_entry_id(key)] = entry
    kept = dict(sorted(entries.items(), key=lambda kv: str(kv[1].get("measured_at")))[-MAX_ENTRIES:])
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "entries": kept}, indent=1, sort_keys=True))
        os.replace(tmp, path)
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process tunes at a time (the others wait, then read its result); no lock where one cannot be had."""
    lock = FileLock(path.with_name(path.name + ".lock"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError:          # a read-only or missing cache dir: measure anyway, unlocked
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _entry_id(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _fallback(cfg: TrialConfig, reason: str) -> dict[str, Any]:
    return {"group_size": default_group_size(cfg.device, cfg.width, cfg.depth), "source": "fallback", "reason": reason}


# ---- the machine ---------------------------------------------------------------------
def _kind(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


def _bucket(n: int) -> int:
    """The power of two nearest to n on a log scale: 300 -> 256, 20 -> 16, 1000 -> 1024."""
    return 2 ** round(math.log2(max(1, n)))


def _hardware(device: str) -> str:
    card = gpu(device)
    return card[0] if card else cpu_model()


def _free_memory(device: str) -> float:
    """Bytes free for a group: the GPU's free memory, or available physical memory (1 GiB if unknown)."""
    if device.startswith("cuda"):
        return float(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return float(2**30)
