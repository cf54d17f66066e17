import math
from collections import Counter

import pytest
import torch
from torch import nn

from hfqd.quant import (
    LearnedQuantizer,
    QuantConfig,
    allocate_points,
    dequantize_codes,
    entropy,
    huffman_code_lengths,
    huffman_size,
    learned_points,
    mean_code_length,
    model_size,
    nearest_point_codes,
    quantize_,
    quantized_parameters,
    sort_points_,
)
from hfqd.quant import learned as learned_module

from .conftest import tiny_marian


def _linear(seed=0, n_in=32, n_out=16):
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out)


def test_points_are_parameters_in_state_dict():
    lin = quantize_(_linear(), QuantConfig(bits=2, bucket_size=64, method="learned"))
    points = learned_points(lin)
    assert len(points) == 1 and isinstance(points[0], nn.Parameter) and points[0].numel() == 4
    assert "parametrizations.weight.0.points" in lin.state_dict()
    assert points[0][0] == 0 and points[0][-1] == 1  # quantile init includes both ends


def test_point_gradient_matches_finite_differences():
    lin = quantize_(_linear(), QuantConfig(bits=2, bucket_size=50, method="learned", points_init="uniform"))
    q = lin.parametrizations.weight[0]
    shadow = lin.parametrizations.weight.original
    coeff = torch.randn(lin.weight.shape, generator=torch.Generator().manual_seed(1))
    (coeff * lin.weight).sum().backward()
    codes = q.codes(shadow)  # the assignment, held fixed
    eps = 1e-3
    for j in range(q.points.numel()):
        def loss(points):
            codes.points = points
            return float((coeff * dequantize_codes(codes)).sum())

        up, down = q.points.detach().clone(), q.points.detach().clone()
        up[j] += eps
        down[j] -= eps
        estimate = (loss(up) - loss(down)) / (2 * eps)
        assert q.points.grad[j].item() == pytest.approx(estimate, rel=1e-3, abs=1e-3)


def test_point_gradient_of_a_frozen_weight_equals_autograd_indexing():
    lin = quantize_(_linear(n_in=40), QuantConfig(bits=3, bucket_size=48, method="learned"))
    q, shadow = lin.parametrizations.weight[0], lin.parametrizations.weight.original
    shadow.requires_grad_(False)  # DQ: only the points train
    coeff = torch.randn(lin.weight.shape, generator=torch.Generator().manual_seed(2))
    for _ in range(2):  # the second pass reuses the frozen weight's cached buckets
        q.points.grad = None
        (coeff * lin.weight).sum().backward()
    codes = q.codes(shadow)
    points = q.points.detach().clone().requires_grad_(True)
    values = points[codes.codes.long()] * codes.scale[:, None] + codes.minimum[:, None]
    (coeff * values.reshape(-1)[: codes.numel].view(codes.shape)).sum().backward()
    torch.testing.assert_close(q.points.grad, points.grad)


def test_tied_weight_is_quantized_once_per_forward_pass_and_frozen_buckets_follow_the_weight(monkeypatch):
    model = quantize_(tiny_marian(vocab_size=64), QuantConfig(bits=2, bucket_size=32, method="learned"))
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.endswith(".points"))
    codes_calls, scaled_calls = Counter(), [0]
    codes, scaled = LearnedQuantizer.codes, learned_module._scaled

    def counting_codes(self, weight):
        codes_calls[self.param_name] += 1
        return codes(self, weight)

    def counting_scaled(*args):
        scaled_calls[0] += 1
        return scaled(*args)

    monkeypatch.setattr(LearnedQuantizer, "codes", counting_codes)
    monkeypatch.setattr(learned_module, "_scaled", counting_scaled)
    batch = dict(input_ids=torch.tensor([[5, 6, 7, 1]]), labels=torch.tensor([[8, 9, 1]]))
    n_tensors = len(quantized_parameters(model))
    for passes in (1, 2):
        model(**batch).loss.backward()
        # The embedding is the encoder's and decoder's input and the output layer: quantized once a pass.
        assert codes_calls["model.shared.weight"] == passes
        assert scaled_calls[0] == n_tensors  # frozen weights: their buckets are scaled once, not every pass
    shared = model.model.shared.parametrizations.weight
    with torch.no_grad():
        shared.original.mul_(-1.0)  # a frozen weight changed in place (as loading a checkpoint does)
    expected = dequantize_codes(nearest_point_codes(shared.original, shared[0].points, 32))
    model(**batch).loss.backward()
    assert scaled_calls[0] == n_tensors + 1
    assert torch.equal(model.model.shared.weight.detach(), expected)


