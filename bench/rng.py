"""Every random stream of a trial, derived from its seed by one documented rule.

- ``derive_seed(seed, label)``: a 63-bit seed for a CPU ``torch.Generator``, from
  BLAKE2b over ``"<seed>/<label>"``. Streams: ``"train-noise"``, ``"test-noise"``
  (data: depend on the seed and task settings only), ``"init"`` / ``"init-dropout"``
  (initial weights: seed and architecture only).
- Dropout masks come from a counter-based hash, not a stateful generator. For hidden
  layer l at step s of a trial with seed k, cell c = i * width + j (sample i, unit j)
  takes 16 bits of the 32-bit hash ``mix32(key(k, s, l) ^ (c // 2))``: the low half
  for even c, the high half for odd c, read as a signed int16 u. The unit is kept when
  ``u >= threshold(p)``, i.e. with probability 1 - p to within 2**-16. One hash serves
  two cells, which halves the integer work of a step. So masks depend on the seed and
  rate only, are identical on CPU and CUDA (both little-endian: the int16 view of an
  int32 puts the low half first), and do not depend on which other arms share a
  batch (``keep_mask``; the engine computes the same decisions as multipliers,
  ``keep_multipliers``). The same uniforms serve every rate: a higher rate drops a superset of the
  units a lower rate drops (common random numbers across rates).
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


def mix32_(x: torch.Tensor, tmp: torch.Tensor | None = None) -> torch.Tensor:
    """In-place 32-bit integer hash of an int32 tensor (wrapping multiply, logical shifts).

    ``tmp``: an int32 scratch tensor shaped like x; given, the hash allocates nothing.
    """
    if tmp is None:
        tmp = torch.empty_like(x)
    for shift, low_bits, mult in _mix_constants(x.device):
        # x ^= x >>> shift: arithmetic shift, then the sign bits masked off
        torch.bitwise_right_shift(x, shift, out=tmp).bitwise_and_(low_bits)
        x.bitwise_xor_(tmp)
        if mult is not None:
            x.mul_(mult)
    return x


_CONSTANTS: dict = {}


def _mix_constants(device: torch.device) -> list:
    """mix32_'s (shift, low-bit mask, multiplier) as int32 scalars on ``device``, made once: a Python
    int operand is turned into a tensor at every call, which costs as much as the operation itself."""
    if device not in _CONSTANTS:
        def t(v: int) -> torch.Tensor:
            return torch.tensor(v - 2**32 if v >= 2**31 else v, dtype=torch.int32, device=device)
        _CONSTANTS[device] = [(t(shift), t((1 << (32 - shift)) - 1), None if mult is None else t(mult))
                              for shift, mult in ((16, _M1), (15, _M2), (16, None))]
    return _CONSTANTS[device]


def step_keys(arm_keys: torch.Tensor, steps: int, layers: int) -> torch.Tensor:
    """Per (step, layer, arm) keys, computed once per training run.

    arm_keys: (A,) int32 -> (steps, layers, A, 1, 1) int32.
    """
    counter = torch.arange(steps * layers, dtype=torch.int32, device=arm_keys.device)
    counter = mix32_(counter * _GOLDEN + 1).view(steps, layers, 1)
    keys = mix32_(counter ^ arm_keys.view(1, 1, -1))
    return keys.view(steps, layers, -1, 1, 1)


def threshold(rate: float) -> int:
    """Signed int16 threshold t with P(u >= t) = 1 - rate (to 2**-16) for a uniform int16 u."""
    return min(int(round(rate * 2**16)), 2**16 - 1) - 2**15


def pair_index(n: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, ceil(n * w / 2)) int32: the hash counter of cells 2c and 2c + 1."""
    return torch.arange((n * w + 1) // 2, dtype=torch.int32, device=device).view(1, -1)


def keep_mask(keys: torch.Tensor, thresholds: torch.Tensor, n: int, w: int,
              pairs: torch.Tensor | None = None, *, scratch: tuple[torch.Tensor, torch.Tensor] | None = None,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean keep-masks for B (arm, step, layer) keys.

    keys: (B,) int32; thresholds: (B,) int16 (``threshold(rate)``); pairs: ``pair_index(n, w)``
    (built here if None). Returns (B, n, w) bool. Given ``scratch`` (two (B, P) int32
    tensors) and ``out`` ((B, n * w) bool), it allocates nothing.
    """
    B = keys.shape[0]
    u = _uniforms(keys, n, w, pairs, scratch)
    return torch.ge(u, thresholds.view(B, 1), out=out).view(B, n, w)


def _uniforms(keys: torch.Tensor, n: int, w: int, pairs: torch.Tensor | None,
              scratch: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """(B, n*w) int16: each cell's 16-bit uniform, cell 2c the low half of hash c and 2c+1 the high."""
    if pairs is None:
        pairs = pair_index(n, w, keys.device)
    h, tmp = scratch if scratch is not None else (None, None)
    h = torch.bitwise_xor(pairs, keys.view(-1, 1), out=h)         # (B, P) int32, P = ceil(n*w/2)
    mix32_(h, tmp)
    return h.view(torch.int16)[:, :n * w]


def keep_multipliers(keys: torch.Tensor, thresholds: torch.Tensor, scales: torch.Tensor, n: int, w: int,
                     pairs: torch.Tensor | None = None, *, scratch: tuple[torch.Tensor, torch.Tensor] | None = None,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """Dropout multipliers for B keys: ``scales[b]`` where ``keep_mask`` keeps the cell, else 0.

    keys, thresholds, pairs, scratch: as ``keep_mask``; scales: (B,) float. Returns (B, n, w)
    float; given ``out`` ((B, n * w) float) it allocates only B-sized temporaries. The
    comparison is done in float arithmetic, exactly: for the integers u and t (|u|, |t| <=
    2**15, exact in float32), clamp(u - (t - 1), 0, 1) is 1 where u >= t and 0 elsewhere. On
    CPU that is about five times faster than a comparison to bool and a bool-to-float product,
    neither of which torch vectorises.
    """
    B = keys.shape[0]
    u = _uniforms(keys, n, w, pairs, scratch)
    f = out.copy_(u) if out is not None else u.to(torch.float32)
    f.sub_((thresholds.to(torch.float32) - 1).view(B, 1)).clamp_(0, 1).mul_(scales.view(B, 1))
    return f.view(B, n, w)


# ---- reference implementation in plain numpy uint32, for tests ---------------------
def mix32_numpy(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * _M1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * _M2) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def keep_mask_numpy(key: int, rate: float, n: int, w: int) -> np.ndarray:
    """(n, w) bool keep-mask of one (arm, step, layer) key, spelled out in uint32 arithmetic."""
    cells = np.arange(n * w, dtype=np.uint64)
    h = mix32_numpy((cells // 2) ^ np.uint64(key & 0xFFFFFFFF))
    half = np.where(cells % 2 == 0, h & 0xFFFF, h >> 16).astype(np.int64)
    u = np.where(half >= 2**15, half - 2**16, half)              # as a signed int16
    return (u >= threshold(rate)).reshape(n, w)
