"""Parameters a model rebuilds on load (transformers' `_keys_to_ignore_on_save`, e.g. Marian's sinusoidal position
tables) are neither stored in packed files, nor counted in sizes, nor trained."""

import torch
from safetensors import safe_open
from transformers import AutoModelForSeq2SeqLM

from hfqd import DistillationArguments, QuantizedDistillationTrainer
from hfqd.hub import save_packed
from hfqd.quant import QuantConfig, quantize_

from .conftest import tiny_marian


def test_packed_file_leaves_out_what_the_model_rebuilds(tmp_path):
    model = quantize_(tiny_marian(), QuantConfig(bits=4, bucket_size=32))
    save_packed(model, str(tmp_path))
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert model._keys_to_ignore_on_save and not keys & set(model._keys_to_ignore_on_save)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    positions = loaded.model.encoder.embed_positions
    assert torch.equal(positions.weight, positions.create_weight())  # rebuilt on load


def test_trainer_does_not_train_what_the_model_rebuilds(tmp_path):
    tiny_marian().save_pretrained(tmp_path / "fp")
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "fp")
    assert model.model.encoder.embed_positions.weight.requires_grad  # as from_pretrained leaves it
    args = DistillationArguments(output_dir=str(tmp_path / "run"), bits=4, bucket_size=32, report_to="none",
                                 use_cpu=True, save_strategy="no", distillation_mode="none", alpha=0.0)
    trainer = QuantizedDistillationTrainer(model=model, args=args)
    for name in model._keys_to_ignore_on_save:
        assert not dict(trainer.model.named_parameters())[name].requires_grad
    assert all(p.requires_grad for n, p in trainer.model.named_parameters() if ".fc1." in n)  # the rest trains
