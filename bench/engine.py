"""The stacked training core: a group of compatible arms trained as one computation.

Shapes: A arms, n training points, w width, L = depth hidden layers.
Every arm's parameters live in one flat buffer of per-layer blocks, W_l (A, in, out)
and b_l (A, 1, out), so the forward and hand-written backward pass are a few
``baddbmm``/``bmm`` calls over the leading arm axis and one fused Adam step updates
every arm at once (Adam is elementwise: one optimizer over stacked parameters is
exactly A independent Adams). No per-step Python work scales with A.

What makes a step cheap (measured in bench/README.md): activations live in a
preallocated workspace, the fused Adam kernel is called directly (``_Adam``), dropout
masks are hashed a chunk of steps at a time at 16 bits per cell (``DropoutMasks``),
and losses stay on the device until the loop ends (no host sync per step).

A group of one arm is the single engine; results do not depend on the grouping
because data, initial weights and dropout masks of an arm are functions of its own
config only (bench/rng.py).
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import torch

from . import rng
from .results import Arm, ArmResult
from .task import fit_grid, init_params, layer_dims, make_data, truth

WARMUP_STEPS = 5  # steps excluded from the step-time statistics


def group_key(arm: Arm) -> tuple:
    """Arms with equal keys can share one stacked computation."""
    c = arm.cfg
    return (c.task, c.n_train, c.width, c.depth, c.steps, c.lr, c.eval_every, c.device)


def curve_steps(steps: int, eval_every: int) -> list[int]:
    """Completed-step counts at which eval-mode losses are recorded: 0, k, 2k, ..., steps."""
    points = list(range(0, steps + 1, eval_every))
    return points if points[-1] == steps else points + [steps]


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


class _Adam:
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

    def step(self) -> None:
        if self.fallback is not None:  # pragma: no cover
            self.fallback.step()
            return
        torch._foreach_add_(self.steps, 1)
        self.kernel(self.params, self.grads, self.exp_avg, self.exp_avg_sq, [], self.steps,
                    amsgrad=False, lr=self.lr, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                    maximize=False, grad_scale=None, found_inf=None)


class DropoutMasks:
    """Dropout multipliers of the first k arms of a group: 0 or 1/(1-p) per unit.

    The keep decision for (arm, step, layer, sample, unit) is a pure function of the
    arm's seed and rate (bench/rng.py), so it does not depend on the rest of the batch.
    Keep-masks are hashed for a chunk of steps at once (all layers and arms in one
    call): the integer work is the same, but the dozen small kernels of the hash are
    launched once per chunk instead of once per layer and step, which is most of the
    mask cost at small groups.
    """

    CHUNK_BYTES = 256 * 1024  # int32 hash values per chunk: about an L2 cache's share

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
        self._keep_buf = torch.empty(B, n * w, dtype=torch.bool, device=device)
        self._thr_chunk = self.thresholds.repeat(self.chunk)                           # (B,)
        self._mult = torch.empty(self.k, n, w, device=device)
        self._start, self._keep = -1, None

    def keep(self, step: int, layer: int) -> torch.Tensor:
        """(k, n, w) bool: True where the unit is kept."""
        start = step - step % self.chunk
        if start != self._start:
            stop = min(start + self.chunk, self.steps)
            B = (stop - start) * self.layers * self.k
            keys = self.keys[start:stop].reshape(-1)                                  # (c*L*k,)
            self._keep = rng.keep_mask(keys, self._thr_chunk[:B], self.n, self.w, self.pairs,
                                       scratch=(self._hash[0][:B], self._hash[1][:B]),
                                       out=self._keep_buf[:B]).view(
                stop - start, self.layers, self.k, self.n, self.w)                    # (c, L, k, n, w)
            self._start = start
        return self._keep[step - start, layer]

    def multiplier(self, step: int, layer: int) -> torch.Tensor:
        """(k, n, w) float: 1/(1-p) where the unit is kept, 0 where it is dropped."""
        return torch.mul(self.keep(step, layer), self.scales, out=self._mult)  # bool x float: no cast


class _Workspace:
    """Preallocated activations and gradients of one group, so the step loop allocates nothing.

    A arms, n samples, w width, L hidden layers.
    """

    def __init__(self, A: int, n: int, w: int, L: int, device: torch.device) -> None:
        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=device)
        self.h = [buf(A, n, w) for _ in range(L)]       # z_l, then in place h_l = z_l * d_l
        self.d = [buf(A, n, w) for _ in range(L)]       # ReLU'(z_l) x dropout multiplier
        self.g = [buf(A, n, w), buf(A, n, w)]           # dLoss/dh, ping-pong between layers
        self.tmp = buf(A, n, w)                         # products reduced over one axis
        self.out = buf(A, n, 1)                         # network output, then residual


def forward_backward(P: list[torch.Tensor], G: list[torch.Tensor], X: torch.Tensor, Y: torch.Tensor,
                     masks: DropoutMasks | None, step: int, work: _Workspace | None = None,
                     loss_out: torch.Tensor | None = None) -> torch.Tensor:
    """One train-mode pass: writes dLoss/dparam into G, returns the per-arm loss (A,).

    P, G: [W0 (A, 1, w), b0 (A, 1, w), ..., W_L (A, w, 1), b_L (A, 1, 1)]; X, Y: (A, n, 1).
    Loss is the MSE of each arm; masks (if any) apply to the first masks.k arms.
    ``work`` holds the activations (allocated here if None); ``loss_out`` (A,) receives the loss.
    """
    L = len(P) // 2 - 1
    A, n = X.shape[0], X.shape[1]
    if work is None:
        work = _Workspace(A, n, P[0].shape[2], L, X.device)
    # forward, keeping each layer's input and its (ReLU' x dropout multiplier) derivative
    h = X
    for layer in range(L):
        z = _affine(h, P[2 * layer], P[2 * layer + 1], out=work.h[layer])   # (A, n, w)
        d = torch.gt(z, 0, out=work.d[layer])                              # float 0/1
        if masks is not None:  # dropout then ReLU equals ReLU then dropout: the mask is non-negative
            d[:masks.k].mul_(masks.multiplier(step, layer))
        h = z.mul_(d)
    r = _output_layer(h, P[2 * L], P[2 * L + 1], tmp=work.tmp, out=work.out).sub_(Y)   # (A, n, 1)
    rr = r * r
    loss = torch.mean(rr, dim=(1, 2), out=loss_out) if loss_out is not None else rr.mean(dim=(1, 2))
    # backward by hand: g is dLoss/d(layer output), (A, n, out)
    g = r.mul_(2.0 / n)
    torch.sum(torch.mul(h, g, out=work.tmp), dim=1, out=G[2 * L].squeeze(2))   # (A, w), see _output_layer
    torch.sum(g, dim=1, keepdim=True, out=G[2 * L + 1])
    # through the last hidden layer: a one-column weight, so an outer product, elementwise
    cur = 0
    g = torch.mul(g, P[2 * L].transpose(1, 2), out=work.g[cur]).mul_(work.d[L - 1])   # (A, n, w)
    for layer in range(L - 1, -1, -1):
        if layer > 0:
            torch.bmm(work.h[layer - 1].transpose(1, 2), g, out=G[2 * layer])        # (A, w, w)
        else:  # input is (A, n, 1): a row reduction, as in _output_layer
            torch.sum(torch.mul(X, g, out=work.tmp), dim=1, out=G[0].squeeze(1))     # (A, w)
        torch.sum(g, dim=1, keepdim=True, out=G[2 * layer + 1])
        if layer > 0:
            cur = 1 - cur
            g = torch.bmm(g, P[2 * layer].transpose(1, 2), out=work.g[cur]).mul_(work.d[layer - 1])
    return loss


class _Group:
    """Everything one group trains with: data, stacked parameters, optimizer, masks, buffers.

    Arms are reordered with dropout arms first (``order[pos]`` is the caller's index of
    the arm at position pos), so mask work runs on the first ``k`` arms only.
    """

    def __init__(self, arms: Sequence[Arm]) -> None:
        if len({group_key(a) for a in arms}) != 1:
            raise ValueError("arms of one group must share task, n_train, width, depth, steps, lr, "
                             "eval_every and device")
        cfg = arms[0].cfg
        self.device = device = torch.device(cfg.device)
        self.order = sorted(range(len(arms)), key=lambda i: arms[i].rate == 0.0)
        self.arms = [arms[i] for i in self.order]
        self.k = sum(a.rate > 0 for a in self.arms)
        A = len(arms)
        datas = [make_data(a.cfg) for a in self.arms]
        self.X = torch.stack([d.x for d in datas]).to(device)            # (A, n, 1)
        self.Y = torch.stack([d.y for d in datas]).to(device)            # (A, n, 1)
        self.Y_test = torch.stack([d.y_test for d in datas]).to(device)  # (A, n, 1)
        self.X_new = torch.stack([d.x_new for d in datas]).to(device)    # (A, NEW_POINTS, 1)
        self.Y_new = torch.stack([d.y_new for d in datas]).to(device)    # (A, NEW_POINTS, 1)
        self.stack = _Stack(self.arms, device)
        self.opt = _Adam(self.stack.flat, self.stack.grad, cfg.lr)
        self.masks = (DropoutMasks(self.arms[:self.k], cfg.n_train, cfg.width, cfg.depth, cfg.steps, device)
                      if self.k else None)
        self.work = _Workspace(A, cfg.n_train, cfg.width, cfg.depth, device)
        # every step's train-mode loss stays on the device: divergence is found after the
        # loop, with no host sync and no per-step bookkeeping inside it
        self.losses = torch.empty(cfg.steps, A, device=device)          # (steps, A)

    def step(self, step: int) -> None:
        """One training step (0-based; < cfg.steps) of every arm: forward, backward, Adam."""
        forward_backward(self.stack.params, self.stack.grads, self.X, self.Y, self.masks, step,
                         self.work, self.losses[step])
        self.opt.step()


def train_group(arms: Sequence[Arm], *, record_fits: bool = False, engine: str = "batched") -> list[ArmResult]:
    """Train compatible arms together; returns one ArmResult per arm, in input order. Pure."""
    if not arms:
        return []
    grp = _Group(arms)
    cfg0, device, A, steps = arms[0].cfg, grp.device, len(arms), arms[0].cfg.steps
    arms, order, P, X, Y, Y_test = grp.arms, grp.order, grp.stack.params, grp.X, grp.Y, grp.Y_test
    grid = fit_grid().to(device).expand(A, -1, -1)               # (A, G, 1)

    evals = curve_steps(steps, cfg0.eval_every)
    curves = torch.empty(len(evals), 2, A, device=device)        # (evals, [train, test], A)
    fits = torch.empty(len(evals), A, grid.shape[1], device=device) if record_fits else None
    cuda = device.type == "cuda"
    starts, ends = [], []  # per-step wall clock (CPU) or CUDA events, warm-up excluded

    def evaluate(slot: int) -> None:
        out = _forward_eval(P, X)
        curves[slot, 0] = ((out - Y) ** 2).mean(dim=(1, 2))
        curves[slot, 1] = ((out - Y_test) ** 2).mean(dim=(1, 2))
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
        final = _final_errors(grp)                                 # (3, A)
        bad = ~torch.isfinite(grp.losses)                           # (steps, A)
        # first non-finite step per arm, -1 if none (argmax returns the first maximum)
        first_bad = torch.where(bad.any(dim=0), bad.to(torch.uint8).argmax(dim=0), -1)
        last_loss = grp.losses[-1]

    med, iqr = _median_iqr(_intervals(starts, ends, cuda))
    curves_cpu, final_cpu = curves.cpu().double(), final.cpu().double()
    first_bad_cpu, last_cpu = first_bad.cpu().tolist(), last_loss.cpu().tolist()
    fits_cpu = fits.cpu() if fits is not None else None
    results: list[ArmResult] = [None] * A  # type: ignore[list-item]
    for pos, arm in enumerate(arms):
        train, test = float(curves_cpu[-1, 0, pos]), float(curves_cpu[-1, 1, pos])
        bad = first_bad_cpu[pos]
        results[order[pos]] = ArmResult(
            rate=arm.rate, status="diverged" if bad >= 0 or not math.isfinite(test) else "ok",
            diverged_at_step=bad if bad >= 0 else None,
            train_mse=train, train_loss_last=float(last_cpu[pos]), test_mse=test, gap=test - train,
            curve_steps=evals, curve_train_mse=curves_cpu[:, 0, pos].tolist(),
            curve_test_mse=curves_cpu[:, 1, pos].tolist(),
            step_seconds_median=med, step_seconds_iqr=iqr, group_size=A, engine=engine,
            fit=fits_cpu[-1, pos].tolist() if fits_cpu is not None else None,
            fit_history=fits_cpu[:, pos].tolist() if fits_cpu is not None else None,
            **dict(zip(("excess_risk", "new_mse", "new_excess_risk"), final_cpu[:, pos].tolist())))
    return results


def _final_errors(grp: "_Group") -> torch.Tensor:
    """(3, A): excess risk at the training x, MSE and excess risk at the fresh inputs (eval mode)."""
    P = grp.stack.params
    out = _forward_eval(P, grp.X)
    new = _forward_eval(P, grp.X_new)
    return torch.stack([((out - truth(grp.X)) ** 2).mean(dim=(1, 2)),
                        ((new - grp.Y_new) ** 2).mean(dim=(1, 2)),
                        ((new - truth(grp.X_new)) ** 2).mean(dim=(1, 2))])


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
