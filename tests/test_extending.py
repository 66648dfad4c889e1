"""An arm and a task added outside the package (tests/extending/toy_plugin.py) run end to end:
a sweep on local worker processes, then a report from a fresh process, with no production
file touched. The recipe is docs/extending.md."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
PLUGIN_DIR = HERE / "extending"
SPEC = """
name = "toy"
plugins = ["toy_plugin"]
seeds = 4
arms = ["plain", "dropout", "l1"]
[base]
task = "cubic1d"
width = 16
steps = 40
eval_every = 10
n_train = 12
[grid]
dropout = [0.2, 0.5]
l1 = [0.0001, 0.01]
[execution]
workers = 2
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
           "DROPOUT_BENCH_TUNE": "0"}
    env.pop("DROPOUT_BENCH_PLUGINS", None)   # found from the spec, not inherited from this process
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.slow
def test_a_toy_arm_and_task_run_through_a_sweep_and_a_report(tmp_path):
    (tmp_path / "toy.toml").write_text(SPEC)
    out = tmp_path / "out"
    proc = _run("sweep", str(tmp_path / "toy.toml"), "--out", str(out), "--backend", "local", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 16 and (trials["status"] == "ok").all()
    assert set(trials["task"]) == {"cubic1d"} and set(trials["l1"]) == {0.0001, 0.01}
    assert trials["test_mse_l1"].notna().all()
    # the penalty reaches the gradient: the two lambdas train different nets on the same seed
    by = trials.groupby(["seed", "dropout"])["test_mse_l1"].nunique()
    assert (by == 2).all()
    # a fresh process writes the report: it finds the plugin from the stored spec
    (out / "report.md").unlink()
    proc = _run("report", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (out / "report.md").read_text()
    assert "an L1 penalty" in page and "lambda * sign(theta)" in page   # the arm's label and method
    assert "oracle x^3" in page                                           # the task's known answer


def test_a_missing_plugin_is_one_line(tmp_path):
    (tmp_path / "toy.toml").write_text(SPEC.replace("toy_plugin", "no_such_plugin"))
    proc = _run("sweep", str(tmp_path / "toy.toml"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode != 0
    assert "plugins: plugin 'no_such_plugin' cannot be imported" in proc.stderr
    assert "Traceback" not in proc.stderr
