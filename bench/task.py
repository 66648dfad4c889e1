"""The tasks and the networks' initial weights, drawn from the trial's named streams.

Tasks (``TrialConfig.task``), each a function of (data seed, task settings) only:

- ``toy1d``: y = x + noise at x = linspace(-1, 1, n_train) (the seed tutorial's task);
- ``sine1d``: y = sin(pi x) + noise at the same x (a curved truth);
- ``friedman1``: Friedman's (1991) benchmark, x ~ U(0, 1)^d (d = n_features, default 10, of which
  the first 5 matter), f = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5, standardised
  by its exact mean and standard deviation over that input distribution (``FRIEDMAN_MEAN``,
  ``FRIEDMAN_SD``) so that ``noise_std`` means what it means on the other tasks (Friedman's own
  sigma = 1 is noise_std ~ 0.2);
- ``diabetes``: scikit-learn's bundled diabetes data (442 patients, 10 inputs, no download): a
  per-seed random split into n_train training rows and ``test_size`` held-out rows (default
  142), inputs and target standardised with the training rows' mean and SD only. No known f
  and no label noise of ours (``noise_std`` is not used).

On the synthetic tasks the test set is the training x with fresh noise (as in the tutorial)
and the truth f is known, so excess risk and fresh-input errors are defined; on diabetes the
test set is the held-out rows and those are NaN. Everything here is drawn on the CPU in
float32 and moved to the device afterwards, so data and initial weights are bit-identical
on every device.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import torch

from .config import DIABETES_TEST_SIZE, TrialConfig
from .rng import generator

FIT_GRID_POINTS = 101  # x values in [-1, 1] where fitted curves are recorded (1-input tasks)
NEW_POINTS = 200       # fresh inputs from the task's input distribution, where error at new inputs is measured
FRIEDMAN_MEAN = 14.413297342419856   # E[f] for x ~ U(0, 1)^5 (numerical integration, tests/test_tasks.py)
FRIEDMAN_SD = 4.881235885652424      # SD[f] over the same distribution


def truth(x: torch.Tensor, task: str = "toy1d") -> Optional[torch.Tensor]:
    """The noise-free target f(x) of a synthetic task, (m, 1); None for diabetes (real data)."""
    if task == "toy1d":
        return x
    if task == "sine1d":
        return torch.sin(torch.pi * x)
    if task == "friedman1":
        f = (10 * torch.sin(torch.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
             + 10 * x[:, 3] + 5 * x[:, 4])
        return ((f - FRIEDMAN_MEAN) / FRIEDMAN_SD).unsqueeze(1)
    return None


@dataclass(frozen=True)
class Data:
    x: torch.Tensor                  # (n, d) training inputs
    y: torch.Tensor                  # (n, 1) training targets
    x_test: torch.Tensor             # (t, d) test inputs: the training x (synthetic tasks) or held-out rows
    y_test: torch.Tensor             # (t, 1) test targets: f(x) + fresh noise, or the held-out rows' targets
    x_new: Optional[torch.Tensor]    # (NEW_POINTS, d) fresh inputs (stream "new-x"); None without a known f
    y_new: Optional[torch.Tensor]    # (NEW_POINTS, 1) f(x_new) + noise (stream "new-noise")
    f_x: Optional[torch.Tensor]      # (n, 1) f at the training x; None without a known f
    f_new: Optional[torch.Tensor]    # (NEW_POINTS, 1) f at x_new
    rows_train: Optional[torch.Tensor] = None   # diabetes: the data set's rows used for training
    rows_test: Optional[torch.Tensor] = None    # diabetes: its held-out test rows (disjoint)

    @property
    def same_x(self) -> bool:
        """True when the test inputs are the training inputs (every synthetic task)."""
        return self.x_test is self.x


def make_data(cfg: TrialConfig) -> Data:
    """Depends on (data seed, task, n_train, noise_std, n_features, test_size) only; never on the network.

    Each draw has its own stream, so adding the fresh inputs changed none of the others.
    """
    if cfg.task == "diabetes":
        return _diabetes(cfg)
    n, d, data_seed = cfg.n_train, cfg.input_dim, cfg.stream_seed("data")
    if cfg.task == "friedman1":
        x = torch.rand(n, d, generator=generator(data_seed, "train-x"))
        x_new = torch.rand(NEW_POINTS, d, generator=generator(data_seed, "new-x"))
    else:
        x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
        x_new = torch.rand(NEW_POINTS, 1, generator=generator(data_seed, "new-x")) * 2 - 1
    noise = torch.randn(n, 1, generator=generator(data_seed, "train-noise"))
    noise_test = torch.randn(n, 1, generator=generator(data_seed, "test-noise"))
    noise_new = torch.randn(NEW_POINTS, 1, generator=generator(data_seed, "new-noise"))
    f_x, f_new = truth(x, cfg.task), truth(x_new, cfg.task)
    return Data(x=x, y=f_x + cfg.noise_std * noise, x_test=x, y_test=f_x + cfg.noise_std * noise_test,
                x_new=x_new, y_new=f_new + cfg.noise_std * noise_new, f_x=f_x, f_new=f_new)


@lru_cache(maxsize=1)
def diabetes_table() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's diabetes data, unscaled: inputs (442, 10) and target (442,), float64."""
    from sklearn.datasets import load_diabetes  # a file inside the scikit-learn package

    raw = load_diabetes(scaled=False)
    return torch.from_numpy(raw.data).double(), torch.from_numpy(raw.target).double()


def _diabetes(cfg: TrialConfig) -> Data:
    """A per-seed split of the diabetes rows; standardised with the training rows' statistics only."""
    inputs, target = diabetes_table()
    order = torch.randperm(len(target), generator=generator(cfg.stream_seed("data"), "diabetes-split"))
    train, test = order[:cfg.n_train], order[cfg.n_train:cfg.n_train + (cfg.test_size or DIABETES_TEST_SIZE)]
    X = inputs[:, :cfg.input_dim]
    mu, sd = X[train].mean(0), X[train].std(0, unbiased=False)
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))   # a constant column in a small sample
    y_mu, y_sd = target[train].mean(), target[train].std(unbiased=False)
    y_sd = y_sd if y_sd > 0 else torch.ones_like(y_sd)

    def x_of(rows: torch.Tensor) -> torch.Tensor:
        return ((X[rows] - mu) / sd).float()

    def y_of(rows: torch.Tensor) -> torch.Tensor:
        return ((target[rows] - y_mu) / y_sd).float().unsqueeze(1)

    return Data(x=x_of(train), y=y_of(train), x_test=x_of(test), y_test=y_of(test), x_new=None, y_new=None,
                f_x=None, f_new=None, rows_train=train, rows_test=test)


def validation_rows(cfg: TrialConfig) -> torch.Tensor:
    """(n_train,) bool: the training points the early_stop arm holds out (``cfg.n_val`` of them).

    Drawn from the data seed's own stream "early-stop-split": the same points for every
    network and rate of a seed, and no other draw changes.
    """
    perm = torch.randperm(cfg.n_train, generator=generator(cfg.stream_seed("data"), "early-stop-split"))
    held = torch.zeros(cfg.n_train, dtype=torch.bool)
    held[perm[:cfg.n_val]] = True
    return held


def layer_dims(cfg: TrialConfig) -> list[int]:
    """[d, width, ..., width, 1]: d inputs, depth hidden layers, depth + 1 linear maps."""
    return [cfg.input_dim] + [cfg.width] * cfg.depth + [1]


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
