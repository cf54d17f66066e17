import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

from hfqd import DistillationArguments, QuantizedDistillationTrainer, is_quantized
from hfqd.data import synthetic_translation_dataset, tokenize_translation, train_bpe_tokenizer
from hfqd.hub import save_packed
from hfqd.quant import QuantConfig, get_quant_config, quantize_, quantized_parameters

from .conftest import tiny_marian


@pytest.fixture(scope="module")
def domains():
    general = synthetic_translation_dataset(200, seed=0, n_eval=20)
    kitchen = synthetic_translation_dataset(200, seed=1, n_eval=20, domain="kitchen")
    texts = [ex[k] for ds in (general, kitchen) for ex in ds["train"]["translation"] for k in ("en", "de")]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    tok = lambda raw: tokenize_translation(raw, tokenizer, "en", "de", 48, 48)  # noqa: E731
    return tokenizer, tok(general), tok(kitchen)


def _packed_student(tmp_path, tokenizer, config=QuantConfig(bits=2, bucket_size=64), save_shadows=False):
    model = quantize_(tiny_marian(vocab_size=len(tokenizer)), config)
    with torch.no_grad():
        for e in quantized_parameters(model):
            e.shadow.add_(0.001 * torch.randn_like(e.shadow))  # shadows that differ from their quantized values
    save_packed(model, str(tmp_path / "packed"), tokenizer=tokenizer, save_shadows=save_shadows)
    return model, AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed"))


def _trainer(model, tokenizer, data, tmp_path, **overrides):
    kwargs = dict(output_dir=str(tmp_path / "ft"), max_steps=25, learning_rate=3e-3, report_to="none", use_cpu=True,
                  per_device_train_batch_size=16, save_strategy="no", disable_tqdm=True, alpha=0.0, logging_steps=1,
                  distillation_mode="none", bits=8)  # bits=8 is ignored: the packed settings stay in force
    kwargs.update(overrides)
    return QuantizedDistillationTrainer(
        model=model, args=DistillationArguments(**kwargs), train_dataset=data.datasets["train"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model), processing_class=tokenizer,
    )


def _eval_loss(model, data):
    ds = data.datasets["test"]
    losses = []
    model.eval()
    with torch.no_grad():
        for ex in ds:
            ids = torch.tensor([ex["input_ids"]])
            labels = torch.tensor([ex["labels"]])
            losses.append(model(input_ids=ids, labels=labels).loss.item())
    return sum(losses) / len(losses)


def test_finetuning_a_packed_student_on_a_new_domain(domains, tmp_path):
    tokenizer, _, kitchen = domains
    _, loaded = _packed_student(tmp_path, tokenizer)
    before = _eval_loss(loaded, kitchen)
    trainer = _trainer(loaded, tokenizer, kitchen, tmp_path)
    assert is_quantized(trainer.model) and get_quant_config(trainer.model).bits == 2
    trainer.train()
    after = _eval_loss(trainer.model, kitchen)
    assert after < before
    trainer.save_model(str(tmp_path / "ft-packed"))
    again = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "ft-packed")).eval()
    qc = again.config.quantization_config
    assert qc.bits == 2 and qc.bucket_size == 64
    assert sorted(qc.quantized_tensors) == sorted(e.name for e in quantized_parameters(trainer.model))
    batch = tokenizer(["The cook cleans a pot ."], return_tensors="pt")
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(trainer.model(**batch, decoder_input_ids=batch["input_ids"][:, :4]).logits,
                           again(**batch, decoder_input_ids=batch["input_ids"][:, :4]).logits)


def test_dequantized_values_become_shadows_unless_shadows_were_saved(domains, tmp_path):
    tokenizer, general, _ = domains
    original, loaded = _packed_student(tmp_path / "a", tokenizer)
    trainer = _trainer(loaded, tokenizer, general, tmp_path / "a", max_steps=1)
    entry = quantized_parameters(trainer.model)[0]
    expected = quantized_parameters(original)[0]
    assert torch.equal(entry.shadow, expected.quantizer.quantize(expected.shadow))

    original, loaded = _packed_student(tmp_path / "b", tokenizer, save_shadows=True)
    trainer = _trainer(loaded, tokenizer, general, tmp_path / "b", max_steps=1)
    for got, want in zip(quantized_parameters(trainer.model), quantized_parameters(original)):
        assert torch.equal(got.shadow, want.shadow)


def test_requantize_overrides_saved_settings(domains, tmp_path):
    tokenizer, general, _ = domains
    _, loaded = _packed_student(tmp_path, tokenizer)
    trainer = _trainer(loaded, tokenizer, general, tmp_path, requantize=True, bits=4, bucket_size=32)
    assert get_quant_config(trainer.model).bits == 4 and get_quant_config(trainer.model).bucket_size == 32


def test_training_a_packed_model_without_import_hfqd_fails(domains, tmp_path):
    tokenizer, _, _ = domains
    _packed_student(tmp_path, tokenizer)
    code = (
        "from transformers import AutoModelForSeq2SeqLM, Seq2SeqTrainer, Seq2SeqTrainingArguments\n"
        f"m = AutoModelForSeq2SeqLM.from_pretrained({str(tmp_path / 'packed')!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "hfqd" in result.stderr


def test_packed_learned_points_round_trip_and_stay_trainable(domains, tmp_path):
    tokenizer, general, _ = domains
    config = QuantConfig(bits=2, bucket_size=64, method="learned")
    model = quantize_(tiny_marian(vocab_size=len(tokenizer)), config,
                      points_per_tensor={"model.encoder.layers.0.fc1.weight": 3})
    with torch.no_grad():
        for e in quantized_parameters(model):
            e.quantizer.points.add_(0.01 * torch.rand_like(e.quantizer.points))
            e.quantizer.sort_points_()
    save_packed(model, str(tmp_path / "packed"), tokenizer=tokenizer)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed")).eval()
    batch = tokenizer(["The dog sees a cat ."], return_tensors="pt")
    dec = batch["input_ids"][:, :3]
    with torch.no_grad():
        assert torch.equal(model(**batch, decoder_input_ids=dec).logits, loaded(**batch, decoder_input_ids=dec).logits)
    trainer = _trainer(loaded, tokenizer, general, tmp_path, max_steps=3)
    saved = {e.name: e.quantizer.points for e in quantized_parameters(model)}
    for entry in quantized_parameters(trainer.model):
        assert torch.equal(entry.quantizer.points, saved[entry.name])
        assert entry.quantizer.points.requires_grad
    assert quantized_parameters(trainer.model)[0].quantizer.points.numel() in (3, 4)
    before = {e.name: e.quantizer.points.detach().clone() for e in quantized_parameters(trainer.model)}
    trainer.train()
    assert any(not torch.equal(e.quantizer.points, before[e.name]) for e in quantized_parameters(trainer.model))
