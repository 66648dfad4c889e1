"""The tasks and the networks' initial weights, drawn from the trial's named streams.

Every task is one ``Task`` in ``TASKS`` below: its inputs, its truth f (where known), its noise
floor, its known-answer predictors, its test rows and its data maker. The config's checks,
the data and the report ask it; nothing else names a task. Each task's data are a function
of (data seed, task settings) only:

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

bench.config asks ``TASKS`` to check a config, so this module imports no torch (nor
bench.config) at load time: torch is imported inside the functions that draw.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    import torch

FIT_GRID_POINTS = 101  # x values in [-1, 1] where fitted curves are recorded (1-input tasks)
NEW_POINTS = 200       # fresh inputs from the task's input distribution, where error at new inputs is measured
FRIEDMAN_MEAN = 14.413297342419856   # E[f] for x ~ U(0, 1)^5 (numerical integration, tests/test_tasks.py)
FRIEDMAN_SD = 4.881235885652424      # SD[f] over the same distribution

Config = Any   # a bench.config.TrialConfig (which imports this module, so it is not imported here)


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
    rows_train: Optional[torch.Tensor] = None   # a data set's rows used for training
    rows_test: Optional[torch.Tensor] = None    # its held-out test rows (disjoint)

    @property
    def same_x(self) -> bool:
        """True when the test inputs are the training inputs (every synthetic task)."""
        return self.x_test is self.x


@dataclass(frozen=True)
class Task:
    """One task: what the config checks, the data maker draws and the report says of it."""
    name: str                        # TrialConfig.task
    label: str                       # in words, for a reader
    make: Callable[[Config], Data]   # the config's data (depends on the data seed and task settings only)
    inputs: int = 1                  # inputs when n_features is 0 (the task's own)
    min_inputs: int = 1              # n_features allowed: 0, or min_inputs to max_inputs
    max_inputs: int = 1
    inputs_rule: str = ""            # the one line a bad n_features gets
    truth: Optional[Callable[[torch.Tensor], torch.Tensor]] = None  # f: (m, d) -> (m, 1); None: real labels
    noise_known: bool = True         # sigma^2 is the noise floor (our noise_std); not on real labels
    linear: bool = False             # f is a line: the least-squares line is the correctly specified model
    predictors: tuple[tuple[str, str], ...] = ()   # known-answer predictors (analysis.numbers.known_answers): name, label
    rows: int = 0                    # rows of a finite data set; 0: synthetic (test at the training x)
    test_rows: int = 0               # held-out rows when test_size is 0 (data sets only)

    @property
    def one_input(self) -> bool:
        """Every config of the task has one input, so its fitted curve is a picture."""
        return self.max_inputs == 1

    @property
    def predictor_labels(self) -> dict[str, str]:
        return dict(self.predictors)

    def input_dim(self, n_features: int) -> int:
        return n_features or self.inputs


def truth(x: torch.Tensor, task: str = "toy1d") -> Optional[torch.Tensor]:
    """The noise-free target f(x) of a synthetic task, (m, 1); None without a known f (real data)."""
    kind = TASKS.get(task)
    return None if kind is None or kind.truth is None else kind.truth(x)


def make_data(cfg: Config) -> Data:
    """Depends on (data seed, task, n_train, noise_std, n_features, test_size) only; never on the network.

    Each draw has its own stream, so adding the fresh inputs changed none of the others.
    """
    return TASKS[cfg.task].make(cfg)


def _sine(x: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.sin(torch.pi * x)


def _friedman(x: torch.Tensor) -> torch.Tensor:
    import torch

    f = (10 * torch.sin(torch.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
         + 10 * x[:, 3] + 5 * x[:, 4])
    return ((f - FRIEDMAN_MEAN) / FRIEDMAN_SD).unsqueeze(1)


def _on_grid(cfg: Config) -> Data:
    """One input: the training x evenly spaced on [-1, 1], fresh x uniform on it."""
    import torch

    from .rng import generator

    x = torch.linspace(-1.0, 1.0, cfg.n_train).unsqueeze(1)
    x_new = torch.rand(NEW_POINTS, 1, generator=generator(cfg.stream_seed("data"), "new-x")) * 2 - 1
    return _with_noise(cfg, x, x_new)


def _in_unit_cube(cfg: Config) -> Data:
    """d inputs uniform on [0, 1]^d, training and fresh."""
    import torch

    from .rng import generator

    n, d, data_seed = cfg.n_train, cfg.input_dim, cfg.stream_seed("data")
    x = torch.rand(n, d, generator=generator(data_seed, "train-x"))
    x_new = torch.rand(NEW_POINTS, d, generator=generator(data_seed, "new-x"))
    return _with_noise(cfg, x, x_new)


def _with_noise(cfg: Config, x: torch.Tensor, x_new: torch.Tensor) -> Data:
    """f plus noise_std * N(0, 1) at the training x (twice: train, test) and at the fresh x."""
    import torch

    from .rng import generator

    n, data_seed = cfg.n_train, cfg.stream_seed("data")
    noise = torch.randn(n, 1, generator=generator(data_seed, "train-noise"))
    noise_test = torch.randn(n, 1, generator=generator(data_seed, "test-noise"))
    noise_new = torch.randn(NEW_POINTS, 1, generator=generator(data_seed, "new-noise"))
    f_x, f_new = truth(x, cfg.task), truth(x_new, cfg.task)
    return Data(x=x, y=f_x + cfg.noise_std * noise, x_test=x, y_test=f_x + cfg.noise_std * noise_test,
                x_new=x_new, y_new=f_new + cfg.noise_std * noise_new, f_x=f_x, f_new=f_new)


@lru_cache(maxsize=1)
def diabetes_table() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's diabetes data, unscaled: inputs (442, 10) and target (442,), float64."""
    import torch
    from sklearn.datasets import load_diabetes  # a file inside the scikit-learn package

    raw = load_diabetes(scaled=False)
    return torch.from_numpy(raw.data).double(), torch.from_numpy(raw.target).double()


