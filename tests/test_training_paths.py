"""Training paths around the core: checkpoints and resumes, pushes to a (local) Hub, logged losses."""

import json

import pytest
import safetensors.torch
import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

from hfqd import DistillationArguments, QuantizedDistillationTrainer
from hfqd.distill import distillation_loss
from hfqd.hub import PushError, push_folder, save_packed
from hfqd.hub.push import planned_upload
from hfqd.quant import QuantConfig, quantize_, quantized_parameters, sort_points_

from .conftest import tiny_marian
from .helpers import tiny_corpus, tiny_pair


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus(120)


def _trainer(corpus, tmp_path, student, teacher=None, **overrides):
    _, tokenizer, data = corpus
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=8, learning_rate=3e-3,
                  report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, bits=2, bucket_size=32,
                  seed=0, logging_steps=1, alpha=0.0 if teacher is None else 0.7,
                  distillation_mode="none" if teacher is None else "token")
    kwargs.update(overrides)
    return QuantizedDistillationTrainer(
        model=student, teacher_model=teacher, args=DistillationArguments(**kwargs),
        train_dataset=data.datasets["train"], data_collator=DataCollatorForSeq2Seq(tokenizer, model=student),
        processing_class=tokenizer,
    )


def _assert_same_state(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _packed_student(corpus, folder):
    _, tokenizer, _ = corpus
    model = quantize_(tiny_marian(seed=3, vocab_size=len(tokenizer)), QuantConfig(bits=2, bucket_size=32))
    save_packed(model, str(folder), tokenizer=tokenizer)
    return lambda: AutoModelForSeq2SeqLM.from_pretrained(str(folder))


# ---- checkpoints ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["packed_finetune", "learned_tied", "learned_frozen"])
def test_checkpoints_resume_bit_exactly(corpus, tmp_path, kind):
    if kind == "packed_finetune":
        make = _packed_student(corpus, tmp_path / "packed")  # fine-tuning a model loaded with from_pretrained
        extra = {}
    else:
        _, tokenizer, _ = corpus
        make = lambda: tiny_marian(seed=3, vocab_size=len(tokenizer))  # noqa: E731  # tied embeddings, as Marian
        extra = dict(quant_method="learned", points_learning_rate=1e-2)
        if kind == "learned_frozen":  # DQ: points only; the frozen weights' scaled buckets are cached
            extra["train_weights"] = False
    common = dict(save_strategy="steps", save_steps=3, **extra)
    straight = _trainer(corpus, tmp_path / "a", make(), **common)
    straight.train()
    resumed = _trainer(corpus, tmp_path / "b", make(), **common)
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "out" / "checkpoint-3"))
    _assert_same_state(straight.model, resumed.model)


