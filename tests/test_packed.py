import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

import hfqd  # noqa: F401  (registers the "hfqd" quantizer)
from hfqd import DistillationArguments, QuantizedDistillationTrainer
from hfqd.hub import pack_codes, packed_size, packed_size_report, save_packed, unpack_codes
from hfqd.hub.attach import packed_quant_config
from hfqd.quant import QuantConfig, model_size, quantize_, quantized_parameters

from .conftest import TinyConvNet, tiny_marian
from .helpers import tiny_corpus, tiny_pair


@pytest.mark.parametrize("bits", range(1, 9))
def test_bitpack_round_trip_and_exact_size(bits):
    g = torch.Generator().manual_seed(bits)
    for n in (1, 7, 8, 1000, 1001):
        codes = torch.randint(0, 2**bits, (n,), generator=g, dtype=torch.int64).to(torch.uint8)
        packed = pack_codes(codes, bits)
        assert packed.dtype == torch.uint8 and packed.numel() == packed_size(n, bits) == -(-n * bits // 8)
        assert torch.equal(unpack_codes(packed, bits, n), codes)


def test_bitpack_errors():
    with pytest.raises(ValueError, match="does not fit"):
        pack_codes(torch.tensor([4], dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_codes(torch.zeros(3, dtype=torch.uint8), 4, 10)


def _ids():
    return torch.tensor([[5, 6, 7, 8, 1], [9, 10, 1, 0, 0]]), torch.tensor([[0, 8, 9], [0, 4, 5]])


@pytest.mark.parametrize("config", [QuantConfig(bits=3, bucket_size=50), QuantConfig(bits=2, bucket_size=None),
                                    QuantConfig(bits=4, rounding="stochastic", seed=5),
                                    QuantConfig(bits=2, bucket_size=16, module_bits={"model.shared": 4})])
def test_from_pretrained_is_bit_exact(tmp_path, config):
    model = quantize_(tiny_marian(), config)
    save_packed(model, str(tmp_path / "packed"))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed")).eval()
    src, tgt = _ids()
    mask = (src != 0).long()
    with torch.no_grad():
        a = model(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).logits
        b = loaded(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).logits
        assert torch.equal(a, b)
        gen_a = model.generate(input_ids=src, attention_mask=mask, max_new_tokens=6, num_beams=2)
        gen_b = loaded.generate(input_ids=src, attention_mask=mask, max_new_tokens=6, num_beams=2)
    assert torch.equal(gen_a, gen_b)
    assert loaded.lm_head.weight is loaded.model.shared.weight
    qc = json.loads((tmp_path / "packed" / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "hfqd" and qc["bits"] == config.bits and qc["hfqd_version"] == hfqd.__version__
    assert qc["bucket_size"] == config.bucket_size and set(qc["quantized_tensors"]) == {
        e.name for e in quantized_parameters(model)}
    widths = {e.name: e.quantizer.bits for e in quantized_parameters(model)}
    assert widths == {e.name: config.bits_for(e.module_names) for e in quantized_parameters(model)}
    assert qc["tensor_bits"] == {name: bits for name, bits in widths.items() if bits != config.bits}
    assert packed_quant_config(loaded) == config  # what fine-tuning the packed student re-quantizes with


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_loading_in_half_precision(tmp_path, dtype):
    """Every weight takes the requested dtype (norm weights once stayed float32 and the forward pass failed);
    re-saving or fine-tuning such a model, which would re-derive the buckets in half precision, is refused."""
    save_packed(quantize_(tiny_marian(), QuantConfig(bits=4, bucket_size=16)), str(tmp_path / "packed"))
    full = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed")).eval()
    half = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed"), dtype=dtype).eval()
    assert {p.dtype for p in half.parameters()} == {dtype}
    src, tgt = _ids()
    with torch.no_grad():
        want = full(input_ids=src, decoder_input_ids=tgt).logits
        got = half(input_ids=src, decoder_input_ids=tgt).logits.float()
    assert torch.allclose(got, want, atol=0.05, rtol=0.05)
    with pytest.raises(ValueError, match="float32"):
        save_packed(half, str(tmp_path / "again"))
    assert not (tmp_path / "again").exists()


def test_a_student_quantized_in_bfloat16_reloads_exactly_with_dtype_auto(tmp_path):
    model = quantize_(tiny_marian().to(torch.bfloat16), QuantConfig(bits=4, bucket_size=16)).eval()
    save_packed(model, str(tmp_path / "packed"))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed"), dtype="auto").eval()
    assert loaded.dtype == torch.bfloat16
    src, tgt = _ids()
    with torch.no_grad():
        assert torch.equal(model(input_ids=src, decoder_input_ids=tgt).logits,
                           loaded(input_ids=src, decoder_input_ids=tgt).logits)


def test_packed_file_is_small(tmp_path):
    model = quantize_(tiny_marian(d_model=64, vocab_size=512), QuantConfig(bits=2, bucket_size=256))
    save_packed(model, str(tmp_path / "packed"))
    report = packed_size_report(model, str(tmp_path / "packed" / "model.safetensors"))
    # fp32 would be 16x the codes; the file holds codes, 8 bytes per bucket, fp32 biases/norms and a JSON header.
    assert report.file_bytes < report.fp32_bytes / 4
    assert report.theoretical_bytes == model_size(model).bits / 8


def test_loading_without_import_hfqd_fails_clearly(tmp_path):
    save_packed(quantize_(tiny_marian(), QuantConfig(bits=4)), str(tmp_path / "packed"))
    code = (
        "from transformers import AutoModelForSeq2SeqLM;"
        f"AutoModelForSeq2SeqLM.from_pretrained({str(tmp_path / 'packed')!r})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "hfqd" in result.stderr


def test_interrupted_save_keeps_previous(tmp_path, monkeypatch):
    model = quantize_(tiny_marian(), QuantConfig(bits=4))
    target = tmp_path / "packed"
    save_packed(model, str(target))
    before = (target / "model.safetensors").read_bytes()

    import hfqd.hub.save as save_module

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(save_module.safetensors.torch, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        save_packed(model, str(target))
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["packed"]  # no temporary folder left behind


def test_save_packed_errors(tmp_path):
    with pytest.raises(ValueError, match="quantized by hfqd"):
        save_packed(tiny_marian(), str(tmp_path / "x"))
    with pytest.raises(TypeError, match="PreTrainedModel"):
        save_packed(quantize_(TinyConvNet(), QuantConfig(bits=4)), str(tmp_path / "y"))


def test_trainer_save_model_writes_packed(tmp_path):
    _, tokenizer, data = tiny_corpus()
    teacher, student = tiny_pair(len(tokenizer))
    args = DistillationArguments(output_dir=str(tmp_path / "run"), max_steps=2, report_to="none", use_cpu=True,
                                 bits=2, bucket_size=64, save_strategy="no", disable_tqdm=True)
    trainer = QuantizedDistillationTrainer(
        model=student, teacher_model=teacher, args=args, train_dataset=data.datasets["train"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=student), processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "final")).eval()
    assert (tmp_path / "final" / "tokenizer.json").is_file()
    batch = tokenizer(["The dog sees a cat ."], return_tensors="pt")
    student.eval()
    with torch.no_grad():
        a = student.generate(**batch, max_new_tokens=8)
        b = loaded.generate(**batch, max_new_tokens=8)
    assert torch.equal(a, b)
