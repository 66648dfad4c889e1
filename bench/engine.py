"""The stacked training core: a group of compatible arms trained as one computation.

Shapes: A arms, n training points, w width, L = depth hidden layers.
Every arm's parameters live in one flat buffer of per-layer blocks, W_l (A, in, out)
and b_l (A, 1, out), so the forward and hand-written backward pass are a few
``baddbmm``/``bmm`` calls over the leading arm axis and one fused Adam step updates
every arm at once (Adam is elementwise: one optimizer over stacked parameters is
exactly A independent Adams). No per-step Python work scales with A.

What makes a step cheap (measured in docs/measurements.md): activations live in a
preallocated workspace, the fused Adam kernel is called directly (``FusedAdam``), dropout
masks are hashed a chunk of steps at a time at 16 bits per cell (``DropoutMasks``),
and losses stay on the device until the loop ends (no host sync per step), computed
from the residuals of a chunk of steps at once (``_Workspace.losses``).

A group of one arm is the single engine; results do not depend on the grouping
because data, initial weights and dropout masks of an arm are functions of its own
config only (bench/rng.py), and every operation is either elementwise or reduces
within one arm.

Comparator arms (bench/results.py) share a group with the plain and dropout arms of
the same shapes: a weight_decay arm adds lambda * theta to its gradient before Adam (the
coupled L2 of ``torch.optim.Adam(weight_decay=lambda)``); an early_stop arm weights its
loss to its fit rows only (``bench.arms.EARLY_STOP_RULE``). Inputs may have any dimension d: the first
layer is an outer product where d = 1 (the fast path of the 1-input tasks) and a
batched matmul otherwise.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Callable, NamedTuple, Sequence

import torch

from . import rng
from .arms import ARMS
from .results import Arm, ArmResult
from .task import fit_grid, init_params, layer_dims, make_data, validation_rows

WARMUP_STEPS = 5  # steps excluded from the step-time statistics
RESIDUAL_CHUNK_BYTES = 64 * 1024   # residuals kept per group before their losses are computed (_Workspace)
# Raised when a change alters what a step costs (its calls, buffers or chunking): group sizes
# tuned for an earlier engine (perf/tune.py keys on this) are then measured again.
ENGINE_REVISION = 3


def group_key(arm: Arm) -> tuple:
    """Arms with equal keys can share one stacked computation."""
    c = arm.cfg
    return (c.task, c.n_train, c.input_dim, c.test_size, c.width, c.depth, c.steps, c.lr, c.eval_every,
            c.device)


def early_stop_point(val_curve: Sequence[float], patience: int) -> tuple[int, int]:
    """(best, stop): indices into the validation curve of ``bench.arms.EARLY_STOP_RULE``, in plain Python.

    best: the check whose weights are kept (-1 if no check had a finite MSE); stop: the check
    at which training stopped (the last one if it never did).
    """
    best_val, best = math.inf, -1
    for j, v in enumerate(val_curve):
        if v < best_val:
            best_val, best = v, j
        if j - best >= patience:
            return best, j
    return best, len(val_curve) - 1


def curve_steps(steps: int, eval_every: int) -> list[int]:
    """Completed-step counts at which eval-mode losses are recorded: 0, k, 2k, ..., steps."""
    points = list(range(0, steps + 1, eval_every))
    return points if points[-1] == steps else points + [steps]


class Product(NamedTuple):
    """One matrix product of a training step: (A, m, k) @ (A, k, n) -> (A, m, n)."""
    name: str                          # "forward", "weight grad" or "input grad"
    layer: int                         # the linear map it computes or differentiates (0: the input layer)
    shape: tuple[int, int, int, int]   # (A, m, k, n)


def step_products(A: int, n: int, d: int, w: int, L: int) -> list[Product]:
    """Every matrix product of one step of A arms (n rows, d inputs, width w, L hidden layers): the
    input layer's (with d > 1), then the hidden layers' by kind.

    The step makes its products from this list (``Group.products``, the calls ``train_pass``
    makes), and the speed lab times the same list, so the two cannot drift. A linear map with
    one input is an outer product, done elementwise (``_affine``); the output layer's one
    column is a multiply-and-sum (``_output_layer``): neither is a product.
    """
    hidden = range(1, L)
    out = [Product("forward", 0, (A, n, d, w)), Product("weight grad", 0, (A, d, n, w))] if d > 1 else []
    out += [Product("forward", layer, (A, n, w, w)) for layer in hidden if w > 1]
    out += [Product("weight grad", layer, (A, w, n, w)) for layer in hidden]
    out += [Product("input grad", layer, (A, n, w, w)) for layer in hidden]
    return out


class _Stack:
    """Flat parameter/gradient buffers and their per-layer views for A arms."""

    def __init__(self, arms: Sequence[Arm], device: torch.device) -> None:
        dims = layer_dims(arms[0].cfg)
        A = len(arms)
        shapes = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            shapes += [(A, fan_in, fan_out), (A, 1, fan_out)]
        sizes = [math.prod(s) for s in shapes]
        # Pad to a multiple of 64 floats: the fused Adam kernel finishes a buffer's odd
        # tail with scalar code whose rounding differs from its vector body, which would
        # make the last arms' results depend on the group size.
        total = -(-sum(sizes) // 64) * 64
        # initial weights are drawn on the CPU, one arm at a time straight into its slices
        # (no stacked temporaries); on another device they go over in one copy, not
        # 2 x layers x A small ones
        host = torch.zeros(total)
        views = _views(host, shapes, sizes)
        for i, arm in enumerate(arms):
            for layer, (w, b) in enumerate(init_params(arm.cfg, arm.init_stream)):
                views[2 * layer][i].copy_(w)
                views[2 * layer + 1][i, 0].copy_(b)
        self.flat = host if device.type == "cpu" else host.to(device)
        self.grad = torch.zeros_like(self.flat)
        self.params = _views(self.flat, shapes, sizes)   # [W0, b0, W1, b1, ...]
        self.grads = _views(self.grad, shapes, sizes)


def _views(flat: torch.Tensor, shapes: list, sizes: list) -> list[torch.Tensor]:
    out, offset = [], 0
    for shape, size in zip(shapes, sizes):
        out.append(flat[offset:offset + size].view(shape))
        offset += size
    return out


def _forward_eval(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Eval mode (no dropout). x: (A, m, 1) -> (A, m, 1)."""
    h = x
    hidden = len(params) // 2 - 1
    for layer in range(hidden):
        h = torch.relu(_affine(h, params[2 * layer], params[2 * layer + 1]))
    return _output_layer(h, params[2 * hidden], params[2 * hidden + 1])


