"""The seed experiment's own training loop, kept as the oracle and the speed baseline.

Same semantics as the tutorial: two ``nn.Sequential`` nets (Linear -> Dropout -> ReLU
blocks), two ``torch.optim.Adam`` optimizers, ``nn.MSELoss``, both nets stepped in one
loop, eval mode every ``eval_every`` steps. It differs from the original only where
the original is not reproducible: data and initial weights come from the trial's
named streams (bench/rng.py), and ``nn.Dropout`` draws its masks from torch's global
RNG inside ``torch.random.fork_rng`` seeded from the trial seed, so the caller's RNG
state is untouched. With ``masks="engine"`` the dropout layers apply the engine's own
hash masks instead (``bench.engine.DropoutMasks``), so the dropout arm, too, differs from
the engine's only by float rounding: the validation's paired check of the dropout path.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import torch
from torch import nn

from .config import TrialConfig
from .engine import curve_steps
from .results import ArmResult, TrialResult, dropout_arm, environment, pair
from .rng import derive_seed
from .task import init_params, make_data


class _EngineDropout(nn.Module):
    """Inverted dropout whose masks are the engine's for this trial: layer ``layer`` at step ``clock[0]``."""

    def __init__(self, masks: Any, layer: int, clock: list[int]) -> None:
        super().__init__()
        self.masks, self.layer, self.clock = masks, layer, clock

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return h
        return h * self.masks.multiplier(self.clock[0], self.layer)[0].clone()  # the buffer is reused


def build_net(cfg: TrialConfig, rate: float, stream: str = "init",
              dropout: Optional[Callable[[int], nn.Module]] = None) -> nn.Sequential:
    """The seed's net (rate 0 omits the dropout layers), with weights from ``stream``.

    ``dropout(layer)`` makes each dropout layer (default ``nn.Dropout(rate)``).
    """
    layers: list[nn.Module] = []
    params = init_params(cfg, stream)
    for i, (w, b) in enumerate(params[:-1]):
        lin = nn.Linear(w.shape[0], w.shape[1])
        _load(lin, w, b)
        layers.append(lin)
        if rate > 0:
            layers.append(dropout(i) if dropout is not None else nn.Dropout(rate))
        layers.append(nn.ReLU())
    w, b = params[-1]
    out = nn.Linear(w.shape[0], w.shape[1])
    _load(out, w, b)
    layers.append(out)
    return nn.Sequential(*layers)


def _load(lin: nn.Linear, w: torch.Tensor, b: torch.Tensor) -> None:
    with torch.no_grad():
        lin.weight.copy_(w.t())
        lin.bias.copy_(b)


def _nets(cfg: TrialConfig, masks: str, clock: list[int], device: torch.device) -> list[nn.Sequential]:
    """The plain net and the dropout net, on ``device``; the dropout net's masks as ``masks`` says."""
    stream = "init" if cfg.init == "shared" else "init-dropout"
    layer = None
    if masks == "engine" and cfg.dropout > 0:
        from .engine import DropoutMasks

        field = DropoutMasks([dropout_arm(cfg)], cfg.n_train, cfg.width, cfg.depth, cfg.steps, device)
        layer = lambda i: _EngineDropout(field, i, clock)  # noqa: E731 - one dropout module per layer
    return [build_net(cfg, 0.0).to(device), build_net(cfg, cfg.dropout, stream, layer).to(device)]


def tutorial_step(nets: list[nn.Module], opts: list[torch.optim.Optimizer], loss_func: Callable,
                  x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """One step of the tutorial's loop, in its order: both losses, then zero_grad, backward and step
    for each net in turn. Returns the losses."""
    losses = [loss_func(net(x), y) for net in nets]
    for opt in opts:
        opt.zero_grad()
    for loss in losses:
        loss.backward()
    for opt in opts:
        opt.step()
    return losses


def run_reference_trial(cfg: TrialConfig, *, masks: str = "torch") -> TrialResult:
    """Train plain and dropout nets exactly as the seed's loop does. CPU or CUDA.

    Any task; comparator arms are not part of the seed's loop and are not trained here.

    masks: "torch" (nn.Dropout, the seed's) or "engine" (the engine's hash masks).
    """
    if masks not in ("torch", "engine"):
        raise ValueError(f"masks={masks!r}: must be 'torch' or 'engine'")
    device = torch.device(cfg.device)
    data = make_data(cfg)
    x, y, x_test, y_test = data.x.to(device), data.y.to(device), data.x_test.to(device), data.y_test.to(device)
    clock = [0]                       # the step, for the engine's masks
    nets = _nets(cfg, masks, clock, device)
    opts = [torch.optim.Adam(net.parameters(), lr=cfg.lr) for net in nets]
    loss_func = nn.MSELoss()
    evals = curve_steps(cfg.steps, cfg.eval_every)
    curves: list[list[tuple[float, float]]] = [[], []]
    last = [0.0, 0.0]
    times: list[float] = []

    def evaluate() -> None:
        with torch.no_grad():
            for net, curve in zip(nets, curves):
                net.eval()
                pred = net(x)
                curve.append((loss_func(pred, y).item(), loss_func(net(x_test), y_test).item()))
                net.train()

    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(derive_seed(cfg.stream_seed("masks"), "reference-dropout"))
        evaluate()
        for step in range(cfg.steps):
            clock[0] = step
            t0 = time.perf_counter()
            losses = tutorial_step(nets, opts, loss_func, x, y)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
            if step == cfg.steps - 1:
                last = [loss.item() for loss in losses]
            if step + 1 in evals:
                evaluate()

    arms = _results(cfg, curves, last, times, evals)
    for arm, net in zip(arms, nets):
        _noise_free(arm, net.eval(), data, device)
    return pair(cfg, arms[0], arms[1], environment(cfg.device))


def _noise_free(arm: ArmResult, net: nn.Module, data: Any, device: torch.device) -> None:
    """An arm's excess risk and fresh-input errors, against the task's truth; NaN without one."""
    if data.f_x is None:
        arm.excess_risk = arm.new_mse = arm.new_excess_risk = float("nan")
        return
    mse = nn.MSELoss()
    with torch.no_grad():
        new = net(data.x_new.to(device))
        arm.excess_risk = mse(net(data.x.to(device)), data.f_x.to(device)).item()
        arm.new_mse = mse(new, data.y_new.to(device)).item()
        arm.new_excess_risk = mse(new, data.f_new.to(device)).item()


def _results(cfg: TrialConfig, curves: list, last: list[float], times: list[float], evals: list[int]) -> list[ArmResult]:
    """Both arms' results from their eval curves, last train losses and step times."""
    timed = torch.tensor(times[5:] or times, dtype=torch.float64)
    q = torch.quantile(timed, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    arms = []
    for rate, curve, loss_last in zip((0.0, cfg.dropout), curves, last):
        train, test = curve[-1]
        arms.append(ArmResult(
            rate=rate, status="ok" if torch.isfinite(torch.tensor(test)) else "diverged",
            diverged_at_step=None, train_mse=train, train_loss_last=loss_last, test_mse=test,
            gap=test - train, curve_steps=evals, curve_train_mse=[c[0] for c in curve],
            curve_test_mse=[c[1] for c in curve], step_seconds_median=q[1],
            step_seconds_iqr=q[2] - q[0], group_size=2, engine="reference",
        ))
    return arms

