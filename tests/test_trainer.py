import os

import pytest
import torch
from transformers import DataCollatorForSeq2Seq, TrainerCallback

from hfqd import DistillationArguments, QuantizedDistillationTrainer, is_quantized
from hfqd.quant import quantized_parameters

from .helpers import tiny_corpus, tiny_pair


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus()


def _args(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=6,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        bits=4,
        bucket_size=64,
        seed=0,
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return DistillationArguments(**kwargs)


def _trainer(corpus, args, teacher=None, student=None):
    _, tokenizer, data = corpus
    t, s = tiny_pair(len(tokenizer))
    student = student if student is not None else s
    return QuantizedDistillationTrainer(
        model=student,
        teacher_model=teacher if teacher is not None else t,
        args=args,
        train_dataset=data.datasets["train"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=student),
        processing_class=tokenizer,
    )


def _losses(trainer):
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_qd_run_lowers_loss_and_trains_every_shadow(corpus, tmp_path):
    trainer = _trainer(corpus, _args(tmp_path, max_steps=30))
    assert is_quantized(trainer.model)
    before = {e.name: e.shadow.detach().clone() for e in quantized_parameters(trainer.model)}
    trainer.train()
    losses = _losses(trainer)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    for e in quantized_parameters(trainer.model):
        assert not torch.equal(e.shadow, before[e.name]), e.name


def test_teacher_frozen_and_in_eval_mode(corpus, tmp_path):
    trainer = _trainer(corpus, _args(tmp_path, max_steps=3))
    teacher = trainer.teacher_model
    snapshot = {k: v.clone() for k, v in teacher.state_dict().items()}
    trainer.train()
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, snapshot[k]) for k, v in teacher.state_dict().items())


def test_baselines_alpha_zero_and_full_precision(corpus, tmp_path):
    qat = _trainer(corpus, _args(tmp_path, alpha=0.0, max_steps=2))
    calls = []
    qat.teacher_model.register_forward_hook(lambda *a: calls.append(1))
    qat.train()
    assert calls == [] and is_quantized(qat.model)
    assert all(h.get("kd_loss", 0.0) == 0.0 for h in qat.state.log_history)

    fp = _trainer(corpus, _args(tmp_path, bits=32, max_steps=2))
    assert fp.args.bits is None and not is_quantized(fp.model)
    fp.train()
    assert any(h.get("kd_loss", 0) > 0 for h in fp.state.log_history)


def test_missing_teacher_and_vocab_mismatch(corpus, tmp_path):
    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    with pytest.raises(ValueError, match="needs `teacher_model`"):
        QuantizedDistillationTrainer(model=student, args=_args(tmp_path), train_dataset=data.datasets["train"])
    from .conftest import tiny_marian

    other = tiny_marian(vocab_size=len(tokenizer) + 7)
    with pytest.raises(ValueError, match="one vocabulary"):
        QuantizedDistillationTrainer(model=student, teacher_model=other, args=_args(tmp_path))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        _args(tmp_path, alpha=1.5)
    with pytest.raises(ValueError, match="bits"):
        _args(tmp_path, bits=12)
    with pytest.raises(ValueError, match="bucket_size"):
        _args(tmp_path, bucket_size=1)
    with pytest.raises(ValueError, match="distillation_mode"):
        _args(tmp_path, distillation_mode="word")


def test_resume_matches_uninterrupted_run(corpus, tmp_path):
    common = dict(max_steps=6, rounding="stochastic", save_strategy="steps", save_steps=3)
    straight = _trainer(corpus, _args(tmp_path / "a", **common))
    straight.train()
    checkpoint = tmp_path / "a" / "out" / "checkpoint-3"
    assert (checkpoint / "hfqd_quant_config.json").is_file()

    resumed = _trainer(corpus, _args(tmp_path / "b", **common))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    a = straight.model.state_dict()
    b = resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_checkpoint_is_a_plain_full_precision_model(corpus, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    trainer = _trainer(corpus, _args(tmp_path, max_steps=2, save_strategy="steps", save_steps=2))
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(checkpoint))
    shadows = {e.name: e.shadow for e in quantized_parameters(trainer.model)}
    assert torch.equal(loaded.get_submodule("model.encoder.layers.0.fc1").weight, shadows["model.encoder.layers.0.fc1.weight"])
    assert torch.equal(loaded.lm_head.weight, loaded.model.shared.weight)
    assert os.path.isfile(checkpoint / "hfqd_quant_config.json")


def test_sequence_level_targets_cached(corpus, tmp_path):
    args = _args(tmp_path, distillation_mode="sequence", max_steps=2, sequence_cache_dir=str(tmp_path / "cache"),
                 sequence_num_beams=2, sequence_max_length=8)
    trainer = _trainer(corpus, args)
    labels = list(trainer.train_dataset["labels"])
    _, _, data = corpus
    assert labels != list(data.datasets["train"]["labels"])
    assert all(1 <= len(x) <= 8 for x in labels)
    cached = os.listdir(tmp_path / "cache")
    assert len([c for c in cached if not c.startswith(".")]) == 1
    again = _trainer(corpus, args)
    assert list(again.train_dataset["labels"]) == labels
    trainer.train()