def _affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """h @ w + b for one hidden layer: (A, m, in) @ (A, in, out) + (A, 1, out).

    With one input (the first layer of toy1d) the product is an outer product:
    ``addcmul`` does it elementwise, skipping a BLAS call with a contraction of 1.
    """
    if w.shape[1] == 1:
        return torch.addcmul(b, h, w, out=out) if out is not None else torch.addcmul(b, h, w)
    return torch.baddbmm(b, h, w, out=out) if out is not None else torch.baddbmm(b, h, w)


def _output_layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                  tmp: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """(A, m, width) @ (A, width, 1) + (A, 1, 1) as multiply-and-sum.

    bmm with one output column picks a different kernel depending on A, so results
    would depend on the batch; a row reduction does not. ``tmp`` (A, m, width) and
    ``out`` (A, m, 1) are optional preallocated buffers.
    """
    prod = torch.mul(h, w.transpose(1, 2), out=tmp) if tmp is not None else h * w.transpose(1, 2)
    res = torch.sum(prod, dim=2, keepdim=True, out=out) if out is not None else prod.sum(dim=2, keepdim=True)
    return res.add_(b)


class FusedAdam:
    """torch.optim.Adam(fused=True) over one flat buffer, minus its per-step Python work.

    Calls the same fused kernel with the same arguments as ``torch.optim.Adam``
    (bit-identical updates, tested), but keeps the state tensors itself: the stock
    ``step()`` spends about 0.3 ms per call grouping tensors by device and dtype,
    which at a group of 8 arms is ~5% of a step. Falls back to the stock optimizer
    where the private kernel is missing.
    """

    def __init__(self, flat: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        self.lr = lr
        self.kernel = getattr(torch, "_fused_adam_", None)
        if self.kernel is None:  # pragma: no cover - builds without the fused kernel
            flat.grad = grad
            self.fallback = torch.optim.Adam([flat], lr=lr, foreach=True)
            return
        self.fallback = None
        self.params, self.grads = [flat], [grad]
        self.exp_avg = [torch.zeros_like(flat)]
        self.exp_avg_sq = [torch.zeros_like(flat)]
        # the step counter is a float32 tensor on the parameters' device, as torch.optim keeps it
        self.steps = [torch.zeros((), dtype=torch.float32, device=flat.device)]
        self._one = torch.ones((), dtype=torch.float32, device=flat.device)   # a Python 1 would be cast every step

    def step(self) -> None:
        if self.fallback is not None:  # pragma: no cover
            self.fallback.step()
            return
        self.steps[0].add_(self._one)   # what torch.optim.Adam does with _foreach_add_, without its list work
        self.kernel(self.params, self.grads, self.exp_avg, self.exp_avg_sq, [], self.steps,
                    amsgrad=False, lr=self.lr, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                    maximize=False, grad_scale=None, found_inf=None)


class DropoutMasks:
    """Dropout multipliers of the first k arms of a group: 0 or 1/(1-p) per unit.

    The keep decision for (arm, step, layer, sample, unit) is a pure function of the
    arm's seed and rate (bench/rng.py), so it does not depend on the rest of the batch.
    Multipliers are hashed for a chunk of steps at once (all layers and arms in one
    call, ``rng.keep_multipliers``): the integer work is the same, but the dozen small
    kernels of the hash are launched once per chunk instead of once per layer and step,
    which is most of the mask cost at small groups.
    """

    # int32 hash values per chunk. Each chunk costs a dozen calls whatever its size; at the seed
    # config 1 MiB (21 steps of 2 dropout arms) ran steps 2-4% faster than 256 KiB (5 steps),
    # same run, AMD EPYC with 1 MiB of L2 per core; 2 MiB was no faster.
    CHUNK_BYTES = 1024 * 1024

    def __init__(self, arms: Sequence[Arm], n: int, w: int, layers: int, steps: int,
                 device: torch.device) -> None:
        self.k, self.n, self.w, self.layers, self.steps = len(arms), n, w, layers, steps
        keys = torch.tensor([rng.mask_key(a.cfg.stream_seed("masks")) for a in arms], dtype=torch.int32, device=device)
        self.keys = rng.step_keys(keys, steps, layers).view(steps, layers * self.k)   # (steps, L*k)
        thresholds = torch.tensor([rng.threshold(a.rate) for a in arms], dtype=torch.int16, device=device)
        self.thresholds = thresholds.repeat(layers)                                   # (L*k,)
        self.scales = torch.tensor([1.0 / (1.0 - a.rate) for a in arms], device=device).view(-1, 1, 1)
        self.pairs = rng.pair_index(n, w, device)                                     # (1, P)
        per_step = layers * self.k * self.pairs.shape[1] * 4
        self.chunk = max(1, min(steps, self.CHUNK_BYTES // per_step))
        # buffers reused every chunk and step: the loop allocates nothing (a worker whose
        # allocator returns freed memory at once, as Dask's nanny sets it up, would
        # otherwise map and fault fresh pages every step)
        B = self.chunk * layers * self.k
        self._hash = (torch.empty(B, self.pairs.shape[1], dtype=torch.int32, device=device),
                      torch.empty(B, self.pairs.shape[1], dtype=torch.int32, device=device))
        self._thr_chunk = self.thresholds.repeat(self.chunk)                           # (B,)
        self._scale_chunk = self.scales.view(-1).repeat(layers * self.chunk)           # (B,)
        self._mult_buf = torch.empty(B, n * w, device=device)
        # the chunk's multipliers, a view per (step, layer): a step indexes a Python list
        # instead of calling torch
        self._start, self._mults = -1, ()

    def _fill(self, step: int) -> int:
        """Hash the chunk holding ``step`` (if it is not the current one); returns the chunk's first step."""
        start = step - step % self.chunk
        if start != self._start:
            stop = min(start + self.chunk, self.steps)
            B = (stop - start) * self.layers * self.k
            keys = self.keys[start:stop].reshape(-1)                                  # (c*L*k,)
            mult = rng.keep_multipliers(keys, self._thr_chunk[:B], self._scale_chunk[:B], self.n, self.w,
                                        self.pairs, scratch=(self._hash[0][:B], self._hash[1][:B]),
                                        out=self._mult_buf[:B])                       # (c*L*k, n, w)
            self._mults = mult.view(-1, self.k, self.n, self.w).unbind(0)             # (c*L) x (k, n, w)
            self._start = start
        return start

    def reset(self) -> None:
        """Forget the hashed chunk: the next step hashes its masks again (timing loops that repeat steps)."""
        self._start = -1

    def keep(self, step: int, layer: int) -> torch.Tensor:
        """(k, n, w) bool: True where the unit is kept."""
        return self.multiplier(step, layer) > 0

    def multiplier(self, step: int, layer: int) -> torch.Tensor:
        """(k, n, w) float: 1/(1-p) where the unit is kept, 0 where it is dropped (a view, valid until the next chunk)."""
        start = self._fill(step)
        return self._mults[(step - start) * self.layers + layer]


class _Workspace:
    """Preallocated activations and gradients of one group, so the step loop allocates nothing.

    A arms, n samples, w width, L hidden layers. ``bind`` also keeps the transposed and
    squeezed views a step uses of the parameters, gradients and inputs it last saw: a
    view costs a torch call, and the buffers they view are updated in place.
    """

    def __init__(self, A: int, n: int, w: int, L: int, device: torch.device, steps: int = 1) -> None:
        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=device)
        self.h = [buf(A, n, w) for _ in range(L)]       # z_l, then in place h_l = relu(z_l) x dropout multiplier
        self.g = [buf(A, n, w), buf(A, n, w)]           # dLoss/dh, ping-pong between layers
        self.tmp = buf(A, n, w)                         # products reduced over one axis
        self.gout = buf(A, n, 1)                        # dLoss/d(network output)
        # residuals (output - y) of the last ``chunk`` steps, whose losses are computed together
        # (``losses``): three small calls per chunk instead of per step
        self.chunk = residual_chunk(A, n, steps)
        self.res, self.res_sq = buf(self.chunk, A, n, 1), buf(self.chunk, A, n, 1)
        self.res_rows = self.res.unbind(0)              # a view per slot, made once
        # the loss's constants as float32 scalars: a Python number is cast to a tensor at every call
        self.rows = torch.tensor(float(n), device=device)
        self.two_over_rows = torch.tensor(2.0 / n, device=device)
        # early_stop arms (positions fit_from, fit_from + 1, ...): per-row loss weights, n / n_fit
        # on the rows they fit and 0 on their validation rows; None when the group has none
        self.fit_from: int = 0
        self.fit_weights: torch.Tensor | None = None
        self._bound: tuple = ()
        self.v: dict[str, list[torch.Tensor]] = {}
        self.calls: dict[str, list] = {}

    def losses(self, slots: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Per-arm train-mode loss (slots, A) of the residuals in the first ``slots`` slots."""
        r, rr = self.res[:slots], self.res_sq[:slots]
        loss = _mean_rows(torch.mul(r, r, out=rr), self.rows, out)
        if self.fit_weights is not None:   # early_stop arms: the loss of their fit rows only
            s, weights = self.fit_from, self.fit_weights
            loss[:, s:s + len(weights)] = (rr[:, s:s + len(weights)] * weights).mean(dim=(2, 3))
        return loss

    def bind(self, P: list[torch.Tensor], G: list[torch.Tensor], X: torch.Tensor, k: int) -> dict[str, list[torch.Tensor]]:
        """Views of P, G, X and the buffers for a step with dropout on the first k arms (made once per binding).

        The lists and X are recognised by identity: a caller must update their tensors in
        place (as the engine does), not swap tensors inside the same lists.
        """
        if len(self._bound) == 4 and self._bound[0] is P and self._bound[1] is G and self._bound[2] is X \
                and self._bound[3] == k:
            return self.v
        L = len(P) // 2 - 1
        self.v = {"wT": [P[2 * i].transpose(1, 2) for i in range(L + 1)],     # W_l^T
                  "hT": [h.transpose(1, 2) for h in self.h],                   # h_l^T
                  "hk": [h[:k] for h in self.h],                               # the dropout arms' rows
                  "gk": [g[:k] for g in self.g],
                  "G0": [G[0].squeeze(1), G[2 * L].squeeze(2)],                # first and last weights' grads, (A, w)
                  "XT": [X.transpose(1, 2)]}
        if X.shape[2] > 1:
            self.v["G0pad"] = [_aligned_arms(G[0].shape, X.device)]
        self.calls = self._calls(P, G, X)
        self._bound = (P, G, X, k)
        return self.v

    def _calls(self, P: list[torch.Tensor], G: list[torch.Tensor], X: torch.Tensor) -> dict[str, list]:
        """Per layer, a step's forward, weight-gradient and input-gradient calls on the bound buffers
        (None where the step reduces rows instead); ``step_products`` lists the products among them.

        The backward's gradient ping-pongs between work.g[0] and work.g[1], starting at 0 on the
        last hidden layer, so layer l reads g[(L - 1 - l) % 2] and writes the other.
        """
        L, v = len(P) // 2 - 1, self.v
        calls: dict[str, list] = {"forward": [], "weight grad": [], "input grad": []}
        for layer in range(L):
            h_in, w, b = X if layer == 0 else self.h[layer - 1], P[2 * layer], P[2 * layer + 1]
            affine = torch.addcmul if w.shape[1] == 1 else torch.baddbmm   # as _affine chooses
            calls["forward"].append(functools.partial(affine, b, h_in, w, out=self.h[layer]))
            cur = (L - 1 - layer) % 2
            g = self.g[cur]
            if layer > 0:
                calls["weight grad"].append(functools.partial(torch.bmm, v["hT"][layer - 1], g, out=G[2 * layer]))
                calls["input grad"].append(functools.partial(torch.bmm, g, v["wT"][layer], out=self.g[1 - cur]))
            else:
                calls["weight grad"].append(functools.partial(torch.bmm, v["XT"][0], g, out=v["G0pad"][0])
                                            if X.shape[2] > 1 else None)
                calls["input grad"].append(None)
        return calls


def _aligned_arms(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """An (A, d, w) buffer whose every arm starts 64 bytes after a multiple of 64 bytes from the
    last, as a lone arm's buffer does. MKL rounds the first layer's weight gradient with few
    inputs (3) differently when its output is not 16-byte aligned, and in a contiguous
    (A, d, w) block arm i starts at i x d x w floats."""
    A, d, w = shape
    stride = aligned_arm_floats(d, w)
    return torch.zeros(A * stride, device=device).as_strided((A, d, w), (stride, w, 1))


def aligned_arm_floats(d: int, w: int) -> int:
    """Floats per arm in ``_aligned_arms``: d x w rounded up to 64 bytes."""
    return -(-d * w // 16) * 16


def residual_chunk(A: int, n: int, steps: int) -> int:
    """Steps whose residuals a group of A arms and n rows keeps before computing their losses."""
    return max(1, min(steps, RESIDUAL_CHUNK_BYTES // (4 * A * n)))


def _relu_backward_(g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """g where h > 0, else 0, in place (ReLU's backward, one fused kernel)."""
    return torch.ops.aten.threshold_backward.grad_input(g, h, 0.0, grad_input=g)


def _mean_rows(rr: torch.Tensor, rows: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    """Per-arm mean of rr (..., A, n, 1) over its last two axes, rounded as torch.mean rounds it on rr's device."""
    if rr.device.type != "cpu":   # CUDA's mean multiplies by 1/n
        return torch.mean(rr, dim=(-2, -1), out=out) if out is not None else rr.mean(dim=(-2, -1))
    loss = torch.sum(rr, dim=(-2, -1), out=out) if out is not None else rr.sum(dim=(-2, -1))
    return loss.div_(rows)        # on CPU torch.mean is this sum divided by the count


def forward_backward(P: list[torch.Tensor], G: list[torch.Tensor], X: torch.Tensor, Y: torch.Tensor,
                     masks: DropoutMasks | None, step: int, work: _Workspace | None = None,
                     loss_out: torch.Tensor | None = None) -> torch.Tensor:
    """One train-mode pass: writes dLoss/dparam into G, returns the per-arm loss (A,).

    P, G: [W0 (A, d, w), b0 (A, 1, w), ..., W_L (A, w, 1), b_L (A, 1, 1)]; X: (A, n, d), Y: (A, n, 1).
    Loss is the MSE of each arm; masks (if any) apply to the first masks.k arms.
    ``work`` holds the activations (allocated here if None); ``loss_out`` (A,) receives the loss.
    """
    if work is None:
        work = _Workspace(X.shape[0], X.shape[1], P[0].shape[2], len(P) // 2 - 1, X.device)
    train_pass(P, G, X, Y, masks, step, work, 0)
    return work.losses(1, loss_out.view(1, -1) if loss_out is not None else None)[0]


def train_pass(P: list[torch.Tensor], G: list[torch.Tensor], X: torch.Tensor, Y: torch.Tensor,
               masks: DropoutMasks | None, step: int, work: _Workspace, slot: int) -> None:
    """``forward_backward`` without the loss: the residuals go to ``work.res[slot]``, for ``work.losses``.

    A hidden layer's output is h = relu(z) x m (m: the dropout multiplier, 0 or 1/(1-p);
    dropout then ReLU equals ReLU then dropout, as m >= 0), so its backward is
    g x m where h > 0, else 0: h > 0 exactly where z > 0 and the unit was kept. (A z that
    overflowed to -inf gives 0, as nn.ReLU does; engine revision 1 gave NaN there.)
    """
    L = len(P) // 2 - 1
    k = masks.k if masks is not None else 0
    v = work.bind(P, G, X, k)
    mults = [masks.multiplier(step, layer) for layer in range(L)] if k else []
    # forward: each hidden layer's output stays in work.h for the backward pass
    forward, weight_grad, input_grad = work.calls["forward"], work.calls["weight grad"], work.calls["input grad"]
    for layer in range(L):
        h = forward[layer]().relu_()                                  # (A, n, w), see _affine
        if k:
            v["hk"][layer].mul_(mults[layer])
    r = torch.sum(torch.mul(h, v["wT"][L], out=work.tmp), dim=2, keepdim=True, out=work.res_rows[slot])   # (A, n, 1), see _output_layer
    r.add_(P[2 * L + 1]).sub_(Y)
    # backward by hand: g is dLoss/d(layer output), (A, n, out)
    g = torch.mul(r, work.two_over_rows, out=work.gout)
    if work.fit_weights is not None:   # early_stop arms: the loss of their fit rows only
        s, weights = work.fit_from, work.fit_weights
        g[s:s + len(weights)].mul_(weights)
    torch.sum(torch.mul(h, g, out=work.tmp), dim=1, out=v["G0"][1])   # (A, w), see _output_layer
    torch.sum(g, dim=1, keepdim=True, out=G[2 * L + 1])
    # through the last hidden layer: a one-column weight, so an outer product, elementwise
    cur = 0
    g = torch.mul(g, v["wT"][L], out=work.g[cur])                    # dLoss/dh_{L-1}, (A, n, w)
    for layer in range(L - 1, -1, -1):
        if k:                                                         # dLoss/dz_layer
            v["gk"][cur].mul_(mults[layer])
        _relu_backward_(g, work.h[layer])
        if layer > 0:
            weight_grad[layer]()                                                    # (A, w, w)
        elif X.shape[2] == 1:  # input is (A, n, 1): a row reduction, as in _output_layer
            torch.sum(torch.mul(X, g, out=work.tmp), dim=1, out=v["G0"][0])         # (A, w)
        else:                  # d inputs: (A, d, n) @ (A, n, w), each arm's product aligned
            G[0].copy_(weight_grad[0]())                                            # (A, d, w)
        torch.sum(g, dim=1, keepdim=True, out=G[2 * layer + 1])
        if layer > 0:
            cur = 1 - cur
            g = input_grad[layer]()                                                 # dLoss/dh_{layer-1}, in work.g[cur]


class _Hook:
    """A kind's gradient hook (bench.arms.ArmKind.gradient) over its slice [start, end) of the group."""

    def __init__(self, kind, start: int, end: int, arms: Sequence[Arm], device: torch.device) -> None:
        self.fn, self.start, self.end = kind.gradient, start, end
        self.c = torch.tensor([getattr(a.cfg, kind.coefficient) for a in arms], device=device).view(-1, 1, 1)

    def __call__(self, P: list[torch.Tensor], G: list[torch.Tensor]) -> None:
        s, e = self.start, self.end
        for p, g in zip(P, G):
            self.fn(p[s:e], g[s:e], self.c)


def _hooks(arms: Sequence[Arm], device: torch.device) -> list[_Hook]:
    """One hook per kind with a gradient hook, over its contiguous slice of the (ordered) group."""
    starts: dict[str, list[int]] = {}
    for i, a in enumerate(arms):
        if a.rate == 0 and a.spec.gradient is not None:
            starts.setdefault(a.spec.name, []).append(i)
    return [_Hook(arms[idx[0]].spec, idx[0], idx[-1] + 1, [arms[i] for i in idx], device) for idx in starts.values()]


class Group:
    """Everything one group trains with: data, stacked parameters, optimizer, masks, buffers.

    Arms are reordered (``order[pos]`` is the caller's index of the arm at position pos):
    dropout arms first, so mask work runs on the first ``k`` arms only, then the other kinds by
    their ``slot`` (bench.arms: weight_decay, early_stop, plain last); each kind's extra work
    touches its slice.
    """

    def __init__(self, arms: Sequence[Arm]) -> None:
        if len({group_key(a) for a in arms}) != 1:
            raise ValueError("arms of one group must share task, n_train, inputs, test_size, width, depth, "
                             "steps, lr, eval_every and device")
        cfg = arms[0].cfg
        self.device = device = torch.device(cfg.device)
        kinds = list(ARMS)
        self.order = sorted(range(len(arms)), key=lambda i: (0, 0) if arms[i].rate > 0 else
                            (arms[i].spec.slot, kinds.index(arms[i].spec.name)))
        self.arms = [arms[i] for i in self.order]
        self.k = sum(a.rate > 0 for a in self.arms)
        A = len(arms)
        self.data = _StackedData([make_data(a.cfg) for a in self.arms], device)
        self.X, self.Y = self.data.x, self.data.y
        self.stack = _Stack(self.arms, device)
        self.opt = FusedAdam(self.stack.flat, self.stack.grad, cfg.lr)
        self.masks = (DropoutMasks(self.arms[:self.k], cfg.n_train, cfg.width, cfg.depth, cfg.steps, device)
                      if self.k else None)
        self.work = _Workspace(A, cfg.n_train, cfg.width, cfg.depth, device, cfg.steps)
        self.hooks = _hooks(self.arms, device)
        es = [i for i, a in enumerate(self.arms) if a.rate == 0 and a.spec.holds_out]
        self.early = _EarlyStop([self.arms[i] for i in es], es[0] if es else 0, device) if es else None
        if self.early is not None:
            self.work.fit_from, self.work.fit_weights = self.early.start, self.early.fit_weights
        # every step's train-mode loss stays on the device: divergence is found after the
        # loop, with no host sync and no per-step bookkeeping inside it
        self.losses = torch.empty(cfg.steps, A, device=device)          # (steps, A)
        self.steps = cfg.steps

    def products(self) -> list[tuple[Product, Callable[[], torch.Tensor]]]:
        """The step's matrix products (``step_products``) and the calls the step makes for them, on
        this group's own buffers: what the speed lab's limit racer repeats, and nothing else."""
        c, k = self.arms[0].cfg, self.k
        self.work.bind(self.stack.params, self.stack.grads, self.X, k)
        calls = self.work.calls
        return [(p, calls[p.name][p.layer])
                for p in step_products(len(self.arms), c.n_train, c.input_dim, c.width, c.depth)]

    def rewind(self) -> None:
        """Before taking steps 0, 1, ... again (a timing loop): each pass then does a real run's mask work."""
        if self.masks is not None:
            self.masks.reset()

    def step(self, step: int) -> None:
        """One training step (0-based; < cfg.steps) of every arm: forward, backward, Adam."""
        P, G, work = self.stack.params, self.stack.grads, self.work
        slot = step % work.chunk
        train_pass(P, G, self.X, self.Y, self.masks, step, work, slot)
        if slot + 1 == work.chunk or step + 1 == self.steps:   # the chunk's losses, once its residuals are in
            work.losses(slot + 1, self.losses[step - slot:step + 1])
        for hook in self.hooks:   # e.g. weight decay's coupled L2: the gradient gains lambda * theta
            hook(P, G)
        self.opt.step()


class _StackedData:
    """The group's data stacked over arms, on the device: train, test, and (known f) truth and fresh inputs."""

    def __init__(self, datas: list, device: torch.device) -> None:
        def stack(name: str) -> torch.Tensor | None:
            values = [getattr(d, name) for d in datas]
            return None if values[0] is None else torch.stack(values).to(device)
        self.x, self.y, self.y_test = stack("x"), stack("y"), stack("y_test")   # (A, n, d), (A, n, 1), (A, t, 1)
        self.same_x = datas[0].same_x
        self.x_test = self.x if self.same_x else stack("x_test")                 # (A, t, d)
        self.f_x, self.x_new, self.y_new, self.f_new = (stack(n) for n in ("f_x", "x_new", "y_new", "f_new"))


class _EarlyStop:
    """``bench.arms.EARLY_STOP_RULE`` for the early_stop arms of a group (positions start, start + 1, ...), on the device.

    ``check(slot, out, Y)`` runs at every curve step; ``restore(P)`` puts the kept weights back.
    """

    def __init__(self, arms: Sequence[Arm], start: int, device: torch.device) -> None:
        self.start, self.m = start, len(arms)
        held = torch.stack([validation_rows(a.cfg) for a in arms]).unsqueeze(2).to(device)   # (m, n, 1)
        n = held.shape[1]
        n_val = held.sum(dim=(1, 2), keepdim=True).float()
        self.fit_weights = torch.where(held, 0.0, n / (n - n_val))     # (m, n, 1): n / n_fit on fit rows
        self.val_weights = torch.where(held, 1.0 / n_val, 0.0)          # (m, n, 1): 1 / n_val on held rows
        self.patience = torch.tensor([a.cfg.patience for a in arms], device=device)
        self.best_val = torch.full((self.m,), math.inf, device=device)
        self.best = torch.full((self.m,), -1, dtype=torch.long, device=device)
        self.stop = torch.full((self.m,), -1, dtype=torch.long, device=device)
        self.active = torch.ones(self.m, dtype=torch.bool, device=device)
        self.kept: list[torch.Tensor] = []
        self.val_curve: list[torch.Tensor] = []

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        return t[self.start:self.start + self.m]

    def check(self, slot: int, out: torch.Tensor, Y: torch.Tensor, P: list[torch.Tensor]) -> torch.Tensor:
        """Validation MSE at curve step ``slot`` (m,); updates the kept weights and the stop flags."""
        sq = (self.rows(out) - self.rows(Y)) ** 2
        val = (sq * self.val_weights).sum(dim=(1, 2))
        self.val_curve.append(val)
        improved = (val < self.best_val) & self.active
        self.best_val = torch.where(improved, val, self.best_val)
        self.best = torch.where(improved, slot, self.best)
        if not self.kept:
            self.kept = [self.rows(p).clone() for p in P]
        for kept, p in zip(self.kept, P):
            kept.copy_(torch.where(improved.view(-1, 1, 1), self.rows(p), kept))
        stopped = self.active & (slot - self.best >= self.patience)
        self.stop = torch.where(stopped, slot, self.stop)
        self.active &= ~stopped
        return self.fit_mse(sq)

    def fit_mse(self, sq: torch.Tensor) -> torch.Tensor:
        """Train MSE over the fit rows (m,), from the squared residuals of these arms (m, n, 1)."""
        return (sq * self.fit_weights).mean(dim=(1, 2))

    def restore(self, P: list[torch.Tensor]) -> None:
        for kept, p in zip(self.kept, P):
            self.rows(p).copy_(kept)


def _evaluate(grp: Group, out_curves: torch.Tensor, slot: int | None = None) -> torch.Tensor:
    """Eval-mode train and test MSE of every arm, (2, A); at a curve step also the early-stopping check."""
    P, d = grp.stack.params, grp.data
    out = _forward_eval(P, d.x)
    train = ((out - d.y) ** 2).mean(dim=(1, 2))
    out_test = out if d.same_x else _forward_eval(P, d.x_test)
    out_curves[0], out_curves[1] = train, ((out_test - d.y_test) ** 2).mean(dim=(1, 2))
    if grp.early is not None:
        e = grp.early
        fit = e.check(slot, out, d.y, P) if slot is not None else e.fit_mse((e.rows(out) - e.rows(d.y)) ** 2)
        e.rows(out_curves[0])[:] = fit
    return out_curves


def train_group(arms: Sequence[Arm], *, record_fits: bool = False, engine: str = "batched") -> list[ArmResult]:
    """Train compatible arms together; returns one ArmResult per arm, in input order. Pure."""
    if not arms:
        return []
    grp = Group(arms)
    cfg0, device, A, steps = arms[0].cfg, grp.device, len(arms), arms[0].cfg.steps
    P = grp.stack.params
    record_fits = record_fits and cfg0.input_dim == 1      # fitted curves are drawn for one input only
    grid = fit_grid().to(device).expand(A, -1, -1)          # (A, G, 1)
    evals = curve_steps(steps, cfg0.eval_every)
    curves = torch.empty(len(evals), 2, A, device=device)   # (evals, [train, test], A)
    fits = torch.empty(len(evals), A, grid.shape[1], device=device) if record_fits else None
    cuda = device.type == "cuda"
    starts, ends = [], []  # per-step wall clock (CPU) or CUDA events, warm-up excluded

    def evaluate(slot: int) -> None:
        _evaluate(grp, curves[slot], slot)
        if fits is not None:
            fits[slot] = _forward_eval(P, grid).squeeze(-1)

    with torch.no_grad():
        evaluate(0)
        next_eval = 1
        for step in range(steps):
            timed = step >= WARMUP_STEPS
            if timed:
                starts.append(_mark(cuda))
            grp.step(step)
            if timed:
                ends.append(_mark(cuda))
            if step + 1 == evals[next_eval]:
                evaluate(next_eval)
                next_eval += 1
        if grp.early is not None:
            grp.early.restore(P)
        final = torch.cat([_evaluate(grp, torch.empty(2, A, device=device)), _final_errors(grp)])   # (5, A)
        bad = ~torch.isfinite(grp.losses)                           # (steps, A)
        # first non-finite step per arm, -1 if none (argmax returns the first maximum)
        first_bad = torch.where(bad.any(dim=0), bad.to(torch.uint8).argmax(dim=0), -1)
    timing = _median_iqr(_intervals(starts, ends, cuda))
    host = {"curves": curves.cpu().double(), "final": final.cpu().double(), "first_bad": first_bad.cpu().tolist(),
            "losses": grp.losses.cpu(), "fits": fits.cpu() if fits is not None else None}
    return _results(grp, evals, host, timing, engine)


def _results(grp: Group, evals: list[int], host: dict, timing: tuple[float, float], engine: str) -> list[ArmResult]:
    """One ArmResult per arm, in the caller's order, from the group's host copies."""
    curves, final, fits = host["curves"], host["final"], host["fits"]
    early = _early_host(grp, evals)
    results: list[ArmResult] = [None] * len(grp.arms)  # type: ignore[list-item]
    for pos, arm in enumerate(grp.arms):
        train, test = float(final[0, pos]), float(final[1, pos])
        truth = final[2:, pos].tolist()                   # the rows of _final_errors
        stop, best = early.get(pos, {}).get("stopped_step", evals[-1]), early.get(pos, {}).get("best_step")
        upto = evals.index(stop) + 1                      # an early_stop arm's curves end where it stopped
        kept = evals.index(best) if best is not None else upto - 1   # early_stop: the kept weights' fit
        bad = host["first_bad"][pos]
        bad = bad if bad < stop else -1                   # steps after an early stop were never taken
        results[grp.order[pos]] = ArmResult(
            rate=arm.rate, status="diverged" if bad >= 0 or not math.isfinite(test) else "ok",
            diverged_at_step=bad if bad >= 0 else None,
            train_mse=train, train_loss_last=float(host["losses"][max(stop, 1) - 1, pos]), test_mse=test, gap=test - train,
            curve_steps=evals[:upto], curve_train_mse=curves[:upto, 0, pos].tolist(),
            curve_test_mse=curves[:upto, 1, pos].tolist(),
            step_seconds_median=timing[0], step_seconds_iqr=timing[1], group_size=len(grp.arms), engine=engine,
            fit=fits[kept, pos].tolist() if fits is not None else None,
            fit_history=fits[:upto, pos].tolist() if fits is not None else None,
            excess_risk=truth[0], new_mse=truth[1], new_excess_risk=truth[2],
            **early.get(pos, {}))
    return results


def _early_host(grp: Group, evals: list[int]) -> dict[int, dict]:
    """Per early_stop arm position: best_step, stopped_step and its validation curve up to the stop."""
    e = grp.early
    if e is None:
        return {}
    best, stop = e.best.cpu().tolist(), e.stop.cpu().tolist()
    vals = torch.stack(e.val_curve).cpu().double()             # (evals, m)
    out = {}
    for j in range(e.m):
        last = stop[j] if stop[j] >= 0 else len(evals) - 1
        out[e.start + j] = {"best_step": evals[best[j]] if best[j] >= 0 else None, "stopped_step": evals[last],
                            "curve_val_mse": vals[:last + 1, j].tolist()}
    return out


def _final_errors(grp: "Group") -> torch.Tensor:
    """(3, A): excess risk at the training x, MSE and excess risk at the fresh inputs (eval mode); NaN without a known f."""
    P, d = grp.stack.params, grp.data
    if d.f_x is None:
        return torch.full((3, len(grp.arms)), math.nan, device=grp.device)
    out = _forward_eval(P, d.x)
    new = _forward_eval(P, d.x_new)
    return torch.stack([((out - d.f_x) ** 2).mean(dim=(1, 2)),
                        ((new - d.y_new) ** 2).mean(dim=(1, 2)),
                        ((new - d.f_new) ** 2).mean(dim=(1, 2))])


def _mark(cuda: bool):
    if cuda:
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev
    return time.perf_counter()


def _intervals(starts: list, ends: list, cuda: bool) -> list[float]:
    """Seconds per timed step; on CUDA the events are read once, after one synchronisation."""
    if cuda and ends:
        ends[-1].synchronize()
        return [a.elapsed_time(b) / 1000.0 for a, b in zip(starts, ends)]
    return [b - a for a, b in zip(starts, ends)]


def _median_iqr(xs: list[float]) -> tuple[float, float]:
    if not xs:
        return float("nan"), float("nan")
    t = torch.tensor(xs, dtype=torch.float64)
    q = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return float(q[1]), float(q[2] - q[0])
