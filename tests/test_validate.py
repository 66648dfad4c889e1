"""The engine is the tutorial's experiment: a paired equivalence check that can see a bias,
the tutorial's loop as written, and a validation run that resumes after a kill."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats as sps

from analysis.numbers.validation import equivalence_table
from bench import TrialConfig
from bench.validate import tutorial_trial, validation_rows
from sweep_helpers import kill_group, wait_until

# A config that still overfits (plain train MSE about half its test MSE) and trains in
# ~0.05 s per arm: on it the engine and the reference loop with the engine's masks agree
# per seed to ~1e-5 (rounding), while a 5% change of the engine's learning rate moves
# their mean difference by 0.2-0.7% of the mean and its per-seed SD to ~4%.
CHECK = TrialConfig(width=32, steps=150)
SEEDS = range(200)
MARGIN = 0.001   # 0.1% of the reference mean: about 8 per-seed rounding SDs (measured 1.4e-5 of 0.118)


@pytest.fixture(scope="module")
def rows():
    torch.set_num_threads(1)
    return validation_rows(CHECK, SEEDS, sources=("engine", "masked"))


def test_the_engine_equals_the_reference_loop_with_the_same_masks(rows):
    table = equivalence_table(rows, rel_margin=MARGIN)
    assert len(table) == 4 and set(table["comparison"]) == {"engine vs reference loop, same masks"}
    assert (table["verdict"] == "equivalent").all(), table[["metric", "diff", "margin", "p_tost"]]
    plain = np.array([r["engine"]["plain_train_mse"] for r in rows])
    test = np.array([r["engine"]["plain_test_mse"] for r in rows])
    assert plain.mean() < 0.6 * test.mean()  # the check's config still overfits


def test_the_check_sees_a_five_percent_learning_rate_bias():
    torch.set_num_threads(1)
    biased = validation_rows(CHECK, SEEDS, sources=("engine", "masked"), engine_lr_scale=1.05)
    table = equivalence_table(biased, rel_margin=MARGIN)
    assert (table["verdict"] != "equivalent").all(), table[["metric", "diff", "margin", "p_tost"]]


def test_the_table_is_scipys_and_statsmodels(rows):
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    table = equivalence_table(rows, rel_margin=0.02).set_index("metric")
    a = np.array([r["engine"]["plain_test_mse"] for r in rows])
    b = np.array([r["masked"]["plain_test_mse"] for r in rows])
    row = table.loc["plain_test_mse"]
    m = 0.02 * b.mean()
    assert row["margin"] == pytest.approx(m)
    assert row["p_tost"] == pytest.approx(ttost_paired(a, b, -m, m)[0], rel=1e-6, abs=1e-300)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(sps.ttest_1samp(a - b, 0).confidence_interval())
    # the unpaired comparison: Welch's interval and statsmodels' TOST
    fake = [dict(r, tutorial={k: v * 1.01 for k, v in r["masked"].items()}) for r in rows]
    t = equivalence_table(fake).set_index(["comparison", "metric"]).loc[("engine vs tutorial loop", "plain_test_mse")]
    c = b * 1.01
    sd = np.sqrt((a.var(ddof=1) + c.var(ddof=1)) / 2)
    assert t["p_tost"] == pytest.approx(ttost_ind(a, c, -0.2 * sd, 0.2 * sd, usevar="unequal")[0])
    assert (t["ci_low"], t["ci_high"]) == pytest.approx(sps.ttest_ind(a, c, equal_var=False).confidence_interval())


TUTORIAL = """
import torch
N_SAMPLES = 20
N_HIDDEN = 300
x = torch.unsqueeze(torch.linspace(-1, 1, N_SAMPLES), 1)
y = x + 0.3*torch.normal(torch.zeros(N_SAMPLES, 1), torch.ones(N_SAMPLES, 1))
test_x = torch.unsqueeze(torch.linspace(-1, 1, N_SAMPLES), 1)
test_y = test_x + 0.3*torch.normal(torch.zeros(N_SAMPLES, 1), torch.ones(N_SAMPLES, 1))
net_overfitting = torch.nn.Sequential(
    torch.nn.Linear(1, N_HIDDEN),
    torch.nn.ReLU(),
    torch.nn.Linear(N_HIDDEN, N_HIDDEN),
    torch.nn.ReLU(),
    torch.nn.Linear(N_HIDDEN, 1),
)
net_dropped = torch.nn.Sequential(
    torch.nn.Linear(1, N_HIDDEN),
    torch.nn.Dropout(0.5),
    torch.nn.ReLU(),
    torch.nn.Linear(N_HIDDEN, N_HIDDEN),
    torch.nn.Dropout(0.5),
    torch.nn.ReLU(),
    torch.nn.Linear(N_HIDDEN, 1),
)
optimizer_ofit = torch.optim.Adam(net_overfitting.parameters(), lr=0.01)
optimizer_drop = torch.optim.Adam(net_dropped.parameters(), lr=0.01)
loss_func = torch.nn.MSELoss()
for t in range(STEPS):
    pred_ofit = net_overfitting(x)
    pred_drop = net_dropped(x)
    loss_ofit = loss_func(pred_ofit, y)
    loss_drop = loss_func(pred_drop, y)
    optimizer_ofit.zero_grad()
    optimizer_drop.zero_grad()
    loss_ofit.backward()
    loss_drop.backward()
    optimizer_ofit.step()
    optimizer_drop.step()
