"""Training step time: quantized distillation vs full-precision distillation, same student and batch.

    python scripts/benchmark_step_time.py                      # teacher: ../shared/models/multi30k-en-de-marian-7.7m
    python scripts/benchmark_step_time.py --teacher PATH --student_layers 1 --bits 4 --steps 30
    python scripts/benchmark_step_time.py --learned --bits 2 --bucket_size 128 --output benchmarks/results/step_time_dq

Writes benchmarks/results/step_time.{json,md}. The target of hfqd is a quantization overhead of at most 10 % of a
full-precision distillation step. ``--learned`` adds differentiable quantization's step (learned points, weights
frozen, as the `dq` rows train) to the comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq

from hfqd import DistillationArguments, QuantizedDistillationTrainer, make_student_from_teacher
from hfqd.bench.frontier import Shape
from hfqd.data import load_parallel_dir, synthetic_pairs, tokenize_translation
from hfqd.quant import quantized_parameters
from hfqd.eval.report import table, write_report
from hfqd.utils import command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TEACHER = os.path.join(ROOT, "..", "shared", "models", "multi30k-en-de-marian-7.7m")
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "multi30k")


def make_stepper(trainer, batch, total_steps: int):
    """A function running one full training step (forward, backward, optimizer step) on ``batch``."""
    trainer.create_optimizer_and_scheduler(num_training_steps=total_steps)
    trainer.current_gradient_accumulation_steps = 1
    num_items = (batch["labels"] != -100).sum()

    def step() -> float:
        start = time.perf_counter()
        trainer.training_step(trainer.model, batch, num_items)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default=DEFAULT_TEACHER)
    parser.add_argument("--dataset_dir", default=DEFAULT_DATA)
    parser.add_argument("--student_layers", type=int, default=1)
    parser.add_argument("--shape", default=None,
                        help="a frontier student shape instead of copied layers, e.g. d192-3+1 (fresh weights)")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--bucket_size", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--learned", action="store_true",
                        help="also time a differentiable-quantization step (learned points, weights frozen)")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "step_time"))
    opts = parser.parse_args()
    if not os.path.isdir(opts.teacher):
        sys.exit(f"Teacher folder {opts.teacher} not found; pass --teacher PATH (e.g. one saved by train_teacher.py).")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(opts.teacher)
    teacher = AutoModelForSeq2SeqLM.from_pretrained(opts.teacher)
    if os.path.isdir(opts.dataset_dir):
        raw = load_parallel_dir(opts.dataset_dir, splits={"train": "train"})
        data_name = opts.dataset_dir
    else:
        from datasets import Dataset, DatasetDict

        pairs = synthetic_pairs(opts.batch_size)
        raw = DatasetDict({"train": Dataset.from_dict({"translation": [{"en": e, "de": d} for e, d in pairs]})})
        data_name = "synthetic"
    raw["train"] = raw["train"].select(range(opts.batch_size))
    data = tokenize_translation(raw, tokenizer, "en", "de")
    qd_label = f"QD {opts.bits}-bit"
    dq_label = f"DQ {opts.bits}-bit (learned points, weights frozen)" if opts.learned else None
    runs = {"fp distillation": {"bits": None}, qd_label: {"bits": opts.bits}}
    if dq_label:
        runs[dq_label] = {"bits": opts.bits, "quant_method": "learned", "train_weights": False}
    steppers, entries = {}, {}
    for label, settings in runs.items():
        torch.manual_seed(0)
        student = (Shape.parse(opts.shape).build(teacher) if opts.shape
                   else make_student_from_teacher(teacher, opts.student_layers, opts.student_layers))
        args = DistillationArguments(
            output_dir="/tmp/hfqd-step-bench", bucket_size=opts.bucket_size, report_to="none",
            use_cpu=not torch.cuda.is_available(), per_device_train_batch_size=opts.batch_size, disable_tqdm=True,
            **settings,
        )
        trainer = QuantizedDistillationTrainer(
            model=student, teacher_model=teacher, args=args, train_dataset=data.datasets["train"],
            data_collator=DataCollatorForSeq2Seq(tokenizer, model=student), processing_class=tokenizer,
        )
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        steppers[label] = make_stepper(trainer, batch, opts.steps + opts.warmup)
        entries[label] = quantized_parameters(trainer.model)
    # Interleave the runs step by step, so drifts of the machine's speed hit all alike.
    times: dict[str, list[float]] = {label: [] for label in steppers}
    for i in range(opts.warmup + opts.steps):
        for label, step in steppers.items():
            elapsed = step()
            if i >= opts.warmup:
                times[label].append(elapsed)
    results = {
        label: {"median_s": statistics.median(t), "mean_s": statistics.mean(t), "steps": len(t)}
        for label, t in times.items()
    }
    quantized = entries[qd_label]
    quant_times = []
    for _ in range(opts.steps):
        start = time.perf_counter()
        for e in quantized:
            e.quantizer.quantize(e.shadow)
        quant_times.append(time.perf_counter() - start)
    results[qd_label]["quantize_all_weights_median_s"] = statistics.median(quant_times)
    fp, qd = results["fp distillation"]["median_s"], results[qd_label]["median_s"]
    overhead = qd / fp - 1
    header = run_header(
        command_line("scripts/benchmark_step_time.py"), git_commit(ROOT),
        teacher=os.path.basename(os.path.normpath(opts.teacher)),
        student=opts.shape or f"{opts.student_layers}+{opts.student_layers} layers copied from the teacher",
        batch=f"{opts.batch_size} sentence pairs from {os.path.basename(os.path.normpath(data_name))}",
        target="QD overhead <= 10 % of a full-precision distillation step",
    )
    steps = table(["run", "median step (ms)", "mean step (ms)"],
                  [(k, f"{v['median_s'] * 1e3:.1f}", f"{v['mean_s'] * 1e3:.1f}") for k, v in results.items()])
    q = results[qd_label]["quantize_all_weights_median_s"]
    verdict = (f"QD/fp step ratio: {qd / fp:.3f} (overhead {overhead * 100:+.1f} %; quantizing every weight once "
               f"takes {q * 1e3:.1f} ms). Target met: {'yes' if overhead <= 0.10 else 'no'}.")
    sections = [steps, verdict]
    data = {"results": results, "ratio": qd / fp, "overhead": overhead, "target_met": overhead <= 0.10}
    if dq_label:
        data["dq_qd_ratio"] = results[dq_label]["median_s"] / qd
        sections.append(f"DQ/QD step ratio: {data['dq_qd_ratio']:.3f}.")
    print(write_report(opts.output, header, sections, data))


if __name__ == "__main__":
    main()
