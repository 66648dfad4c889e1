"""The engine's speed shortcuts keep exact semantics, and the speed report is well formed."""
import torch

from bench import TrialConfig, dropout_arm, plain_arm
from bench.engine import DropoutMasks, _Adam, _Stack, _Workspace, forward_backward


def test_direct_fused_adam_equals_torch_optim_adam_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(1000, generator=g)
    ours, grad = flat.clone(), torch.zeros(1000)
    theirs = flat.clone().requires_grad_()
    opt_ours, opt_theirs = _Adam(ours, grad, lr=0.01), torch.optim.Adam([theirs], lr=0.01, fused=True)
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
    from bench.speed import format_speed, measure_speed

    report = measure_speed(TrialConfig(width=8, steps=6, eval_every=3), trials=3, reference_trials=1,
                           single_trials=2, group_size=2)
    rows = report["engines"]
    assert list(rows) == ["reference", "single", "batched"]
    assert rows["reference"]["vs_reference"] == 1.0
    assert rows["batched"]["trials"] == 3 and rows["batched"]["arm_steps_per_s"] == 3 * 12 / rows["batched"]["seconds"]
    assert report["batched_equals_single"] is True and report["group_size"] == 2
    assert {"cpu", "cpu_count", "torch", "device"} <= set(report["machine"])
    text = format_speed(report)
    assert "reference loop" in text and "batched engine (group 2)" in text and "bit for bit: yes" in text


def test_speed_refuses_bad_input_with_one_line():
    import pytest

    from bench import ConfigError
    from bench.speed import measure_speed

    for kwargs, field in (({"trials": 0}, "trials=0"), ({"workers": -1}, "workers=-1"),
                          ({"group_size": 0}, "group_size=0"), ({"device": "cuda:x"}, "device")):
        with pytest.raises(ConfigError, match=field):
            measure_speed(TrialConfig(width=8, steps=2), **kwargs)


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
    from bench.memory import group_buffer_bytes

    cfg = TrialConfig(width=4, depth=2, n_train=3, steps=5)
    got = group_buffer_bytes(cfg, n_arms=2, n_dropout=1)
    # parameters per arm: (1*4 + 4) + (4*4 + 4) + (4*1 + 1) = 33; 2 arms = 66, padded to 128 floats
    assert got["parameters"] == got["gradients"] == 128 * 4 and got["optimizer_state"] == 2 * 128 * 4
    assert got["activations"] == ((2 * 2 + 3) * 2 * 3 * 4 + 2 * 3) * 4      # workspace, float32
    # keys (5 steps x 2 layers x 1 arm) + 6 pair counters; one chunk of all 5 steps: bools,
    # hash and its scratch, int16 thresholds; then one layer's float multipliers (1 x 3 x 4)
    assert got["masks"] == (10 + 6) * 4 + 5 * 2 * 1 * (12 + 2 * 6 * 4 + 2) + 12 * 4


def test_measured_cpu_peak_of_a_group_is_close_to_its_buffers():
    """Sanity bounds, not the target: the buffers are really there, and nothing holds a second copy."""
    from bench.memory import measure_group_memory

    r = measure_group_memory(TrialConfig(width=300), n_arms=16, steps=3)
    assert 0.8 < r["peak_over_core"] < 2.0, r
