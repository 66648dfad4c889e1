"""The toy1d task and the networks' initial weights, drawn from the trial's named streams.

Everything here is drawn on the CPU in float32 and moved to the device afterwards, so
data and initial weights are bit-identical on every device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import TrialConfig
from .rng import generator

FIT_GRID_POINTS = 101  # x values in [-1, 1] where fitted curves are recorded
NEW_POINTS = 200       # fresh inputs, uniform in [-1, 1], where error at new inputs is measured


def truth(x: torch.Tensor) -> torch.Tensor:
    """The toy task's noise-free target f(x) = x."""
    return x


@dataclass(frozen=True)
class Data:
    x: torch.Tensor       # (n, 1) train inputs = linspace(-1, 1, n)
    y: torch.Tensor       # (n, 1) train targets: f(x) + sigma * noise
    y_test: torch.Tensor  # (n, 1) test targets: the same x, fresh noise
    x_new: torch.Tensor   # (NEW_POINTS, 1) fresh inputs, uniform in [-1, 1] (stream "new-x")
    y_new: torch.Tensor   # (NEW_POINTS, 1) their targets: f(x_new) + sigma * noise (stream "new-noise")


def make_data(cfg: TrialConfig) -> Data:
    """Depends on (data seed, n_train, noise_std) only; never on the network or the dropout rate.

    Each draw has its own stream, so adding the fresh inputs changed none of the others.
    """
    n, data_seed = cfg.n_train, cfg.stream_seed("data")
    x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
    noise = torch.randn(n, 1, generator=generator(data_seed, "train-noise"))
    noise_test = torch.randn(n, 1, generator=generator(data_seed, "test-noise"))
    x_new = torch.rand(NEW_POINTS, 1, generator=generator(data_seed, "new-x")) * 2 - 1
    noise_new = torch.randn(NEW_POINTS, 1, generator=generator(data_seed, "new-noise"))
    return Data(x=x, y=truth(x) + cfg.noise_std * noise, y_test=truth(x) + cfg.noise_std * noise_test,
                x_new=x_new, y_new=truth(x_new) + cfg.noise_std * noise_new)


def layer_dims(cfg: TrialConfig) -> list[int]:
    """[1, width, ..., width, 1]: depth hidden layers, depth + 1 linear maps."""
    return [1] + [cfg.width] * cfg.depth + [1]


def init_params(cfg: TrialConfig, stream: str = "init") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """PyTorch's nn.Linear default init, drawn from one named stream.

    Returns [(W (in, out), b (out,))] per linear map; W is stored input-major so the
    forward pass is x @ W + b. Depends on (init seed, stream, width, depth) only.
    """
    g = generator(cfg.stream_seed("init"), stream)
    params = []
    dims = layer_dims(cfg)
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        bound = 1.0 / fan_in**0.5  # kaiming_uniform(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), ..)
        w = (torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
        params.append((w.t().contiguous(), b))
    return params


def fit_grid() -> torch.Tensor:
    """(FIT_GRID_POINTS, 1) inputs where the fitted curves are drawn."""
    return torch.linspace(-1.0, 1.0, FIT_GRID_POINTS).unsqueeze(1)
