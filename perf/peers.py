"""What a user would write instead of the engine: two peers to time it against.

Both train A arms of one config at once, the first ``k`` with dropout (rate cfg.dropout)
and the rest plain, on the arms' own data and initial weights (seeds cfg.seed + i), with
full-batch MSE and Adam at cfg.lr, as the engine does:

- ``stacked_autograd_stepper``: the obvious stacked version. Parameters are stacked
  leaf tensors ``W_l (A, in, out)``, ``b_l (A, 1, out)`` with requires_grad; the forward
  pass is ``torch.baddbmm`` per layer with a Bernoulli keep-mask of per-arm rate; then
  ``loss.backward()`` and ``torch.optim.Adam(..., fused=True)``.
- ``func_ensemble_stepper``: PyTorch's model-ensembling recipe: the seed's nn.Sequential
  nets, their weights stacked with ``torch.func.stack_module_state``, and per-arm gradients
  from ``vmap(grad(loss))`` over ``functional_call`` (``randomness="different"`` gives
  every arm its own nn.Dropout masks). nn.Dropout's rate is a module attribute, not a
  parameter, so the dropout nets and the plain nets are two ensembles.

Each returns a stepper as in perf/steppers.py: a zero-argument function that runs
``steps`` training steps and returns the last step's loss per arm, (A,). The stacked
version draws its masks from a generator seeded with cfg.seed; nn.Dropout inside vmap
draws from torch's global RNG (torch.func offers no generator there). These exist to be
timed, not to produce trial results: their masks are not the engine's.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from bench.config import TrialConfig
from bench.reference import build_net
from bench.task import init_params, make_data

Stepper = Callable[[], torch.Tensor]
PEERS = ("stacked_autograd", "func_ensemble")


def peer_stepper(name: str, cfg: TrialConfig, n_arms: int, *, n_dropout: int, steps: int) -> Stepper:
    """The peer ``name`` (one of PEERS) as a stepper of ``n_arms`` arms, the first ``n_dropout`` with dropout."""
    if name not in PEERS:
        raise ValueError(f"peer {name!r}: must be one of {', '.join(PEERS)}")
    make = stacked_autograd_stepper if name == "stacked_autograd" else func_ensemble_stepper
    return make(cfg, n_arms, n_dropout=n_dropout, steps=steps)


def _stacked_data(cfg: TrialConfig, n_arms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (A, n, d) and targets (A, n, 1) of arms on seeds cfg.seed, cfg.seed + 1, ..."""
    datas = [make_data(cfg.replace(seed=cfg.seed + i)) for i in range(n_arms)]
    device = torch.device(cfg.device)
    return torch.stack([d.x for d in datas]).to(device), torch.stack([d.y for d in datas]).to(device)


def stacked_autograd_stepper(cfg: TrialConfig, n_arms: int, *, n_dropout: int, steps: int) -> Stepper:
    """Stacked leaf tensors, baddbmm, a Bernoulli mask, loss.backward() and fused Adam."""
    device = torch.device(cfg.device)
    x, y = _stacked_data(cfg, n_arms)                                     # (A, n, d), (A, n, 1)
    per_arm = [init_params(cfg.replace(seed=cfg.seed + i)) for i in range(n_arms)]
    params = []
    for layer in range(len(per_arm[0])):
        w = torch.stack([p[layer][0] for p in per_arm])                  # (A, in, out)
        b = torch.stack([p[layer][1] for p in per_arm]).unsqueeze(1)     # (A, 1, out)
        params += [w.to(device).requires_grad_(), b.to(device).requires_grad_()]
    opt = torch.optim.Adam(params, lr=cfg.lr, fused=True)
    keep = torch.tensor([1.0 - cfg.dropout] * n_dropout + [1.0] * (n_arms - n_dropout), device=device).view(-1, 1, 1)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    cuda = device.type == "cuda"

    def run() -> torch.Tensor:
        for _ in range(steps):
            h = x
            for layer in range(len(params) // 2 - 1):
                z = torch.baddbmm(params[2 * layer + 1], h, params[2 * layer])
                mask = torch.bernoulli(keep.expand_as(z), generator=gen) / keep   # inverted dropout, per-arm rate
                h = torch.relu(z * mask)
            out = torch.baddbmm(params[-1], h, params[-2])                         # (A, n, 1)
            loss = ((out - y) ** 2).mean(dim=(1, 2))                                # (A,)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()          # arms share no parameter: each gets its own MSE's gradient
            opt.step()
        if cuda:
            torch.cuda.synchronize(device)
        return loss.detach()
    return run


def func_ensemble_stepper(cfg: TrialConfig, n_arms: int, *, n_dropout: int, steps: int) -> Stepper:
    """torch.func: stack_module_state, vmap(grad(loss)) over functional_call, fused Adam."""
    device = torch.device(cfg.device)
    x, y = _stacked_data(cfg, n_arms)
    nets = [build_net(cfg.replace(seed=cfg.seed + i), cfg.dropout if i < n_dropout else 0.0).to(device).train()
            for i in range(n_arms)]
    ensembles = [_Ensemble(part, sl) for part, sl in ((nets[:n_dropout], slice(0, n_dropout)),
                                                      (nets[n_dropout:], slice(n_dropout, n_arms))) if part]
    opt = torch.optim.Adam([p for e in ensembles for p in e.params.values()], lr=cfg.lr, fused=True)
    cuda = device.type == "cuda"

    def run() -> torch.Tensor:
        for _ in range(steps):
            losses = [e.step_grads(x, y) for e in ensembles]     # sets .grad of the stacked weights
            opt.step()
        if cuda:
            torch.cuda.synchronize(device)
        return torch.cat(losses)
    return run


class _Ensemble:
    """Nets of one structure (arms ``arms`` of the group), stacked for torch.func."""

    def __init__(self, nets: list, arms: slice) -> None:
        self.arms = arms
        params, self.buffers = stack_module_state(nets)             # each (A_part, ...), leaves
        self.params = {k: v.detach().requires_grad_(False) for k, v in params.items()}
        base = copy.deepcopy(nets[0]).to("meta")

        def loss(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            mse = torch.nn.functional.mse_loss(functional_call(base, (p, b), (x,)), y)
            return mse, mse.detach()

        # per-arm (gradients, loss); every arm draws its own dropout masks
        self.grad_fn = vmap(grad(loss, has_aux=True), in_dims=(0, 0, 0, 0), randomness="different")

    def step_grads(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Put each arm's gradient in ``.grad`` of the stacked weights; the arms' losses, (A_part,)."""
        grads, loss = self.grad_fn(self.params, self.buffers, x[self.arms], y[self.arms])
        for name, p in self.params.items():
            p.grad = grads[name]
        return loss.detach()
