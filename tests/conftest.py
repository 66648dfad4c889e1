import os
import signal

import pytest
import torch

# One thread per process, as the sweeps use: results below are compared bit for bit.
torch.set_num_threads(1)
# No test measures this machine to choose a group size (perf.tune), nor writes the user's cache:
# "auto" takes the budget rule; tests/test_tune.py covers the tuner with a fake clock. Subprocesses inherit it.
os.environ["DROPOUT_BENCH_TUNE"] = "0"

# A suite started in the background by a non-interactive shell (`bash .ci/run &`) inherits
# SIGINT ignored, and so would every process it starts: the Ctrl-C tests would send a
# signal nobody hears. Python's own handler here means children start with the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Likewise a suite started under nohup inherits SIGHUP ignored, and a driver keeps an ignored
# SIGHUP ignored (sweeps.signals: nohup means it): the SIGHUP tests need the default here.
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def small():
    """A small, fast config (seconds, not minutes) with the seed's structure."""
    from bench import TrialConfig
    return TrialConfig(width=32, steps=60, eval_every=10)