def test_an_interrupted_checkpoint_is_never_resumed_from(corpus, tmp_path, monkeypatch):
    _, tokenizer, _ = corpus
    make = lambda: tiny_marian(seed=3, vocab_size=len(tokenizer))  # noqa: E731
    common = dict(save_strategy="steps", save_steps=3)
    trainer = _trainer(corpus, tmp_path, make(), **common)
    real = QuantizedDistillationTrainer._save_optimizer_and_scheduler

    def killed_at_step_6(self, output_dir):
        if self.state.global_step == 6:
            raise KeyboardInterrupt  # the process dies while checkpoint-6 is half written
        return real(self, output_dir)

    monkeypatch.setattr(QuantizedDistillationTrainer, "_save_optimizer_and_scheduler", killed_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    monkeypatch.undo()
    out = tmp_path / "out"
    assert (out / "checkpoint-6").is_dir()  # half written
    with pytest.raises(ValueError, match="checkpoint-3"):
        _trainer(corpus, tmp_path, make(), **common).train(resume_from_checkpoint=str(out / "checkpoint-6"))
    again = _trainer(corpus, tmp_path, make(), **common, max_steps=9)
    again.train(resume_from_checkpoint=True)  # picks checkpoint-3, the last complete one
    assert again.state.global_step == 9


# ---- pushing to a Hub: a local HTTP server stands in for it ----------------------------------------------------------


def test_trainer_pushes_the_packed_model_never_the_shadows(corpus, tmp_path, fake_hub):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    trainer = _trainer(corpus, tmp_path, student, teacher, max_steps=2, push_to_hub=True, hub_model_id="me/tiny",
                       hub_token="hf_test", save_shadows=False)
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    files = fake_hub.files["me/tiny"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    assert not any("shadow" in name or name.startswith("checkpoint") for name in files)
    uploaded = safetensors.torch.load(files["model.safetensors"])
    assert any(name.endswith("_qscale") for name in uploaded)  # packed codes, not fp32 weights
    assert json.loads(files["config.json"])["quantization_config"]["quant_method"] == "hfqd"
    # transformers' own push path (trainer.push_to_hub) must not overwrite the packed files with shadows either.
    trainer.push_to_hub()
    local = safetensors.torch.load_file(tmp_path / "out" / "model.safetensors")
    assert any(name.endswith("_qscale") for name in local)
    assert any(name.endswith("_qscale") for name in safetensors.torch.load(fake_hub.files["me/tiny"]["model.safetensors"]))


def test_checkpoints_in_the_pushed_folder_stay_local(corpus, tmp_path, fake_hub):
    """The trainer's output_dir holds its checkpoints (fp32 shadows, optimizer state) beside the packed model."""
    _, tokenizer, _ = corpus
    teacher, student = tiny_pair(len(tokenizer))
    trainer = _trainer(corpus, tmp_path, student, teacher, max_steps=2, push_to_hub=True, hub_model_id="me/tiny",
                       hub_token="hf_test", save_strategy="steps", save_steps=1)
    trainer.train()
    trainer.save_model()
    out = tmp_path / "out"
    (out / ".hfqd-staging-left-by-a-crash").mkdir()
    (out / ".hfqd-staging-left-by-a-crash" / "model.safetensors").write_bytes(b"half written")
    trainer.push_to_hub()
    assert (out / "checkpoint-2" / "optimizer.pt").is_file()
    uploaded = set(fake_hub.files["me/tiny"])
    assert "model.safetensors" in uploaded and not any(
        name.startswith(("checkpoint-", ".hfqd-staging")) for name in uploaded), sorted(uploaded)
    assert set(planned_upload(str(out))) == uploaded  # the dry run lists exactly what is sent


def test_push_to_a_new_branch_creates_it_first(tmp_path, fake_hub):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    push_folder(str(tmp_path), "me/x", token="hf_test", revision="4bit-v2")
    assert fake_hub.commits == [("me/x", "4bit-v2")] and fake_hub.files["me/x"]["model.safetensors"] == b"x"


@pytest.mark.parametrize("status", [401, 500, "refused"])
def test_push_failures_are_one_push_error_naming_the_folder(tmp_path, fake_hub, monkeypatch, status):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    if status == "refused":
        fake_hub.__exit__()  # nothing listens on the endpoint any more
    else:
        fake_hub.status = status
    with pytest.raises(PushError, match=f"saved in {tmp_path}"):
        push_folder(str(tmp_path), "me/x", token="hf_test")
    assert (tmp_path / "model.safetensors").read_bytes() == b"x"


# ---- logged losses and optimizer state ----------------------------------------------------------------------------


def test_logged_losses_are_per_token_means_whatever_the_accumulation(corpus, tmp_path):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    trainer = _trainer(corpus, tmp_path, student, teacher, bits=None, temperature=2.0)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    tokens = int((batch["labels"] != -100).sum())
    student.train()
    # As under 4-step gradient accumulation: the normaliser counts 4 batches' tokens.
    trainer.compute_loss(student, batch, num_items_in_batch=torch.tensor(4 * tokens))
    logs = {"loss": 0.0}
    trainer.log(logs)
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items()}
        expected = distillation_loss(student(**inputs).logits, teacher(**inputs).logits, batch["labels"],
                                     temperature=2.0, alpha=0.7)
    assert logs["kd_loss"] == pytest.approx(float(expected.kd), abs=1e-4)
    assert logs["ce_loss"] == pytest.approx(float(expected.ce), abs=1e-4)


def test_optimizer_state_follows_points_when_they_are_sorted():
    layer = nn.Sequential(nn.Linear(16, 16))
    quantize_(layer, QuantConfig(bits=2, bucket_size=64, method="learned", points_init="uniform"))
    points = quantized_parameters(layer)[0].quantizer.points
    optimizer = torch.optim.Adam([points])
    with torch.no_grad():
        points.copy_(torch.tensor([0.0, 0.7, 0.3, 1.0]))  # two points crossed during a step
    optimizer.state[points] = {"step": torch.tensor(1.0), "exp_avg": torch.tensor([0.0, 7.0, 3.0, 10.0]),
                               "exp_avg_sq": torch.tensor([0.0, 49.0, 9.0, 100.0])}
    sort_points_(layer, optimizer)
    assert points.tolist() == pytest.approx([0.0, 0.3, 0.7, 1.0])
    assert optimizer.state[points]["exp_avg"].tolist() == [0.0, 3.0, 7.0, 10.0]
    assert optimizer.state[points]["exp_avg_sq"].tolist() == [0.0, 9.0, 49.0, 100.0]