def _diabetes(cfg: Config) -> Data:
    """A per-seed split of the diabetes rows; standardised with the training rows' statistics only."""
    import torch

    from .rng import generator

    inputs, target = diabetes_table()
    order = torch.randperm(len(target), generator=generator(cfg.stream_seed("data"), "diabetes-split"))
    test_rows = cfg.test_size or TASKS[cfg.task].test_rows
    train, test = order[:cfg.n_train], order[cfg.n_train:cfg.n_train + test_rows]
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


def validation_rows(cfg: Config) -> torch.Tensor:
    """(n_train,) bool: the training points the early_stop arm holds out (``cfg.n_val`` of them).

    Drawn from the data seed's own stream "early-stop-split": the same points for every
    network and rate of a seed, and no other draw changes.
    """
    import torch

    from .rng import generator

    perm = torch.randperm(cfg.n_train, generator=generator(cfg.stream_seed("data"), "early-stop-split"))
    held = torch.zeros(cfg.n_train, dtype=torch.bool)
    held[perm[:cfg.n_val]] = True
    return held


def layer_dims(cfg: Config) -> list[int]:
    """[d, width, ..., width, 1]: d inputs, depth hidden layers, depth + 1 linear maps."""
    return [cfg.input_dim] + [cfg.width] * cfg.depth + [1]


def init_params(cfg: Config, stream: str = "init") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """PyTorch's nn.Linear default init, drawn from one named stream.

    Returns [(W (in, out), b (out,))] per linear map; W is stored input-major so the
    forward pass is x @ W + b. Depends on (init seed, stream, width, depth) only.
    """
    import torch

    from .rng import generator

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
    import torch

    return torch.linspace(-1.0, 1.0, FIT_GRID_POINTS).unsqueeze(1)


def one_input_task(name: str, label: str, f: Callable, **facts: Any) -> Task:
    """A task on one input: training x evenly spaced on [-1, 1], y = f(x) + noise_std * N(0, 1),
    fresh x uniform on [-1, 1]; ``facts``: any other Task field (linear, predictors, ...)."""
    return Task(name=name, label=label, make=_on_grid, truth=f,
                inputs_rule=f"the {name} task has one input: leave it 0 (or 1)", **facts)


# Every task, in the order the config's message lists them. Adding a task is one entry here
# (or, outside the package, register_task in a plugin module: bench.plugins).
TASKS: dict[str, Task] = {t.name: t for t in (
    one_input_task("toy1d", "y = x + noise on [-1, 1]", lambda x: x, linear=True,
               predictors=(("oracle", "oracle y = x"), ("least_squares", "least-squares line"))),
    one_input_task("sine1d", "y = sin(pi x) + noise on [-1, 1]", _sine,
               predictors=(("oracle", "oracle sin(pi x)"), ("least_squares", "least-squares line"))),
    Task("friedman1", "Friedman #1, standardised, + noise", _in_unit_cube, inputs=10, min_inputs=5,
         max_inputs=100, inputs_rule="friedman1 needs 5 to 100 inputs (5 informative; 0: 10)", truth=_friedman,
         predictors=(("oracle", "oracle f"), ("least_squares", "least-squares linear fit"))),
    Task("diabetes", "scikit-learn's diabetes data (real labels)", _diabetes, inputs=10, min_inputs=1,
         max_inputs=10, inputs_rule="diabetes has 10 inputs: use 1-10 (its first k), or 0 for all",
         noise_known=False, rows=442, test_rows=142,
         predictors=(("least_squares", "least-squares linear fit"), ("ridge", "ridge (RidgeCV)"))),
)}


def register_task(task: Task) -> Task:
    """Add a task defined outside the package (in a plugin module, bench.plugins). Registering the
    same task again (a module imported twice) is a no-op."""
    if TASKS.get(task.name) == task:
        return task
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already defined")
    TASKS[task.name] = task
    return task


def task_of(name: str) -> Optional[Task]:
    """The task called ``name``, plugins loaded first where it is not (yet) known; None if none is."""
    if name not in TASKS:
        from .plugins import load_plugins
        load_plugins()
    return TASKS.get(name)
