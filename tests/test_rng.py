import numpy as np
import torch

from bench import TrialConfig, make_data
from bench.rng import (derive_seed, keep_mask, keep_mask_numpy, keep_multipliers, mix32_, mix32_numpy, step_keys,
                       threshold)
from bench.task import init_params


def test_torch_hash_matches_plain_uint32_reference():
    # int32 wrap-around arithmetic must equal the textbook uint32 hash on every device
    x = torch.randint(-2**31, 2**31 - 1, (10_000,), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    expected = mix32_numpy(x.numpy().view(np.uint32))
    got = mix32_(x.clone()).numpy().view(np.uint32)
    np.testing.assert_array_equal(got, expected.astype(np.uint32))


def test_derive_seed_is_stable_and_stream_specific():
    assert derive_seed(0, "train-noise") == derive_seed(0, "train-noise")
    assert len({derive_seed(0, "train-noise"), derive_seed(0, "test-noise"), derive_seed(1, "train-noise")}) == 3


def _masks(rate, seed=0, n=50, w=400):
    keys = step_keys(torch.tensor([seed], dtype=torch.int32), steps=3, layers=2)
    return keep_mask(keys[1, 0].view(1), torch.tensor([threshold(rate)], dtype=torch.int16), n, w)[0]


def test_keep_mask_matches_plain_uint32_reference():
    # 16-bit halves of one hash per two cells, low half first; odd cell counts included
    keys = step_keys(torch.tensor([3, -7], dtype=torch.int32), steps=2, layers=2)
    for n, w, rate in ((20, 300, 0.5), (7, 15, 0.3), (3, 1, 0.9)):
        flat = keys.flatten()
        got = keep_mask(flat, torch.tensor([threshold(rate)] * len(flat), dtype=torch.int16), n, w)
        for b, key in enumerate(flat.tolist()):
            np.testing.assert_array_equal(got[b].numpy(), keep_mask_numpy(key, rate, n, w))


def test_float_multipliers_keep_exactly_the_cells_keep_mask_keeps():
    # every threshold from the lowest to the highest int16, odd cell counts, and the extreme rates
    keys = step_keys(torch.tensor([11, -3, 2**30], dtype=torch.int32), steps=4, layers=2).flatten()   # 24 keys
    rates = [0.0, 2**-16, 0.1, 0.3, 0.5, 0.7, 0.9, 1 - 2**-16] * 3
    thresholds = torch.tensor([threshold(r) for r in rates], dtype=torch.int16)
    assert thresholds.min().item() == -2**15 and thresholds.max().item() == 2**15 - 1
    scales = torch.tensor([1 / (1 - r) for r in rates])
    for n, w in ((20, 300), (7, 15), (3, 1)):
        got = keep_multipliers(keys, thresholds, scales, n, w)
        out = keep_multipliers(keys, thresholds, scales, n, w, out=torch.full((24, n * w), float("nan")))
        kept = keep_mask(keys, thresholds, n, w)
        expected = torch.where(kept, scales.view(-1, 1, 1), torch.zeros(()))
        assert torch.equal(got, expected) and torch.equal(out, expected)


def test_keep_probability_is_one_minus_rate():
    for rate in (0.1, 0.5, 0.9):
        kept = _masks(rate).float().mean().item()
        # 20,000 Bernoulli draws: sd <= 0.0036
        assert abs(kept - (1 - rate)) < 0.015, (rate, kept)
    assert _masks(0.0).all()


def test_higher_rate_drops_a_superset_of_units():
    low, high = _masks(0.3), _masks(0.6)
    assert (high <= low).all() and (high != low).any()


def test_masks_differ_across_steps_layers_and_seeds():
    keys = step_keys(torch.tensor([5, 6], dtype=torch.int32), steps=2, layers=2)
    assert len({int(k) for k in keys.flatten()}) == keys.numel()


def test_data_depends_on_seed_and_task_only():
    a = make_data(TrialConfig(seed=4, dropout=0.1, width=10))
    b = make_data(TrialConfig(seed=4, dropout=0.7, width=300, depth=3, lr=0.1))
    c = make_data(TrialConfig(seed=5))
    assert torch.equal(a.y, b.y) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y, c.y) and not torch.equal(a.y, a.y_test)
    assert torch.equal(a.x.squeeze(1), torch.linspace(-1, 1, 20))


def test_initial_weights_depend_on_seed_and_architecture_only():
    a = init_params(TrialConfig(seed=2, dropout=0.1, n_train=50))
    b = init_params(TrialConfig(seed=2, dropout=0.8, noise_std=1.0))
    c = init_params(TrialConfig(seed=3))
    assert all(torch.equal(x, y) for pa, pb in zip(a, b) for x, y in zip(pa, pb))
    assert not torch.equal(a[1][0], c[1][0])
    # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); shapes (in, out)
    assert a[1][0].shape == (300, 300) and a[1][0].abs().max() <= 300**-0.5
