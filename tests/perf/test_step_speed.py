"""Training-step speed of the engines and of the seed's own loop (pytest-benchmark).

Default runs (``--benchmark-disable``, set in pyproject.toml) execute every case once
with a few steps, so the suite cannot rot; nothing here asserts a time. Timed runs record
each engine's same-run ratio to the seed loop and its fraction of this machine's limit
(perf/roofline.py) in ``extra_info``. Group sizes here are the budget rule's
(``default_group_size``), never tuned, so a case means the same thing on every machine. Timed
runs and the regression workflow are described in bench/README.md:

    python -m pytest tests/perf --benchmark-enable --benchmark-autosave
    python -m pytest tests/perf --benchmark-enable --benchmark-compare --benchmark-compare-fail=median:10%
"""
import pytest
import torch

from bench import TrialConfig
from bench.trial import default_group_size
from perf.roofline import measure_roofline
from perf.steppers import engine_stepper, reference_stepper, same_run_ratio

WIDTHS = (100, 300, 1000)
TIMED_STEPS = 20     # steps per round when timing: rounds of roughly 10-200 ms
DISABLED_STEPS = 2   # steps of the single untimed run in CI
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device on this machine")]),
]


def _arms(engine: str, device: str, width: int) -> int:
    if engine == "batched":  # the default group, but at least 2 so the stacking is exercised
        return max(2, default_group_size(device, width))
    return 1


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("engine", ["reference", "single", "batched"])
@pytest.mark.parametrize("device", DEVICES)
def test_training_steps(benchmark, device, engine, width, dropout):
    steps = TIMED_STEPS if benchmark.enabled else DISABLED_STEPS
    cfg = TrialConfig(width=width, device=device)
    arms = _arms(engine, device, width)
    if engine == "reference":
        run = reference_stepper(cfg, dropout=dropout, steps=steps)
    else:
        run = engine_stepper(cfg, arms, dropout=dropout, steps=steps)
    benchmark.extra_info.update({
        "device": device, "threads": torch.get_num_threads(), "group_size": arms, "torch": torch.__version__,
        "width": width, "dropout": cfg.dropout if dropout else 0.0, "steps_per_round": steps,
        "arm_steps_per_round": arms * steps,
    })
    loss = benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
    assert loss.shape == (arms,) and torch.isfinite(loss).all()
    if benchmark.enabled and engine != "reference":
        # the noise-robust figures: engine vs the seed loop, alternating, in this session; and
        # the engine's fraction of this machine's limit (products and Adam alone) at its group size
        ref = reference_stepper(cfg, dropout=dropout, steps=steps)
        ref()
        ratio = same_run_ratio(run, arms * steps, ref, steps)
        limit = measure_roofline(cfg, arms)["limit_s_per_arm_step"]
        benchmark.extra_info.update(ratio, limit_s_per_arm_step=limit,
                                    roofline_fraction=limit / ratio["engine_s_per_arm_step"])
