import math

import pytest
import torch

from hfqd.quant import dequantize_codes, quantize_to_points, to_buckets, uniform_quantize


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("bucket_size", [None, 7, 64])
def test_nearest_error_within_half_step(bits, bucket_size):
    w = _randn(33, 10)
    deq, q = uniform_quantize(w, bits, bucket_size)
    assert deq.shape == w.shape and deq.dtype == w.dtype
    steps = 2**bits - 1
    # Every element's error is at most half a level step of its own bucket (plus float slack).
    half_step = (q.scale / steps / 2)[:, None].expand_as(q.codes).reshape(-1)[: w.numel()].view_as(w)
    assert bool(((deq - w).abs() <= half_step * (1 + 1e-5) + 1e-7).all())


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_at_most_2_pow_bits_values_per_bucket(bits):
    w = _randn(1000)
    deq, q = uniform_quantize(w, bits, bucket_size=100)
    for bucket in to_buckets(deq, 100):
        assert bucket.unique().numel() <= 2**bits
    assert int(q.codes.max()) <= 2**bits - 1


def test_endpoints_are_levels():
    w = _randn(256)
    deq, _ = uniform_quantize(w, 2, bucket_size=None)
    assert torch.isclose(deq.min(), w.min()) and torch.isclose(deq.max(), w.max())


def test_idempotent():
    w = _randn(5, 300)
    once, _ = uniform_quantize(w, 3, 64)
    twice, _ = uniform_quantize(once, 3, 64)
    torch.testing.assert_close(twice, once)


def test_constant_bucket_does_not_divide_by_zero():
    w = torch.full((10,), 0.25)
    deq, q = uniform_quantize(w, 4, bucket_size=4)
    assert torch.isfinite(deq).all()
    torch.testing.assert_close(deq, w)
    assert bool((q.scale == 1).all())


def test_padding_repeats_last_value_and_is_dropped():
    w = torch.arange(10, dtype=torch.float32)
    buckets = to_buckets(w, 4)
    assert buckets.shape == (3, 4)
    assert buckets[-1].tolist() == [8.0, 9.0, 9.0, 9.0]
    deq, q = uniform_quantize(w, 8, 4)
    assert deq.shape == (10,) and q.flat_codes().numel() == 10


def test_codes_rebuild_bit_exact():
    w = _randn(17, 19)
    deq, q = uniform_quantize(w, 4, 32)
    assert torch.equal(dequantize_codes(q), deq)


def test_stochastic_is_unbiased():
    w = _randn(64, seed=3)
    bits, draws = 2, 4000
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros_like(w)
    for _ in range(draws):
        total += uniform_quantize(w, bits, None, "stochastic", gen)[0]
    mean = total / draws
    # Each draw is one of two adjacent levels: its standard deviation is at most half a step; the tolerance is
    # 5 standard errors of the mean.
    step = float(w.max() - w.min()) / (2**bits - 1)
    tolerance = 5 * (step / 2) / math.sqrt(draws)
    assert float((mean - w).abs().max()) < tolerance


def test_stochastic_rounding_is_reproducible_and_needs_a_generator():
    w = _randn(300)
    a = uniform_quantize(w, 3, 64, "stochastic", torch.Generator().manual_seed(7))[0]
    b = uniform_quantize(w, 3, 64, "stochastic", torch.Generator().manual_seed(7))[0]
    c = uniform_quantize(w, 3, 64, "stochastic", torch.Generator().manual_seed(8))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="generator"):
        uniform_quantize(w, 3, 64, "stochastic")


def test_stochastic_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    uniform_quantize(_randn(100), 2, 16, "stochastic", torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(3), expected)


def test_quantize_to_points_picks_nearest_point():
    w = torch.tensor([0.0, 0.1, 0.45, 0.55, 0.9, 1.0])
    points = torch.tensor([0.0, 0.5, 1.0])
    deq, q = quantize_to_points(w, points, bucket_size=None)
    assert q.codes.reshape(-1).tolist() == [0, 0, 1, 1, 2, 2]
    torch.testing.assert_close(deq, torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0, 1.0]))
    assert torch.equal(dequantize_codes(q), deq)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"bits": 0}, "bits"), ({"bits": 9}, "bits"), ({"bits": 2.0}, "bits"), ({"rounding": "up"}, "rounding")],
)
def test_bad_arguments(kwargs, match):
    args = {"bits": 4, "bucket_size": 8, "rounding": "nearest", **kwargs}
    with pytest.raises(ValueError, match=match):
        uniform_quantize(_randn(10), **args)


def test_bad_points():
    with pytest.raises(ValueError, match="sorted"):
        quantize_to_points(_randn(10), torch.tensor([0.5, 0.1, 1.0]))
    with pytest.raises(ValueError, match="at least 2"):
        quantize_to_points(_randn(10), torch.tensor([0.5]))
