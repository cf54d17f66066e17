import ast
import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from hfqd.quant import (
    QuantConfig,
    convert_,
    dequantize_,
    is_quantized,
    model_size,
    quantize_,
    quantized_parameters,
    set_quant_step,
    to_buckets,
)

from .conftest import tiny_marian


def _ids(model):
    return torch.tensor([[5, 6, 7, 1]]), torch.tensor([[0, 8, 9]])


def test_quant_package_does_not_import_transformers():
    for path in Path(__file__).parents[1].joinpath("hfqd", "quant").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "transformers" for n in names), path


def test_ste_gradient_reaches_shadow_and_step_changes_forward():
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    quantize_(lin, QuantConfig(bits=2, bucket_size=None))
    shadow = lin.parametrizations.weight.original
    x = torch.randn(16, 8)
    lin(x).pow(2).sum().backward()
    assert shadow.grad is not None and shadow.grad.abs().sum() > 0
    # Straight-through: the shadow's gradient is dL/dQ(w) = sum_i 2*y_i x_i^T computed with the quantized weight.
    y = x @ lin.weight.detach().T + lin.bias.detach()
    torch.testing.assert_close(shadow.grad, 2 * y.T @ x)
    before = lin.weight.detach().clone()
    torch.optim.SGD(lin.parameters(), lr=0.5).step()
    after = lin.weight.detach()
    assert not torch.equal(before, after)
    assert torch.equal(after, lin.parametrizations.weight[0].quantize(shadow))


def test_gradient_accumulation_recomputes_per_forward():
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    quantize_(lin, QuantConfig(bits=4, bucket_size=16))
    x = torch.randn(4, 8)
    for _ in range(3):  # would fail with "backward through the graph a second time" if a stale value were reused
        lin(x).sum().backward()
    torch.testing.assert_close(lin.parametrizations.weight.original.grad, 3 * torch.ones(4, 1) * x.sum(0))


@pytest.mark.parametrize("optimizer", ["fused", "foreach"])
def test_no_grad_value_follows_an_optimizer_step_in_a_custom_loop(optimizer):
    # A fused optimizer updates weights without bumping their version counters, and a custom loop never sets the
    # quantization step: a value cached by a no-grad forward between backward and step must still not survive
    # the step.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    quantize_(model, QuantConfig(bits=4, bucket_size=16))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, **{optimizer: True})
    x = torch.randn(4, 8)
    model(x).pow(2).sum().backward()
    with torch.no_grad():
        model(x)  # e.g. a metric computed before the step
    opt.step()
    with torch.no_grad():
        seen = model(x)
        reference = x
        for layer in model:
            if isinstance(layer, nn.Linear):
                quantizer = layer.parametrizations.weight[0]
                weight = quantizer.quantize(layer.parametrizations.weight.original)
                reference = reference @ weight.T + layer.bias
            else:
                reference = layer(reference)
    torch.testing.assert_close(seen, reference)


def test_marian_tied_embeddings_quantized_once_and_stay_tied(marian):
    quantize_(marian, QuantConfig(bits=4, bucket_size=64))
    shared = marian.model.shared
    lm_head = marian.lm_head
    assert shared.parametrizations.weight.original is lm_head.parametrizations.weight.original
    assert shared.parametrizations.weight[0] is lm_head.parametrizations.weight[0]
    entries = quantized_parameters(marian)
    tied = [e for e in entries if len(e.module_names) > 1]
    assert len(tied) == 1 and "lm_head" in tied[0].module_names
    # Biases and LayerNorms stay in full precision; every Linear and Embedding is quantized.
    linears = [m for m in marian.modules() if type(m) in (nn.Linear, nn.Embedding)]  # not sinusoidal positions
    assert all(is_quantized(m) for m in linears)
    assert not any(is_quantized(m) for m in marian.modules() if isinstance(m, nn.LayerNorm))
    # One quantization per forward pass for the tied tensor.
    calls = []
    q = shared.parametrizations.weight[0]
    original_quantize = q.quantize
    q.quantize = lambda w: calls.append(1) or original_quantize(w)
    src, tgt = _ids(marian)
    out = marian(input_ids=src, decoder_input_ids=tgt, labels=tgt)
    out.loss.backward()
    assert len(calls) == 1
    assert shared.parametrizations.weight.original.grad is not None


def test_marian_forward_uses_quantized_values(marian):
    src, tgt = _ids(marian)
    reference = copy.deepcopy(marian)
    quantize_(marian, QuantConfig(bits=2, bucket_size=32))
    with torch.no_grad():
        for e in quantized_parameters(marian):
            module = reference.get_submodule(e.module_names[0])
            module.weight.copy_(e.quantizer.quantize(e.shadow))
        expected = reference(input_ids=src, decoder_input_ids=tgt).logits
        got = marian(input_ids=src, decoder_input_ids=tgt).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_state_dict_round_trip(marian):
    quantize_(marian, QuantConfig(bits=3, bucket_size=16))
    with torch.no_grad():
        for e in quantized_parameters(marian):
            e.shadow.add_(0.01)
    other = quantize_(tiny_marian(seed=1), QuantConfig(bits=3, bucket_size=16))
    other.load_state_dict(marian.state_dict())
    src, tgt = _ids(marian)
    with torch.no_grad():
        a = marian(input_ids=src, decoder_input_ids=tgt).logits
        b = other(input_ids=src, decoder_input_ids=tgt).logits
    assert torch.equal(a, b)
    assert other.model.shared.parametrizations.weight.original is other.lm_head.parametrizations.weight.original


