"""The runner's rows use the run's settings: PM rows quantize like the trained rows, shadows and cards follow them."""

import shlex
import sys

import pytest

from hfqd import DistillationArguments
from hfqd.hub.attach import SHADOWS_NAME
from hfqd.hub.card import write_row_cards
from hfqd.quant import get_quant_config, quantized_parameters
from hfqd.runner.methods import order_methods, run_methods
from hfqd.runner.translation import evaluate_translation
from hfqd.utils import command_line

from .helpers import tiny_corpus, tiny_pair


@pytest.fixture(scope="module")
def corpus():
    return tiny_corpus(64)


def _run(corpus, tmp_path, methods, **overrides):
    _, tokenizer, data = corpus
    teacher, _ = tiny_pair(len(tokenizer))
    kwargs = dict(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=8, report_to="none",
                  use_cpu=True, save_strategy="no", disable_tqdm=True, bucket_size=32, seed=0)
    kwargs.update(overrides)
    args = DistillationArguments(**kwargs)
    models = {}

    def evaluate(model):
        models[len(models)] = model
        return {"bleu": 0.0}

    rows = run_methods(order_methods(methods, args.alpha), lambda: tiny_pair(len(tokenizer))[1], teacher, tokenizer,
                       data.datasets["train"], args, evaluate, 1, save_dir=str(tmp_path / "models"))
    return rows, list(models.values())


def test_post_training_rows_quantize_like_the_trained_rows(corpus, tmp_path):
    rows, models = _run(corpus, tmp_path, ["kd", "pm4", "qd4"], rounding="stochastic",
                        quant_exclude=["*fc2"], keep_first_last=True)
    by_method = dict(zip([r.method for r in rows], models))  # rows come back in the order they were scored
    pm4, qd4 = by_method["pm4"], by_method["qd4"]
    assert get_quant_config(pm4).rounding == get_quant_config(qd4).rounding == "stochastic"
    names = lambda m: sorted(e.name for e in quantized_parameters(m))  # noqa: E731
    assert names(pm4) == names(qd4) and not any(n.endswith("fc2.weight") for n in names(pm4))


def test_saved_shadows_and_cards_follow_the_run(corpus, tmp_path):
    rows, _ = _run(corpus, tmp_path, ["kd", "pm4", "qd4"], save_shadows=True)
    assert (tmp_path / "models" / "qd4" / SHADOWS_NAME).is_file()  # --save_shadows reaches the trained rows
    assert not (tmp_path / "models" / "pm4" / SHADOWS_NAME).exists()  # a PM row has nothing to fine-tune from
    write_row_cards(rows, str(tmp_path / "models"), "teacher", ["data"], "cmd", "translation", ["bleu"])
    card = (tmp_path / "models" / "qd4" / "README.md").read_text()
    qd4 = next(r for r in rows if r.method == "qd4")
    assert "shadow weights are saved" in card
    assert f"{qd4.fp32_mb * 1e6:,.0f}" in card  # the table's fp32 accounting (buffers included), not params x 4


def test_evaluation_cuts_sources_at_the_training_length(corpus):
    _, tokenizer, _ = corpus
    _, student = tiny_pair(len(tokenizer))
    long = " ".join(["the dog sees a cat ."] * 30)
    seen = {}
    real = student.generate

    def spy(**kwargs):
        seen["width"] = kwargs["input_ids"].shape[1]
        return real(**kwargs)

    student.generate = spy
    evaluate_translation(student, tokenizer, [long], ["der Hund"], max_new_tokens=2, max_source_length=16)
    assert seen["width"] == 16  # the recipe passes --max_source_length; it used to be a fixed 128


def test_the_recorded_command_runs_as_written(monkeypatch):
    """A results file's command keeps an argument with spaces in one piece, so it can be pasted back."""
    argv = ["report.py", "--note", "one thread each; still training", "--run", "a=runs/x"]
    monkeypatch.setattr(sys, "argv", argv)
    command = command_line("scripts/report.py")
    assert shlex.split(command)[2:] == argv[1:]