net_overfitting.eval()
net_dropped.eval()
result = [loss_func(net_overfitting(x), y).item(), loss_func(net_overfitting(test_x), test_y).item(),
          loss_func(net_dropped(x), y).item(), loss_func(net_dropped(test_x), test_y).item()]
"""


def test_the_tutorial_loop_is_the_tutorials_code():
    """The seed's own lines (plotting and evaluation every 10 steps left out: they draw no
    random numbers), run after torch.manual_seed(seed), give the same numbers bit for bit."""
    torch.set_num_threads(1)
    for seed in (0, 7):
        torch.manual_seed(seed)
        scope = {"STEPS": 60}
        exec(TUTORIAL, scope)
        ours = tutorial_trial(TrialConfig(seed=seed, steps=60))
        assert [ours[k] for k in ("plain_train_mse", "plain_test_mse", "dropout_train_mse",
                                  "dropout_test_mse")] == scope["result"]


def _cli(out, seeds, *extra):
    return [sys.executable, "-m", "sweeps.cli", "validate", "--width", "32", "--steps", "150",
            "--seeds", str(seeds), "--out", str(out), "--quiet", *extra]


def test_a_killed_validation_resumes_to_the_same_rows(tmp_path):
    out = tmp_path / "v"
    proc = subprocess.Popen(_cli(out, 24), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    rows = out / "validation.jsonl"
    assert wait_until(lambda: rows.exists() and rows.read_text().count("\n") >= 4, timeout=240, proc=proc)
    kill_group(proc)                              # SIGKILL to the driver and its workers
    stored = rows.read_text().count("\n")
    assert 4 <= stored < 24                       # killed mid-run
    with open(rows, "a") as f:
        f.write('{"seed": 23, "engine": {"plain_tr')   # a torn line, as a kill mid-write leaves
    done = subprocess.run(_cli(out, 24), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(x) for x in rows.read_text().splitlines()]
    assert sorted(r["seed"] for r in lines) == list(range(24))   # each seed once, the torn line gone
    again = validation_rows(CHECK, range(24))
    by_seed = {r["seed"]: r for r in lines}
    assert [by_seed[s] for s in range(24)] == again               # bit-identical to one unbroken run
    assert "| engine vs reference loop, same masks" in done.stdout
    assert (out / "validation.json").exists() and (out / "validation.md").exists()


def test_another_setup_in_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "v"
    assert subprocess.run(_cli(out, 3, "--no-tutorial"), capture_output=True, timeout=300).returncode == 0
    other = subprocess.run(_cli(out, 3, "--no-tutorial", "--lr", "0.02"), capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 2
    assert "holds a validation of another setup" in other.stderr and other.stderr.count("\n") == 1
