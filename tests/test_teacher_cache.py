"""Teacher cache: the top-k loss, reuse across rows, invalidation, resumable and multi-process builds."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

import hfqd.distill.teacher_cache as teacher_cache
from hfqd import DistillationArguments, QuantizedDistillationTrainer
from hfqd.distill import distillation_loss
from hfqd.distill.teacher_cache import build_teacher_cache, teacher_topk

from .conftest import TinyConvNet
from .helpers import tiny_corpus, tiny_pair

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus(120)


def _trainer(corpus, tmp_path, teacher, student, **overrides):
    _, tokenizer, data = corpus
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=8, report_to="none",
                  use_cpu=True, save_strategy="no", disable_tqdm=True, bits=4, bucket_size=32, seed=0,
                  teacher_cache_dir=str(tmp_path / "cache"), teacher_top_k=8, learning_rate=3e-3)
    kwargs.update(overrides)
    return QuantizedDistillationTrainer(
        model=student, teacher_model=teacher, args=DistillationArguments(**kwargs),
        train_dataset=data.datasets["train"], data_collator=DataCollatorForSeq2Seq(tokenizer, model=student),
        processing_class=tokenizer,
    )


def _caches(tmp_path):
    return sorted(p for p in os.listdir(tmp_path / "cache") if not p.startswith("."))


def test_full_vocabulary_cache_gives_the_live_loss(corpus):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    collator = DataCollatorForSeq2Seq(tokenizer, model=student)
    batch = collator([dict(data.datasets["train"][i]) for i in range(6)])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        teacher_logits = teacher(**inputs).logits
    student_logits = student(**inputs).logits
    for temperature in (1.0, 2.5):
        live = distillation_loss(student_logits, teacher_logits, batch["labels"], temperature, alpha=0.6)
        ids, logprobs, log_rest = teacher_topk(teacher, batch, len(tokenizer), temperature)
        cached = distillation_loss(student_logits, None, batch["labels"], temperature, alpha=0.6,
                                   teacher_topk=(ids, logprobs, log_rest.exp()))
        torch.testing.assert_close(cached.loss, live.loss, rtol=1e-5, atol=1e-6)
        # The gradients the student receives are the same too.
        g_live = torch.autograd.grad(live.loss, student_logits, retain_graph=True)[0]
        g_cached = torch.autograd.grad(cached.loss, student_logits, retain_graph=True)[0]
        torch.testing.assert_close(g_cached, g_live, rtol=1e-4, atol=1e-7)
    small = teacher_topk(teacher, batch, 4, 1.0)
    approx = distillation_loss(student_logits, None, batch["labels"], 1.0, alpha=1.0,
                               teacher_topk=(small[0], small[1], small[2].exp()))
    exact = distillation_loss(student_logits, teacher_logits, batch["labels"], 1.0, alpha=1.0)
    assert 0 < approx.kd <= exact.kd + 1e-6  # merging the rest into one outcome can only lose divergence


def test_teacher_prefixes_come_from_the_labels_when_the_collator_gives_none(corpus):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    batch = DataCollatorForSeq2Seq(tokenizer, model=student)([dict(data.datasets["train"][i]) for i in range(4)])
    bare = {k: v for k, v in batch.items() if k != "decoder_input_ids"}  # a plain collator: labels only
    for with_prefix, without in zip(teacher_topk(teacher, batch, 5, 1.0), teacher_topk(teacher, bare, 5, 1.0)):
        torch.testing.assert_close(without, with_prefix)


def test_cached_training_never_calls_the_teacher_and_rows_share_one_cache(corpus, tmp_path):
    _, tokenizer, _ = corpus
    teacher, student = tiny_pair(len(tokenizer))
    _trainer(corpus, tmp_path, teacher, student).train()
    assert len(_caches(tmp_path)) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher was called although its cache exists")

    teacher.forward = refuse
    for bits, quant_method in ((2, "uniform"), (2, "learned")):  # other students, widths and methods: same cache
        _, other = tiny_pair(len(tokenizer))
        trainer = _trainer(corpus, tmp_path, teacher, other, bits=bits, quant_method=quant_method)
        trainer.train()
        assert trainer.state.log_history[-1]["train_loss"] > 0
    assert len(_caches(tmp_path)) == 1


def test_a_changed_teacher_or_setting_builds_a_new_cache(corpus, tmp_path):
    _, tokenizer, _ = corpus
    teacher, student = tiny_pair(len(tokenizer))
    _trainer(corpus, tmp_path, teacher, student, max_steps=1)
    _trainer(corpus, tmp_path, teacher, student, max_steps=1, teacher_top_k=4)
    with torch.no_grad():
        teacher.lm_head.weight[0, 0] += 1.0
    _trainer(corpus, tmp_path, teacher, student, max_steps=1)
    assert len(_caches(tmp_path)) == 3


def test_the_same_teacher_from_another_folder_reuses_the_cache(corpus, tmp_path):
    """The key follows the teacher's weights and settings, not where it was loaded from (a copy, another checkout)."""
    _, tokenizer, _ = corpus
    teacher, student = tiny_pair(len(tokenizer))
    teacher.save_pretrained(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for folder in ("a", "b"):
        loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / folder)
        assert loaded.config._name_or_path == str(tmp_path / folder)
        _trainer(corpus, tmp_path, loaded, student, max_steps=1)
    assert len(_caches(tmp_path)) == 1