def test_deepcopy_keeps_working(marian):
    quantize_(marian, QuantConfig(bits=4))
    src, tgt = _ids(marian)
    marian(input_ids=src, decoder_input_ids=tgt, labels=tgt).loss.backward()
    twin = copy.deepcopy(marian)
    twin(input_ids=src, decoder_input_ids=tgt, labels=tgt).loss.backward()
    assert twin.model.shared.parametrizations.weight.original is twin.lm_head.parametrizations.weight.original


def test_convnet_quantized_and_batchnorm_untouched(convnet):
    quantize_(convnet, QuantConfig(bits=2, bucket_size=16))
    assert is_quantized(convnet.conv) and is_quantized(convnet.fc) and not is_quantized(convnet.norm)
    x = torch.randn(3, 1, 8, 8)
    convnet.train()
    convnet(x).sum().backward()
    assert convnet.norm.num_batches_tracked.item() == 1
    assert convnet.conv.parametrizations.weight.original.grad is not None


def test_include_exclude_and_keep_first_last(marian):
    quantize_(marian, QuantConfig(bits=4, include=("model.encoder.*",), exclude=("*.fc2",)))
    names = {n for e in quantized_parameters(marian) for n in e.module_names}
    assert names and all(n.startswith("model.encoder.") and not n.endswith("fc2") for n in names)

    net = quantize_(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)), QuantConfig(keep_first_last=True))
    assert [is_quantized(m) for m in net] == [False, True, False]
    # Tied first/last: the shared embedding is the first and the LM head the last; both stay full precision.
    m = quantize_(tiny_marian(), QuantConfig(bits=4, keep_first_last=True))
    assert not is_quantized(m.model.shared) and not is_quantized(m.lm_head)
    assert is_quantized(m.model.encoder.layers[0].fc1)


def test_module_bits_pattern_that_matches_nothing_is_an_error(marian):
    with pytest.raises(ValueError, match=r"\['model.shraed'\] match none of the .* quantized modules"):
        quantize_(marian, QuantConfig(bits=2, bucket_size=16, module_bits={"model.shraed": 3}))
    assert not is_quantized(marian)
    quantize_(marian, QuantConfig(bits=2, bucket_size=16, module_bits={"model.shared": 3}))
    assert {e.quantizer.bits for e in quantized_parameters(marian) if e.name == "model.shared.weight"} == {3}


def test_quantize_twice_is_an_error(marian):
    quantize_(marian, QuantConfig(bits=4))
    with pytest.raises(ValueError, match="already quantized"):
        quantize_(marian, QuantConfig(bits=2))


def test_nothing_selected_is_an_error(convnet):
    with pytest.raises(ValueError, match="No module matched"):
        quantize_(convnet, QuantConfig(include=("nothing.*",)))


def test_convert_materializes_and_keeps_ties(marian):
    quantize_(marian, QuantConfig(bits=2, bucket_size=32))
    src, tgt = _ids(marian)
    with torch.no_grad():
        expected = marian(input_ids=src, decoder_input_ids=tgt).logits
    convert_(marian)
    assert not is_quantized(marian)
    assert marian.model.shared.weight is marian.lm_head.weight
    assert isinstance(marian.lm_head.weight, nn.Parameter)
    for bucket in to_buckets(marian.model.encoder.layers[0].fc1.weight.detach(), 32):
        assert bucket.unique().numel() <= 4
    with torch.no_grad():
        torch.testing.assert_close(marian(input_ids=src, decoder_input_ids=tgt).logits, expected)
    quantize_(marian, QuantConfig(bits=4))  # allowed again


def test_stochastic_rounding_depends_on_step_not_global_rng():
    def build():
        torch.manual_seed(0)
        return quantize_(nn.Linear(32, 32), QuantConfig(bits=2, rounding="stochastic", seed=3))

    a, b = build(), build()
    torch.manual_seed(1)
    wa = a.weight.detach().clone()
    torch.manual_seed(2)
    assert torch.equal(b.weight, wa)
    set_quant_step(b, 1)
    assert not torch.equal(b.weight, wa)
    set_quant_step(b, 0)
    assert torch.equal(b.weight, wa)


def test_model_size_formula(marian):
    n_all = sum(p.numel() for p in marian.parameters())
    # Marian rebuilds its sinusoidal position tables on load and never stores them (`_keys_to_ignore_on_save`).
    params = dict(marian.named_parameters())
    unsaved = sum(params[k].numel() for k in marian._keys_to_ignore_on_save)
    assert unsaved > 0
    n_total = n_all - unsaved
    quantize_(marian, QuantConfig(bits=4, bucket_size=64))
    report = model_size(marian)
    entries = quantized_parameters(marian)
    q = sum(e.numel for e in entries)
    buckets = sum(-(-e.numel // 64) for e in entries)
    assert report.quantized_params == q
    assert report.quantized_params + report.fp_params == n_total
    assert report.unsaved_params == unsaved and report.params == n_all
    # Saved buffers (Marian's final_logits_bias) count at their dtype in both sizes, as every checkpoint stores them.
    buffers = marian.final_logits_bias.numel() * 32
    assert report.buffer_bits == buffers
    assert report.bits == 4 * q + 64 * buckets + 32 * (n_total - q) + buffers
    assert report.fp32_bits == 32 * n_total + buffers
    assert 32 / 4 > report.compression_ratio > 1


def test_old_name_of_convert_still_works_with_a_warning(marian):
    quantize_(marian, QuantConfig(bits=4))
    with pytest.warns(FutureWarning, match="renamed hfqd.convert_"):
        dequantize_(marian)
    assert not is_quantized(marian)