def test_learned_points_fit_a_teacher_better_than_uniform_points():
    torch.manual_seed(0)
    teacher = nn.Linear(64, 32)
    with torch.no_grad():  # heavy-tailed weights: evenly spaced levels waste most of their range
        teacher.weight.copy_(torch.randn(32, 64) ** 3)
    x = torch.randn(512, 64)
    target = teacher(x).detach()

    def fit_loss(model):
        with torch.no_grad():
            return nn.functional.mse_loss(model(x), target).item()

    uniform = quantize_(nn.Linear(64, 32), QuantConfig(bits=2, bucket_size=256))
    learned = quantize_(nn.Linear(64, 32), QuantConfig(bits=2, bucket_size=256, method="learned",
                                                       points_init="uniform"))
    for model in (uniform, learned):
        with torch.no_grad():
            model.parametrizations.weight.original.copy_(teacher.weight)
            model.bias.copy_(teacher.bias)
    learned.parametrizations.weight.original.requires_grad_(False)
    learned.bias.requires_grad_(False)
    start = fit_loss(learned)
    assert start == pytest.approx(fit_loss(uniform), rel=1e-5)  # same levels before training
    optimizer = torch.optim.Adam(learned_points(learned), lr=0.01)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.mse_loss(learned(x), target).backward()
        optimizer.step()
        sort_points_(learned)
    assert fit_loss(learned) < 0.8 * fit_loss(uniform)
    points = learned_points(learned)[0]
    assert torch.equal(points, torch.sort(points).values)


def test_learned_size_uses_log2_of_points_and_counts_the_points():
    model = quantize_(_linear(), QuantConfig(bits=2, bucket_size=64, method="learned"),
                      points_per_tensor={"weight": 3})
    entry = quantized_parameters(model)[0]
    assert entry.quantizer.points.numel() == 3 and entry.quantizer.bits == 2
    report = model_size(model)
    assert report.bits == pytest.approx(math.log2(3) * 512 + 64 * 8 + 32 * 3 + 32 * 16)


def test_allocation_keeps_total_and_floor_and_follows_gradients():
    points = {"a": 16, "b": 16, "c": 16, "d": 4}
    norms = {"a": 10.0, "b": 1.0, "c": 0.5, "d": 0.1}
    result = {a.name: a.points for a in allocate_points(norms, points)}
    assert sum(result.values()) == sum(points.values())
    assert all(result[n] >= points[n] // 2 for n in points)
    assert result["a"] > result["b"] > result["c"]
    assert result["a"] > points["a"]
    for seed in range(20):  # random cases: the total is exact and no tensor falls below half
        g = torch.Generator().manual_seed(seed)
        pts = {str(i): int(2 ** torch.randint(1, 7, (1,), generator=g)) for i in range(7)}
        nrm = {k: float(torch.rand(1, generator=g)) for k in pts}
        out = {a.name: a.points for a in allocate_points(nrm, pts)}
        assert sum(out.values()) == sum(pts.values())
        assert all(out[k] >= max(2, pts[k] // 2) for k in pts)


def test_allocation_errors():
    with pytest.raises(ValueError, match="same tensors"):
        allocate_points({"a": 1.0}, {"b": 4})
    with pytest.raises(ValueError, match="at least 2"):
        allocate_points({"a": 1.0}, {"a": 1})


@pytest.mark.parametrize("seed", range(5))
def test_huffman_bounds(seed):
    g = torch.Generator().manual_seed(seed)
    freqs = {i: int(c) + 1 for i, c in enumerate(torch.randint(0, 1000, (int(torch.randint(2, 16, (1,), generator=g)),),
                                                                   generator=g))}
    mean = mean_code_length(freqs)
    h = entropy(freqs)
    assert h - 1e-9 <= mean < h + 1
    assert mean <= math.ceil(math.log2(len(freqs))) + 1e-9
    lengths = huffman_code_lengths(freqs)
    assert sum(2.0 ** -lengths[s] for s in lengths) <= 1 + 1e-12  # Kraft inequality: a valid prefix code


def test_model_huffman_size_never_exceeds_fixed_width():
    model = quantize_(_linear(n_in=128, n_out=64), QuantConfig(bits=4, bucket_size=256))
    size = huffman_size(model)
    assert size.mean_bits <= size.fixed_bits == 4
    assert size.bits <= model_size(model).bits
