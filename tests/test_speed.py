"""The engine's speed shortcuts keep exact semantics, the speed report is well formed, the peers
train what the engine trains, and the roofline and profile count what they say they count."""
import pytest
import torch

from bench import TrialConfig, dropout_arm, plain_arm
from bench.engine import ENGINE_REVISION, DropoutMasks, FusedAdam, _Stack, _Workspace, forward_backward


@pytest.fixture(autouse=True)
def no_tuning(tmp_path, monkeypatch):
    """These tests time nothing: a group size they do not give comes from the budget rule."""
    monkeypatch.setenv("DROPOUT_BENCH_TUNE", "0")
    monkeypatch.setenv("DROPOUT_BENCH_CACHE_DIR", str(tmp_path))


def test_direct_fused_adam_equals_torch_optim_adam_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(1000, generator=g)
    ours, grad = flat.clone(), torch.zeros(1000)
    theirs = flat.clone().requires_grad_()
    opt_ours, opt_theirs = FusedAdam(ours, grad, lr=0.01), torch.optim.Adam([theirs], lr=0.01, fused=True)
    for _ in range(5):
        step_grad = torch.randn(1000, generator=g)
        grad.copy_(step_grad)
        theirs.grad = step_grad.clone()
        opt_ours.step()
        opt_theirs.step()
    assert torch.equal(ours, theirs.detach())


def test_reused_workspace_gives_the_same_pass_as_a_fresh_one():
    cfgs = [TrialConfig(seed=s, width=24, n_train=9) for s in range(3)]
    arms = [dropout_arm(cfgs[0].replace(dropout=0.4)), plain_arm(cfgs[1]), plain_arm(cfgs[2])]
    dev = torch.device("cpu")
    st = _Stack(arms, dev)
    masks = DropoutMasks(arms[:1], 9, 24, 2, steps=3, device=dev)
    X = torch.linspace(-1, 1, 9).view(1, 9, 1).repeat(3, 1, 1)
    Y = torch.randn(3, 9, 1, generator=torch.Generator().manual_seed(1))
    work = _Workspace(3, 9, 24, 2, dev)
    forward_backward(st.params, st.grads, X, Y, masks, 0, work)      # leaves step 0 in the buffers
    reused_loss = forward_backward(st.params, st.grads, X, Y, masks, 2, work)
    reused_grads = [t.clone() for t in st.grads]
    fresh_loss = forward_backward(st.params, st.grads, X, Y, masks, 2)
    assert torch.equal(reused_loss, fresh_loss)
    assert all(torch.equal(a, b) for a, b in zip(reused_grads, st.grads))


def test_speed_report_times_every_engine_against_the_same_run_reference():
    from perf.speed import format_speed, measure_speed

    report = measure_speed(TrialConfig(width=8, steps=6, eval_every=3), trials=3, reference_trials=1,
                           single_trials=2, group_size=2, peers=True)
    rows = report["engines"]
    assert list(rows) == ["reference", "single", "batched"]
    assert rows["reference"]["vs_reference"] == 1.0
    assert rows["batched"]["trials"] == 3 and rows["batched"]["arm_steps_per_s"] == 3 * 12 / rows["batched"]["seconds"]
    assert report["batched_equals_single"] is True and report["group_size"] == 2
    assert report["group_size_choice"] == {"group_size": 2, "source": "given"}
    assert {"cpu", "cpu_count", "torch", "device"} <= set(report["machine"])
    assert report["machine"]["engine_revision"] == ENGINE_REVISION
    steps = report["steps"]
    limit = steps["roofline"]["limit_arm_steps_per_s"]
    assert rows["batched"]["roofline_fraction"] == rows["batched"]["arm_steps_per_s"] / limit
    assert list(steps["rows"]) == ["reference", "single", "batched", "stacked_autograd", "func_ensemble", "limit"]
    racer = steps["rows"]["limit"]
    assert racer["label"] == f"limit: products and Adam alone (group {steps['roofline']['at_group_size']})"
    for row in steps["rows"].values():
        assert row["vs_reference"] == steps["rows"]["reference"]["s_per_arm_step"] / row["s_per_arm_step"]
        assert row["roofline_fraction"] == steps["roofline"]["limit_s_per_arm_step"] / row["s_per_arm_step"]
        assert row["same_rounds_fraction"] == racer["s_per_arm_step"] / row["s_per_arm_step"]
    assert racer["same_rounds_fraction"] == 1.0
    assert set(steps["roofline"]["by_group_size"]) == {"1", "2"}
    assert set(steps["profile"]["s_per_step"]) == {"matmuls", "adam", "masks", "other ops"}
    text = format_speed(report)
    assert "reference loop" in text and "batched engine (group 2)" in text and "bit for bit: yes" in text
    assert "of limit" in text and "torch.func ensemble" in text and "group size: 2 arm(s) (given)" in text
    assert "of limit racer" in text and "limit: products and Adam alone" in text


