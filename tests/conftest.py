import pytest
import torch

# One thread per process, as the sweeps use: results below are compared bit for bit.
torch.set_num_threads(1)


@pytest.fixture
def small():
    """A small, fast config (seconds, not minutes) with the seed's structure."""
    from bench import TrialConfig
    return TrialConfig(width=32, steps=60, eval_every=10)
