"""The stacked engine against autograd, nn.Sequential and itself under regrouping."""
import pytest
import torch
from torch import nn

from bench import TrialConfig, dropout_arm, plain_arm
from bench.engine import DropoutMasks, _forward_eval, _Stack, forward_backward, train_group
from bench.reference import build_net


def _stack(cfgs, rates):
    arms = [dropout_arm(c.replace(dropout=r)) for c, r in zip(cfgs, rates)]
    return arms, _Stack(arms, torch.device("cpu"))


def test_hand_written_backward_matches_autograd():
    cfgs = [TrialConfig(seed=s, width=16, depth=d, n_train=7) for s, d in ((0, 2), (1, 2))]
    arms, st = _stack(cfgs, [0.5, 0.3])
    masks = DropoutMasks(arms[:1], 7, 16, 2, steps=4, device=torch.device("cpu"))
    X = torch.linspace(-1, 1, 7).view(1, 7, 1).repeat(2, 1, 1)
    Y = torch.randn(2, 7, 1, generator=torch.Generator().manual_seed(0))
    loss = forward_backward(st.params, st.grads, X, Y, masks, step=2)

    params = [p.clone().requires_grad_() for p in st.params]
    h = X
    for layer in range(2):
        h = torch.relu(torch.baddbmm(params[2 * layer + 1], h, params[2 * layer]))
        mult = torch.ones_like(h)
        mult[:1] = masks.multiplier(2, layer)
        h = h * mult
    out = torch.baddbmm(params[5], h, params[4])
    ref_loss = ((out - Y) ** 2).mean(dim=(1, 2))
    ref_loss.sum().backward()
    torch.testing.assert_close(loss, ref_loss.detach())
    for g, p in zip(st.grads, params):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)


def test_dropout_multiplier_is_zero_or_inverse_keep_probability():
    arms, _ = _stack([TrialConfig(seed=1)], [0.25])
    m = DropoutMasks(arms, 200, 300, 2, steps=1, device=torch.device("cpu")).multiplier(0, 1)
    assert set(m.unique().tolist()) == {0.0, torch.tensor(1 / 0.75).item()}
    assert abs(m.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_eval_mode_has_no_dropout():
    """Eval output equals the seed's nn.Sequential (with its Dropout layers) in eval mode."""
    cfg = TrialConfig(seed=3, width=64, dropout=0.5)
    arms, st = _stack([cfg], [0.5])
    net = build_net(cfg, 0.5).eval()
    x = torch.linspace(-1, 1, 33).view(33, 1)
    torch.testing.assert_close(_forward_eval(st.params, x.unsqueeze(0))[0], net(x), rtol=1e-5, atol=1e-6)
    net.train()
    torch.manual_seed(0)
    assert not torch.allclose(net(x), _forward_eval(st.params, x.unsqueeze(0))[0])


def test_dropout_before_relu_equals_after_relu():
    torch.manual_seed(0)
    lin = nn.Linear(1, 50)
    x = torch.randn(20, 1)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        before = nn.Sequential(lin, nn.Dropout(0.5), nn.ReLU())(x)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        after = nn.Sequential(lin, nn.ReLU(), nn.Dropout(0.5))(x)
    assert torch.equal(before, after)


def _final(results):
    return [(r.train_mse, r.test_mse, r.train_loss_last, tuple(r.curve_test_mse), r.excess_risk, r.new_mse,
             r.new_excess_risk) for r in results]


def test_results_do_not_depend_on_grouping():
    base = TrialConfig(width=48, steps=40, n_train=12)
    arms = [plain_arm(base.replace(seed=s)) for s in range(3)] + \
           [dropout_arm(base.replace(seed=s, dropout=r)) for s in range(3) for r in (0.2, 0.6)]
    alone = [train_group([a])[0] for a in arms]
    together = train_group(arms)
    reversed_ = train_group(arms[::-1])[::-1]
    assert _final(alone) == _final(together) == _final(reversed_)


def test_group_refuses_incompatible_arms():
    with pytest.raises(ValueError, match="must share"):
        train_group([plain_arm(TrialConfig(width=8)), plain_arm(TrialConfig(width=9))])


def test_nan_loss_is_marked_diverged_at_its_step():
    res = train_group([dropout_arm(TrialConfig(width=16, steps=30, lr=1e6))])[0]
    assert res.status == "diverged" and res.diverged_at_step is not None and 0 < res.diverged_at_step < 30
    ok = train_group([dropout_arm(TrialConfig(width=16, steps=30))])[0]
    assert ok.status == "ok" and ok.diverged_at_step is None


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 4 * 4 * 12])   # residuals of 1 and of 3 steps per chunk
def test_losses_do_not_depend_on_how_many_steps_share_a_loss_computation(monkeypatch, chunk_bytes):
    """Losses are computed a chunk of steps at a time; every step's loss (and so the divergence
    step and the last loss) equals the one-step-at-a-time loss bit for bit, early_stop rows included."""
    from bench import engine
    from bench.results import trial_arms

    cfg = TrialConfig(width=24, steps=7, n_train=12, arms=("plain", "dropout", "early_stop", "weight_decay"))
    arms = list(trial_arms(cfg).values())
    whole = engine.Group(arms)
    monkeypatch.setattr(engine, "RESIDUAL_CHUNK_BYTES", chunk_bytes)
    chunked = engine.Group(arms)
    assert chunked.work.chunk == max(1, chunk_bytes // (4 * 4 * 12)) < 7 == whole.work.chunk
    one_by_one = []
    with torch.no_grad():
        for s in range(7):
            whole.step(s)
            chunked.step(s)
    assert torch.equal(chunked.losses, whole.losses)
    # and against forward_backward, which computes one step's loss on its own
    fresh = engine.Group(arms)
    with torch.no_grad():
        for s in range(7):
            P, G = fresh.stack.params, fresh.stack.grads
            one_by_one.append(forward_backward(P, G, fresh.X, fresh.Y, fresh.masks, s, fresh.work).clone())
            fresh.step(s)
    assert torch.equal(torch.stack(one_by_one), whole.losses)