def test_the_same_corpus_tokenized_from_another_folder_reuses_the_cache(corpus, tmp_path):
    """The data side of the key follows the token ids: `datasets`' own fingerprint changes with the tokenizer's
    folder (another checkout), which rebuilt the whole cache."""
    from transformers import AutoTokenizer

    from hfqd.data import tokenize_translation
    from hfqd.distill.fingerprint import data_fingerprint

    raw, tokenizer, _ = corpus
    tokenizer.save_pretrained(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    teacher, student = tiny_pair(len(tokenizer))
    tokenized = []
    for folder in ("a", "b"):
        data = tokenize_translation(raw, AutoTokenizer.from_pretrained(tmp_path / folder), "en", "de", 48, 48)
        tokenized.append(data.datasets["train"])
        _trainer((raw, tokenizer, data), tmp_path, teacher, student, max_steps=1)
    assert tokenized[0]._fingerprint != tokenized[1]._fingerprint  # what the key used to follow
    assert len(_caches(tmp_path)) == 1
    train = tokenized[0]
    keys = {data_fingerprint(d) for d in (train, train.select(range(len(train) - 1)), train.shuffle(seed=0),
                                          train.map(lambda ex: {"labels": ex["labels"][:-1]}))}
    assert len(keys) == 4 and data_fingerprint(train.select(range(len(train)))) == data_fingerprint(train)


def test_sequence_and_token_distillation_together(corpus, tmp_path):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    trainer = _trainer(corpus, tmp_path, teacher, student, distillation_mode="sequence+token",
                       sequence_cache_dir=str(tmp_path / "seq"), sequence_num_beams=1, sequence_max_length=8)
    labels = trainer.train_dataset["labels"]
    assert labels != data.datasets["train"]["labels"] and all(len(x) <= 8 for x in labels)
    assert [len(r) for r in trainer.train_dataset["teacher_rest_mass"]] == [len(x) for x in labels]
    trainer.train()


def test_an_interrupted_build_resumes(corpus, tmp_path, monkeypatch):
    _, tokenizer, data = corpus
    teacher, _ = tiny_pair(len(tokenizer))
    collator = DataCollatorForSeq2Seq(tokenizer, model=teacher)
    calls = {"n": 0}
    real = teacher_cache.teacher_topk

    def dies_in_the_third_shard(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(teacher_cache, "teacher_topk", dies_in_the_third_shard)
    build = lambda: build_teacher_cache(teacher, data.datasets["train"], collator, str(tmp_path / "cache"),  # noqa
                                        top_k=4, temperature=1.0, batch_size=16, shard_size=16)
    with pytest.raises(KeyboardInterrupt):
        build()
    calls["n"] = -100  # no more interruptions
    cache = build()
    assert calls["n"] == -100 + 120 // 16 + 1 - 2  # the two finished shards were not computed again
    monkeypatch.setattr(teacher_cache, "teacher_topk", real)
    shutil.rmtree(tmp_path / "cache")
    fresh = build()
    assert cache[:] == fresh[:]


def test_two_runs_building_one_cache_at_once_both_finish(tmp_path):
    """A second run (another job on the same machine) may finish a shard between this run's check and its rename;
    the shard is the same (the key is the content), so this run keeps it instead of crashing."""
    from datasets import Dataset

    from hfqd.distill.shards import build_in_shards, shard_path

    root = str(tmp_path / "cache")

    def make_shard(start, end):
        shard = Dataset.from_dict({"x": list(range(start, end))})
        if start == 4:  # the other run lands this shard first
            shard.save_to_disk(shard_path(root, 1))
        return shard

    built = build_in_shards(root, 10, make_shard, shard_size=4, desc="test")
    assert built["x"] == list(range(10))
    assert sorted(os.listdir(root)) == [os.path.basename(shard_path(root, i)) for i in range(3)]  # no temp left


def test_refusals(corpus, tmp_path, monkeypatch):
    _, tokenizer, data = corpus
    teacher, _ = tiny_pair(len(tokenizer))
    collator = DataCollatorForSeq2Seq(tokenizer, model=teacher)
    vision = TinyConvNet()
    vision.config = type("Config", (), {"is_encoder_decoder": False})()
    with pytest.raises(ValueError, match="random crops and flips"):
        build_teacher_cache(vision, data.datasets["train"], collator, str(tmp_path / "c"), 4, 1.0)
    monkeypatch.setattr(teacher_cache.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 10))
    with pytest.raises(OSError, match="GB free"):
        build_teacher_cache(teacher, data.datasets["train"], collator, str(tmp_path / "c"), 4, 1.0)


@pytest.mark.slow
def test_two_processes_build_one_cache_each_example_once(tmp_path):
    from .test_distributed import _free_port

    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           str(ROOT / "tests" / "cache_build.py"), str(tmp_path)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["rows"] == 120 for r in ranks)
    assert ranks[0]["built_rows"] and ranks[1]["built_rows"]  # both worked
    assert sum(ranks[0]["built_rows"]) + sum(ranks[1]["built_rows"]) == 120  # every example once
