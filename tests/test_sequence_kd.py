"""Sequence-level KD targets from CTranslate2: the same label ids as transformers' beam search, cached apart."""

import os

import pytest
import torch
from transformers import DataCollatorForSeq2Seq

from hfqd import DistillationArguments, QuantizedDistillationTrainer, export_ctranslate2
from hfqd.distill.sequence import generate_targets, generate_targets_ctranslate2

from .helpers import tiny_corpus, tiny_pair

ctranslate2 = pytest.importorskip("ctranslate2", reason='the CTranslate2 engine needs the deploy extra (".[deploy]")')


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus(120)


def _trainer(corpus, tmp_path, engine, tokenizer_given=True, **overrides):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=16, report_to="none",
                  use_cpu=True, bits=None, disable_tqdm=True, distillation_mode="sequence+token",
                  sequence_engine=engine, sequence_cache_dir=str(tmp_path / "seq"), sequence_num_beams=1,
                  sequence_max_length=10)
    kwargs.update(overrides)
    return QuantizedDistillationTrainer(
        model=student, teacher_model=teacher, args=DistillationArguments(**kwargs),
        train_dataset=data.datasets["train"], data_collator=DataCollatorForSeq2Seq(tokenizer, model=student),
        processing_class=tokenizer if tokenizer_given else None,
    )


@pytest.mark.parametrize("eos_bias,length", [(0.0, 10), (0.3, 1)])  # cut at the length limit / ended by eos
def test_ctranslate2_labels_equal_transformers_greedy(corpus, tmp_path, eos_bias, length):
    _, tokenizer, data = corpus
    teacher, _ = tiny_pair(len(tokenizer))
    with torch.no_grad():  # a random tiny teacher never ends on its own; a bias on eos makes it end at once
        teacher.final_logits_bias[0, tokenizer.eos_token_id] = eos_bias
    sources = [list(x) for x in data.datasets["train"]["input_ids"]]
    translator = ctranslate2.Translator(export_ctranslate2(teacher, str(tmp_path / "ct2"), "float32", tokenizer))
    theirs = generate_targets_ctranslate2(translator, tokenizer, sources, 1, 10, 32)
    assert theirs == generate_targets(teacher, sources, 1, 10, 32)
    assert all(len(x) == length and x[-1] == tokenizer.eos_token_id for x in theirs)


def test_ctranslate2_engine_in_trainer_caches_apart(corpus, tmp_path):
    ours = _trainer(corpus, tmp_path, "transformers")
    theirs = _trainer(corpus, tmp_path, "ctranslate2")
    assert list(theirs.train_dataset["labels"]) == list(ours.train_dataset["labels"])
    assert len([name for name in os.listdir(tmp_path / "seq") if not name.startswith(".")]) == 2
    theirs.train()


def test_ctranslate2_beam_targets_are_well_formed(corpus, tmp_path):
    trainer = _trainer(corpus, tmp_path, "ctranslate2", sequence_num_beams=3)
    eos = corpus[1].eos_token_id
    assert all(x[-1] == eos and 1 <= len(x) <= 10 for x in trainer.train_dataset["labels"])


def test_ctranslate2_engine_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="processing_class"):
        _trainer(corpus, tmp_path, "ctranslate2", tokenizer_given=False)
    with pytest.raises(ValueError, match="sequence_engine"):
        DistillationArguments(output_dir=str(tmp_path), sequence_engine="vllm")