@pytest.mark.parametrize("depth, inputs, per_step", [(3, 1, {"aten::baddbmm": 2, "aten::bmm": 4}),
                                                     (1, 3, {"aten::baddbmm": 1, "aten::bmm": 1})])
def test_the_limit_racer_runs_a_steps_products_and_one_adam_step_per_step(depth, inputs, per_step):
    """Exactly the kernels measure_roofline times apart: matmul_shapes' products, then Adam."""
    from torch.profiler import profile

    from perf.roofline import limit_stepper, matmul_shapes

    task = {"task": "toy1d"} if inputs == 1 else {"task": "diabetes", "n_features": inputs}
    cfg = TrialConfig(width=8, depth=depth, n_train=5, **task)
    run, arm_steps = limit_stepper(cfg, 2, steps=3)
    assert arm_steps == 2 * 3
    with profile() as prof:
        run()
    counts = {e.key: e.count for e in prof.key_averages()}
    assert {k: counts.get(k, 0) // 3 for k in per_step} == per_step
    assert sum(p["count"] for p in matmul_shapes(cfg, 2)) == sum(per_step.values())
    assert counts["aten::_fused_adam_"] == 3


def test_speed_refuses_bad_input_with_one_line():
    from bench import ConfigError
    from perf.speed import measure_speed

    for kwargs, field in (({"trials": 0}, "trials=0"), ({"workers": -1}, "workers=-1"),
                          ({"group_size": 0}, "group_size=0"), ({"threads": 0}, "threads=0")):
        with pytest.raises(ConfigError, match=field):
            measure_speed(TrialConfig(width=8, steps=2), **kwargs)
    with pytest.raises(ConfigError, match="device"):
        measure_speed(TrialConfig(width=8, steps=2, device="cuda:x"))


def test_default_group_size_keeps_group_state_within_the_cache_budget():
    from bench.trial import default_group_size

    # state per arm: 4 float32 buffers of width*(width+1)*(depth-1) + 3*width + 1 parameters
    assert [default_group_size("cpu", w) for w in (100, 300, 1000)] == [18, 2, 1]
    assert default_group_size("cpu") == 2                       # the seed's architecture
    assert default_group_size("cuda", 300) == 4 * 2**30 // (16 * 91201)
    assert default_group_size("cuda", 8) == 4096                # capped


def test_masks_hashed_in_chunks_equal_masks_hashed_per_step():
    from bench import rng

    arms = [dropout_arm(TrialConfig(seed=s, dropout=r)) for s, r in ((0, 0.5), (4, 0.2))]
    masks = DropoutMasks(arms, 5, 12, 2, steps=7, device=torch.device("cpu"))
    masks.chunk = 3                                     # chunks [0, 3), [3, 6), [6, 7)
    thr = torch.tensor([rng.threshold(0.5), rng.threshold(0.2)], dtype=torch.int16)
    for step in (0, 2, 3, 6, 1):                        # out of order: chunks are rebuilt
        for layer in range(2):
            keys = masks.keys[step].view(2, 2)[layer]
            assert torch.equal(masks.keep(step, layer), rng.keep_mask(keys, thr, 5, 12))


def test_group_buffer_count_by_hand():
    from perf.memory import group_buffer_bytes

    cfg = TrialConfig(width=4, depth=2, n_train=3, steps=5)
    got = group_buffer_bytes(cfg, n_arms=2, n_dropout=1)
    # parameters per arm: (1*4 + 4) + (4*4 + 4) + (4*1 + 1) = 33; 2 arms = 66, padded to 128 floats
    assert got["parameters"] == got["gradients"] == 128 * 4 and got["optimizer_state"] == 2 * 128 * 4
    # workspace, float32: 2 layers' outputs, 2 gradients, 1 scratch of (2, 3, 4); the output's gradient
    # (2, 3, 1); residuals and their squares of all 5 steps, (5, 2, 3, 1) each
    assert got["activations"] == ((2 + 3) * 2 * 3 * 4 + 2 * 3 + 2 * 5 * 2 * 3) * 4
    # keys (5 steps x 2 layers x 1 arm) + 6 pair counters; one chunk of all 5 steps: hash and
    # its scratch, int16 thresholds, float scales; and the chunk's float multipliers (5 x 2 x 1 x 3 x 4)
    assert got["masks"] == (10 + 6) * 4 + 5 * 2 * 1 * (2 * 6 * 4 + 2 + 4) + 5 * 2 * 12 * 4


def test_measured_cpu_peak_of_a_group_is_close_to_its_buffers():
    """Sanity bounds, not the target: the buffers are really there, and nothing holds a second copy."""
    from perf.memory import measure_group_memory

    r = measure_group_memory(TrialConfig(width=300), n_arms=16, steps=3)
    assert 0.8 < r["peak_over_core"] < 2.0, r


@pytest.mark.parametrize("peer", ["stacked_autograd", "func_ensemble"])
def test_a_peer_trains_the_engines_plain_arms(peer):
    """Same data, weights and optimizer: the peers' plain arms follow the engine's to float rounding."""
    from perf.peers import peer_stepper
    from perf.steppers import group_stepper

    cfg = TrialConfig(width=16, n_train=8)
    ours = group_stepper(cfg, 3, n_dropout=0, steps=4)()
    theirs = peer_stepper(peer, cfg, 3, n_dropout=0, steps=4)()
    assert theirs.shape == (3,) and torch.allclose(ours, theirs, rtol=1e-4, atol=1e-7)
    with_dropout = peer_stepper(peer, cfg, 3, n_dropout=2, steps=4)()
    assert torch.equal(with_dropout[2:], theirs[2:]) and not torch.equal(with_dropout[:2], theirs[:2])


def test_roofline_products_and_limit_by_hand():
    from perf.roofline import matmul_shapes, measure_roofline

    cfg = TrialConfig(width=4, depth=3, n_train=5)
    shapes = matmul_shapes(cfg, 2)
    assert [(p["shape"], p["count"]) for p in shapes] == [((2, 5, 4, 4), 2), ((2, 4, 5, 4), 2), ((2, 5, 4, 4), 2)]
    assert matmul_shapes(cfg.replace(depth=1), 2) == []        # one hidden layer: no hidden-to-hidden product
    friedman = matmul_shapes(cfg.replace(task="friedman1", n_features=6), 1)
    assert [p["shape"] for p in friedman[:2]] == [(1, 5, 6, 4), (1, 6, 5, 4)]
    r = measure_roofline(cfg, 2)
    # 3 products of 2 * (5 * 4 * 4) FLOP per arm, per hidden-to-hidden layer (2 of them)
    assert r["matmul_flop_per_arm_step"] == 3 * 2 * 2 * 5 * 4 * 4
    products = sum(p["count"] * p["seconds"] for p in r["products"])
    assert r["limit_s_per_arm_step"] == pytest.approx((products + r["adam"]["seconds"]) / 2, rel=1e-12)
    # parameters per arm: (1*4 + 4) + 2 * (4*4 + 4) + (4 + 1) = 53; 2 arms = 106, padded to 128
    assert r["adam"]["elements"] == 128


def test_profile_puts_mask_work_under_masks_only_where_there_are_masks():
    from perf.roofline import profile_step
    from perf.steppers import group_stepper

    cfg = TrialConfig(width=16, n_train=8)
    plain = profile_step(group_stepper(cfg, 2, n_dropout=0, steps=3), 3)
    masked = profile_step(group_stepper(cfg, 2, n_dropout=1, steps=3), 3)
    assert plain["s_per_step"]["masks"] == 0 and masked["s_per_step"]["masks"] > 0
    assert plain["s_per_step"]["matmuls"] > 0 and plain["s_per_step"]["adam"] > 0
    assert sum(masked["share"].values()) == pytest.approx(1.0)


def test_engine_ab_tool_races_an_engine_against_the_working_tree():
    """Given the working tree's own engine file, the tool finds equal results (on every path it checks)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "tools/engine_ab.py", "bench/engine.py", "--rounds", "1", "--steps", "2",
                          "--width", "8"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert "results equal: yes" in out and "bench/engine.py / working tree:" in out
    assert "1 alternating rounds of 2 steps" in out


def test_engine_ab_tool_says_when_an_engine_trains_differently(tmp_path):
    """An engine whose Adam uses another beta1 is not the same engine: the tool must say so."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = (root / "bench" / "engine.py").read_text()
    assert "beta1=0.9," in source
    changed = tmp_path / "engine_changed.py"
    changed.write_text(source.replace("beta1=0.9,", "beta1=0.91,"))
    out = subprocess.run([sys.executable, "tools/engine_ab.py", str(changed), "--rounds", "1", "--steps", "2",
                          "--width", "8"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert "results equal: NO" in out
