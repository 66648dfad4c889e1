"""Every random stream of a trial, derived from its seed by one documented rule.

- ``derive_seed(seed, label)``: a 63-bit seed for a CPU ``torch.Generator``, from
  BLAKE2b over ``"<seed>/<label>"``. Streams: ``"train-noise"``, ``"test-noise"``
  (data: depend on the seed and task settings only), ``"init"`` / ``"init-dropout"``
  (initial weights: seed and architecture only).
- Dropout masks come from a counter-based hash, not a stateful generator: unit j of
  sample i in hidden layer l at step s of a trial with seed k is kept when
  ``u(k, s, l, i, j) >= p``, where u is a uniform 32-bit hash. So masks depend on the
  seed and rate only, are identical on CPU and CUDA, and do not depend on which other
  arms share a batch. The same uniforms serve every rate: a higher rate drops a
  superset of the units a lower rate drops (common random numbers across rates).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

# Multipliers of the 32-bit integer mix below; both < 2**31 so every product of a
# value < 2**32 fits in int64 (the numpy reference) and int32 arithmetic wraps the same.
_M1 = 0x7FEB352D
_M2 = 0x6C8E9CF5
_GOLDEN = 0x9E3779B1


def derive_seed(seed: int, label: str) -> int:
    digest = hashlib.blake2b(f"{seed}/{label}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def generator(seed: int, label: str) -> torch.Generator:
    """A CPU generator for one named stream; tensors drawn from it are moved to the device after."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(seed, label))


def mask_key(seed: int) -> int:
    """The 32-bit key of a trial's dropout-mask field (as a signed int32 value)."""
    k = derive_seed(seed, "dropout-masks") & 0xFFFFFFFF
    return k - 2**32 if k >= 2**31 else k


def mix32_(x: torch.Tensor) -> torch.Tensor:
    """In-place 32-bit integer hash of an int32 tensor (wrapping multiply, logical shifts)."""
    x ^= (x >> 16) & 0xFFFF
    x *= _M1
    x ^= (x >> 15) & 0x1FFFF
    x *= _M2
    x ^= (x >> 16) & 0xFFFF
    return x


def step_keys(arm_keys: torch.Tensor, steps: int, layers: int) -> torch.Tensor:
    """Per (step, layer, arm) keys, computed once per training run.

    arm_keys: (A,) int32 -> (steps, layers, A, 1, 1) int32.
    """
    counter = torch.arange(steps * layers, dtype=torch.int32, device=arm_keys.device)
    counter = mix32_(counter * _GOLDEN + 1).view(steps, layers, 1)
    keys = mix32_(counter ^ arm_keys.view(1, 1, -1))
    return keys.view(steps, layers, -1, 1, 1)


def threshold(rate: float) -> int:
    """Signed int32 threshold t with P(hash >= t) = 1 - rate (to 2**-32)."""
    return min(int(round(rate * 2**32)), 2**32 - 1) - 2**31


def keep_mask(keys: torch.Tensor, cell_index: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Boolean keep-mask for one layer and step.

    keys: (A, 1, 1) int32; cell_index: (1, n, w) int32 = i * w + j; thresholds: (A, 1, 1) int32.
    Returns (A, n, w) bool.
    """
    return mix32_(cell_index ^ keys) >= thresholds


# ---- reference implementation in plain numpy uint32, for tests ---------------------
def mix32_numpy(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * _M1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * _M2) & 0xFFFFFFFF
    x ^= x >> 16
    return x
