"""Peer QAT libraries of the translation benchmark (hfqd.bench.peers): parsing, size accounting, training hooks."""

import copy

import pytest
import torch

from hfqd.quant import QuantConfig, model_size, quantize_

from .conftest import tiny_marian

from hfqd.bench import peers

IDS = torch.tensor([[5, 17, 42, 9, 1]])


def _student():
    # d_model 32: every Linear/Embedding row holds 32 values, so a group of 32 is one row for every library.
    return tiny_marian(seed=3, vocab_size=64, d_model=32)


def test_parse_peer_names():
    spec = peers.parse_peer("quanto-qd2")
    assert (spec.library, spec.bits, spec.distill) == ("optimum-quanto", 2, True)
    assert peers.parse_peer("torchao-qat4").distill is False
    assert peers.parse_peer("diffq-qd").bits is None
    for bad in ("torchao-qat3", "quanto-pm4", "diffq-qd4", "hqq-qat4"):
        with pytest.raises(ValueError, match="Unknown peer"):
            peers.parse_peer(bad)


def test_torchao_rows_are_sized_like_hfqd_at_the_same_group_size():
    pytest.importorskip("torchao")
    model = _student()
    reference = quantize_(copy.deepcopy(model), QuantConfig(bits=4, bucket_size=32))
    spec = peers.parse_peer("torchao-qat4")
    peers.prepare(model, spec, 32)
    assert type(model.lm_head).__name__ == "FakeQuantizedLinear"
    assert type(model.model.encoder.embed_positions).__name__ == "MarianSinusoidalPositionalEmbedding"
    size, expected = peers.peer_size(model, spec, 32), model_size(reference)
    assert size.quantized_params == expected.quantized_params and size.bits == expected.bits


def test_torchao_fake_quantizes_in_the_forward_pass_and_trains_the_fp_weights():
    pytest.importorskip("torchao")
    fp = _student()
    model = peers.prepare(copy.deepcopy(fp), peers.parse_peer("torchao-qat2"), 32)
    out = model(input_ids=IDS, decoder_input_ids=IDS, labels=IDS)
    assert not torch.allclose(out.logits, fp(input_ids=IDS, decoder_input_ids=IDS).logits)
    out.loss.backward()
    assert model.model.encoder.layers[0].fc1.weight.grad.abs().sum() > 0


def test_quanto_keeps_an_fp32_copy_of_a_tied_embedding():
    pytest.importorskip("optimum.quanto")
    model = _student()
    spec = peers.parse_peer("quanto-qat4")
    peers.prepare(model, spec, 32)
    size = peers.peer_size(model, spec, 32)
    embedding = model.model.shared.weight.numel()
    # quanto quantizes the output layer but has no quantized embedding: the shared matrix is stored twice.
    assert size.fp_params >= embedding and size.quantized_params >= embedding
    peers.finalize(model, spec)
    assert peers.peer_size(model, spec, 32).bits == size.bits
    assert model.generate(input_ids=IDS, max_new_tokens=4).shape[0] == 1


def test_quanto_file_leaves_out_what_the_model_rebuilds(tmp_path):
    pytest.importorskip("optimum.quanto")
    from safetensors import safe_open

    model = _student()
    spec = peers.parse_peer("quanto-qat2")
    peers.finalize(peers.prepare(model, spec, 32), spec)
    megabytes = peers.save_peer(model, spec, str(tmp_path))
    path = tmp_path / "model.safetensors"
    assert megabytes == pytest.approx(path.stat().st_size / 1e6)
    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
    assert not keys & set(model._keys_to_ignore_on_save)
    assert not list(tmp_path.glob("*.tmp"))


def test_diffq_learns_bit_widths_under_its_size_penalty(tmp_path):
    pytest.importorskip("diffq")
    from transformers import DataCollatorForSeq2Seq

    from hfqd import DistillationArguments

    from .helpers import tiny_corpus

    _, tokenizer, data = tiny_corpus(64)
    model = tiny_marian(seed=3, vocab_size=len(tokenizer), d_model=32)
    spec = peers.parse_peer("diffq-qat")
    settings = peers.DiffQSettings(penalty=50.0, bits_learning_rate=0.1, init_bits=6.0, group_size=16)
    peers.prepare(model, spec, 32, settings)
    before = peers.diffq_mean_bits(model)
    args = DistillationArguments(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=16,
                                 report_to="none", use_cpu=True, save_strategy="no", alpha=0.0,
                                 distillation_mode="none", learning_rate=1e-3)
    trainer = peers.trainer_class(spec)(model=model, args=args, train_dataset=data.datasets["train"],
                                        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
                                        processing_class=tokenizer)
    trainer.train()
    groups = [g for g in trainer.optimizer.param_groups if g.get("initial_lr", g["lr"]) == 0.1 and g["weight_decay"] == 0]
    assert groups, "diffq's bit widths need their own optimizer group"
    after = peers.diffq_mean_bits(model)
    assert after < before  # a strong size penalty pushes the widths down
    peers.finalize(model, spec)
    size = peers.peer_size(model, spec, 32)
    assert 0 < size.bits < size.fp32_bits
    assert peers.save_peer(model, spec, str(tmp_path / "saved")) > 0
    assert model.generate(input_ids=IDS, max_new_tokens=4).shape[0] == 1
