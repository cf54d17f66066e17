"""What the teacher cache saves and what its top-k costs: step time, build time, size, and BLEU against live KD.

    python scripts/benchmark_teacher_cache.py [--ks 8 16 32 64] [--steps 300]

On Multi30k with the shared teacher and the benchmark student (fresh Marian, d_model 128, 2+1 layers):
1. step time of labels-only training, of live token-level KD and of KD from the cache (default k), timed in turn
   (labels, live, cached, labels, ...) over the same batches; the ratios to labels-only are the result;
2. the cache's build time and size on disk for each k;
3. qd4 and qd2 trained the same number of steps from one warm-started student with live full-distribution KD and
   with the cache at each k, scored on test2016 (beam 4).
Writes benchmarks/results/teacher_cache.{md,json} with the command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq

from hfqd import DistillationArguments, QuantizedDistillationTrainer, make_student_from_config
from hfqd.data import load_parallel_dir, tokenize_translation
from hfqd.eval.deploy import folder_bytes
from hfqd.distill.teacher_cache import build_teacher_cache
from hfqd.eval.translation import corpus_scores, translate
from hfqd.runner.methods import train_model
from hfqd.eval.report import table, write_report
from hfqd.utils import command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")


def student(teacher):
    return make_student_from_config(teacher, seed=0, d_model=128, encoder_layers=2, decoder_layers=1,
                                    encoder_ffn_dim=512, decoder_ffn_dim=512, encoder_attention_heads=4,
                                    decoder_attention_heads=4)


def step_times(teacher, tokenizer, train, base: DistillationArguments, cache_dir: str, k: int, steps: int,
               rounds: int) -> tuple[dict[str, float], dict]:
    """Median seconds per optimizer step of each mode, the modes taking turns; and the cache's build time and
    size."""
    modes = {
        "labels only": dict(alpha=0.0, distillation_mode="none"),
        "live teacher": dict(teacher_cache_dir=None),
        "cached teacher": dict(teacher_cache_dir=cache_dir, teacher_top_k=k),
    }
    trainers = {}
    for name, extra in modes.items():
        args = dataclasses.replace(base, max_steps=steps, bits=4, **extra)
        model = student(teacher)
        trainers[name] = lambda args=args, model=model: QuantizedDistillationTrainer(
            model=copy.deepcopy(model), teacher_model=teacher if args.uses_teacher else None, args=args,
            train_dataset=train, data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
            processing_class=tokenizer)
    existed = os.path.isdir(cache_dir) and bool(os.listdir(cache_dir))
    start = time.perf_counter()
    trainers["cached teacher"]()  # builds the cache (or finds it), outside the step timing
    build = None if existed else {"k": k, "seconds": time.perf_counter() - start, "mb": folder_bytes(cache_dir) / 1e6}
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(rounds):
        for name, make in trainers.items():
            trainer = make()
            start = time.process_time()
            trainer.train()
            times[name].append((time.process_time() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}, build


def build_cache(teacher, tokenizer, train, work: str, k: int) -> dict:
    """Build time and size on disk of the cache at ``k``."""
    folder = os.path.join(work, f"cache-k{k}")
    start = time.perf_counter()
    build_teacher_cache(teacher, train, DataCollatorForSeq2Seq(tokenizer, model=teacher), folder, k, 1.0)
    return {"k": k, "seconds": time.perf_counter() - start, "mb": folder_bytes(folder) / 1e6}


def bleu_rows(teacher, tokenizer, data, base: DistillationArguments, work: str, opts) -> list[dict]:
    """qd4 and qd2 from one warm-started student, live full-distribution KD against the cache at each k."""
    warm_args = dataclasses.replace(base, max_steps=opts.warm_start_steps, bits=None, alpha=0.0,
                                    distillation_mode="none", learning_rate=2e-3, warmup_steps=300,
                                    lr_scheduler_type="inverse_sqrt")
    warm, _ = train_model(student(teacher), None, tokenizer, data.datasets["train"], warm_args)
    warm = warm.cpu().eval()
    sources, refs = data.sources["test2016"], data.references["test2016"]
    rows = []
    for bits in (4, 2):
        for k in [None, *opts.ks]:
            args = dataclasses.replace(base, max_steps=opts.steps, bits=bits,
                                       teacher_cache_dir=None if k is None else os.path.join(work, f"cache-k{k}"),
                                       teacher_top_k=k or opts.default_k)
            model, seconds = train_model(copy.deepcopy(warm), teacher, tokenizer, data.datasets["train"], args)
            bleu = corpus_scores(translate(model.eval(), tokenizer, sources, 64, 4, 128, 128), refs)["bleu"]
            rows.append({"row": f"qd{bits}", "teacher": "live" if k is None else f"cache k={k}",
                         "bleu_test2016_beam4": bleu, "train_seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=os.path.join(SHARED, "models", "multi30k-en-de-marian-7.7m"))
    parser.add_argument("--dataset_dir", default=os.path.join(SHARED, "data", "multi30k"))
    parser.add_argument("--ks", nargs="+", type=int, default=[8, 16, 32, 64])
    parser.add_argument("--default_k", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300, help="training steps of each qd row")
    parser.add_argument("--warm_start_steps", type=int, default=1500)
    parser.add_argument("--timing_steps", type=int, default=20)
    parser.add_argument("--timing_rounds", type=int, default=3)
    parser.add_argument("--test_sentences", type=int, default=1000)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "teacher_cache"))
    parser.add_argument("--cache_dir", default=os.path.join(ROOT, "cache", "teacher_cache"),
                        help="teacher cache of the timing part (reused when it exists, as by the cpu budget)")
    parser.add_argument("--parts", nargs="+", default=["timing", "builds", "bleu"],
                        help="what to measure (timing includes the build at --default_k)")
    opts = parser.parse_args()
    commit = git_commit(ROOT)
    teacher = AutoModelForSeq2SeqLM.from_pretrained(opts.teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(opts.teacher)
    raw = load_parallel_dir(opts.dataset_dir, "en", "de", {"train": "train", "test2016": "test2016"})
    raw["test2016"] = raw["test2016"].select(range(opts.test_sentences))
    data = tokenize_translation(raw, tokenizer, "en", "de", 128, 128)
    train = data.datasets["train"]
    work = tempfile.mkdtemp(prefix="hfqd-cache-bench-")
    base = DistillationArguments(
        output_dir=os.path.join(work, "run"), per_device_train_batch_size=64, learning_rate=1e-3,
        lr_scheduler_type="constant", adam_beta2=0.98, max_grad_norm=1.0, report_to="none", save_strategy="no",
        disable_tqdm=True, bucket_size=256, alpha=0.7, temperature=1.0, seed=0, logging_steps=100)
    result: dict = {"k_default": opts.default_k, "step_seconds": {}, "step_ratio_vs_labels": {}, "builds": [],
                    "bleu": []}
    try:
        if "timing" in opts.parts:
            result["step_seconds"], build = step_times(teacher, tokenizer, train, base, opts.cache_dir,
                                                       opts.default_k, opts.timing_steps, opts.timing_rounds)
            result["builds"] += [build] if build else []
            labels = result["step_seconds"]["labels only"]
            result["step_ratio_vs_labels"] = {k: v / labels for k, v in result["step_seconds"].items()}
        if "builds" in opts.parts or "bleu" in opts.parts:
            done = {b["k"] for b in result["builds"]}
            result["builds"] += [build_cache(teacher, tokenizer, train, work, k) for k in opts.ks if k not in done]
        if "bleu" in opts.parts:
            result["bleu"] = bleu_rows(teacher, tokenizer, data, base, work, opts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = run_header(command_line("scripts/benchmark_teacher_cache.py"), commit, **{
        "setup": f"Multi30k train (29,000 pairs), shared 7.7M teacher, student d_model 128 2+1; batch 64; step times "
                 f"in CPU-seconds per step ({opts.timing_steps} steps per run, {opts.timing_rounds} rounds taken in "
                 f"turn, medians, {torch.get_num_threads()} threads); qd rows: {opts.steps} steps each from one student "
                 f"trained {opts.warm_start_steps} steps on labels, lr 1e-3 constant, alpha 0.7, T 1, buckets of 256; "
                 f"BLEU on the first {opts.test_sentences} test2016 sentences, beam 4",
    })
    sections = []
    if result["step_seconds"]:
        sections.append(table(["training step", "CPU-seconds per step", "vs labels only"], [
            (name, f"{sec:.3f}", f"{result['step_ratio_vs_labels'][name]:.2f}")
            for name, sec in result["step_seconds"].items()]))
    if result["builds"]:
        sections.append(table(["k", "build (s, wall clock)", "size (MB)"],
                              [(b["k"], f"{b['seconds']:.0f}", f"{b['mb']:.1f}") for b in result["builds"]]))
    if result["bleu"]:
        sections.append(table(["row", "teacher", "BLEU test2016 beam 4", "train (s)"], [
            (b["row"], b["teacher"], f"{b['bleu_test2016_beam4']:.2f}", f"{b['train_seconds']:.0f}")
            for b in result["bleu"]]))
    print(write_report(opts.output, header, sections, result))


if __name__ == "__main__":
    main()