def test_predict_with_generate_reports_bleu_and_chrf(corpus, tmp_path):
    from hfqd.eval import make_compute_metrics

    _, tokenizer, data = corpus
    teacher, student = tiny_pair(len(tokenizer))
    args = _args(tmp_path, max_steps=1, predict_with_generate=True, generation_max_length=8,
                 per_device_eval_batch_size=32)
    trainer = QuantizedDistillationTrainer(
        model=student, teacher_model=teacher, args=args, train_dataset=data.datasets["train"],
        eval_dataset=data.datasets["train"].select(range(20)),
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=student), processing_class=tokenizer,
        compute_metrics=make_compute_metrics(tokenizer),
    )
    student.generation_config.max_new_tokens = 8

    def settings():
        return {k: v for k, v in trainer.model.generation_config.to_diff_dict().items() if not k.startswith("_")}

    before = settings()
    metrics = trainer.evaluate()
    assert 0 <= metrics["eval_bleu"] <= 100 and 0 <= metrics["eval_chrf"] <= 100
    assert "eval_loss" in metrics
    # validation leaves the student's generation settings as they were: no defaults written into what is saved
    assert settings() == before
    assert trainer.model.generation_config.max_length is None


def test_dq_trains_only_points_in_their_own_group(corpus, tmp_path):
    from hfqd.quant import learned_points

    args = _args(tmp_path, max_steps=5, bits=2, quant_method="learned", train_weights=False,
                 points_learning_rate=0.05, weight_decay=0.1)
    trainer = _trainer(corpus, args)
    shadows = {e.name: e.shadow.detach().clone() for e in quantized_parameters(trainer.model)}
    points = {e.name: e.quantizer.points.detach().clone() for e in quantized_parameters(trainer.model)}
    trainer.train()
    groups = [g for g in trainer.optimizer.param_groups if g.get("hfqd_points")]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in learned_points(trainer.model)}
    assert all(not g["params"] for g in trainer.optimizer.param_groups if not g.get("hfqd_points"))
    for e in quantized_parameters(trainer.model):
        assert torch.equal(e.shadow, shadows[e.name])
        assert torch.equal(e.quantizer.points, torch.sort(e.quantizer.points).values)
    assert any(not torch.equal(e.quantizer.points, points[e.name]) for e in quantized_parameters(trainer.model))


def test_sgd_for_points_is_plain_sgd_at_the_points_learning_rate(corpus, tmp_path):
    from hfqd.distill.trainer import PointsSGDCallback
    from hfqd.quant import learned_points

    args = _args(tmp_path, max_steps=1, bits=2, quant_method="learned", train_weights=False,
                 points_learning_rate=0.05, points_optimizer="sgd", max_grad_norm=0.0, learning_rate=0.5)
    trainer = _trainer(corpus, args)
    seen = {}

    class Spy(TrainerCallback):  # the gradient each point got, just before the points' step
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            seen.update({id(p): (p.detach().clone(), p.grad.detach().clone()) for p in learned_points(trainer.model)})

    trainer.add_callback(Spy())
    trainer.train()
    assert all(id(p) not in {id(q) for g in trainer.optimizer.param_groups for q in g["params"]}
               for p in learned_points(trainer.model))
    assert sum(isinstance(c, PointsSGDCallback) for c in trainer.callback_handler.callbacks) == 1
    for p in learned_points(trainer.model):
        before, grad = seen[id(p)]
        torch.testing.assert_close(p.detach(), torch.sort(before - 0.05 * grad).values)
    with pytest.raises(ValueError, match="points_optimizer"):
        _args(tmp_path, points_optimizer="lion")


def test_bit_allocation_in_the_trainer_keeps_the_total(corpus, tmp_path):
    args = _args(tmp_path, max_steps=1, bits=2, quant_method="learned", allocate_bits=True, allocation_batches=2)
    trainer = _trainer(corpus, args)
    counts = {e.name: e.quantizer.points.numel() for e in quantized_parameters(trainer.model)}
    assert sum(counts.values()) == 4 * len(counts)
    assert all(n >= 2 for n in counts.values()) and len(set(counts.values())) > 1
    assert {a.name: a.points for a in trainer.allocation} == counts
    trainer.train()


def test_dq_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="learned"):
        _args(tmp_path, allocate_bits=True)
    with pytest.raises(ValueError, match="learned"):
        _args(tmp_path, train_weights=False)
    with pytest.raises(ValueError, match="quant_method|method"):
        _args(tmp_path, quant_method="kmeans")
