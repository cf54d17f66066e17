"""The real job's scale (opus-mt-en-de on WMT16), rehearsed offline on this machine.

    python scripts/benchmark_real_job.py                          # every part (about 20 minutes on 2 CPU cores)
    python scripts/benchmark_real_job.py --parts fullsize --steps 3
    python scripts/benchmark_real_job.py --parts seqkd --output benchmarks/results/real_job_seqkd_engines

Each part runs in its own process, so each peak RSS is that part's alone:
- `data`: a 1M-pair corpus of WMT sentence length (Multi30k training pairs joined two by two, written as an Arrow
  dataset on disk), loaded as the recipe loads `--dataset PATH` and tokenized by `tokenize_translation`: time and
  peak RSS (target: under 3 GB).
- `seqkd`: the shared Multi30k teacher's beam-4 translations of some of those sentences through
  `with_teacher_targets` (sharded, written as they go), with each `--seqkd_engines` (transformers, and a float32
  CTranslate2 export of the teacher): sentences/s, and the share of targets identical to transformers'.
- `fullsize`: a random Marian of opus-mt-en-de's shape (6+6 layers, d_model 512, 58,101 tokens) as the teacher of a
  6+1 layer-copied 4-bit student; token-level KD training steps with the live teacher and from the teacher cache
  (top-16; built first, timed): step time, target tokens/s, peak RSS.
Extrapolations to WMT16's 4.5M pairs are computed from the measurements. Writes
benchmarks/results/real_job_rehearsal.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
TEACHER = os.path.join(SHARED, "models", "multi30k-en-de-marian-7.7m")
MULTI30K = os.path.join(SHARED, "data", "multi30k")
WMT16_PAIRS = 4_500_000
OPUS_MT = dict(vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
               decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus(pairs: int, seed: int = 0):
    """Yield ``pairs`` WMT-length pairs: two random Multi30k training pairs joined (about 26 words a side)."""
    import random

    with open(os.path.join(MULTI30K, "train.en")) as f:
        en = f.read().splitlines()
    with open(os.path.join(MULTI30K, "train.de")) as f:
        de = f.read().splitlines()
    rng = random.Random(seed)
    for _ in range(pairs):
        i, j = rng.randrange(len(en)), rng.randrange(len(en))
        yield {"translation": {"de": f"{de[i]} {de[j]}", "en": f"{en[i]} {en[j]}"}}


def part_data(opts) -> dict:
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    from hfqd.data import tokenize_translation
    from hfqd.runner.translation import TranslationDataArguments, load_translation_data

    folder = os.path.join(opts.work, "wmt16-schema")
    start = time.perf_counter()
    train = Dataset.from_generator(corpus, gen_kwargs={"pairs": opts.pairs}, cache_dir=os.path.join(opts.work, "gen"))
    small = Dataset.from_generator(corpus, gen_kwargs={"pairs": 1000, "seed": 1},
                                   cache_dir=os.path.join(opts.work, "gen"))
    DatasetDict({"train": train, "validation": small, "test": small}).save_to_disk(folder)
    written = time.perf_counter() - start
    del train, small
    raw = load_translation_data(TranslationDataArguments(dataset=folder, dataset_config=None), seed=0)
    tokenizer = AutoTokenizer.from_pretrained(TEACHER)
    start = time.perf_counter()
    data = tokenize_translation(raw, tokenizer, "en", "de", 128, 128)
    seconds = time.perf_counter() - start
    train = data.datasets["train"]
    tokens = {column: token_count(train, column) for column in ("input_ids", "labels")}
    return {"pairs": opts.pairs, "write_seconds": written, "tokenize_seconds": seconds,
            "pairs_per_second": opts.pairs / seconds, "source_tokens": tokens["input_ids"],
            "target_tokens": tokens["labels"], "arrow_files_on_disk": bool(train.cache_files),
            "peak_rss_mb": peak_rss_mb(),
            "extrapolated_tokenize_seconds_4_5m": WMT16_PAIRS * seconds / opts.pairs}


def token_count(dataset, column: str) -> int:
    """Tokens in a list column, counted batch by batch in Arrow (never the whole column in Python)."""
    import pyarrow.compute as pc

    return sum(pc.sum(pc.list_value_length(batch[column])).as_py()
               for batch in dataset.select_columns([column]).with_format("arrow").iter(100_000))


def part_seqkd(opts) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from hfqd.distill import DistillationArguments
    from hfqd.distill.sequence import with_teacher_targets

    tokenizer = AutoTokenizer.from_pretrained(TEACHER)
    teacher = AutoModelForSeq2SeqLM.from_pretrained(TEACHER).eval()
    pairs = list(corpus(opts.seqkd_sentences, seed=2))
    enc = tokenizer([p["translation"]["en"] for p in pairs], max_length=128, truncation=True)
    dataset = Dataset.from_dict({"input_ids": enc["input_ids"], "labels": enc["input_ids"]})
    args = DistillationArguments(output_dir=os.path.join(opts.work, "seqkd-run"), report_to="none",
                                 sequence_num_beams=4, sequence_batch_size=opts.seqkd_batch_size,
                                 sequence_engine=opts.seqkd_engine,
                                 sequence_cache_dir=os.path.join(opts.work, "seqkd-cache"), use_cpu=True)
    start = time.perf_counter()  # the CTranslate2 engine's export of the teacher is inside the timing
    targets = with_teacher_targets(teacher, dataset, args, shard_size=opts.seqkd_sentences // 4,
                                   tokenizer=tokenizer)
    seconds = time.perf_counter() - start
    rate = len(targets) / seconds
    with open(os.path.join(opts.work, f"seqkd-{opts.seqkd_engine}.json"), "w") as f:
        json.dump(targets["labels"][:], f)
    return {"engine": opts.seqkd_engine, "threads": torch.get_num_threads(),
            "sentences": len(targets), "beams": 4, "batch_size": opts.seqkd_batch_size, "seconds": seconds,
            "sentences_per_second": rate, "teacher": "shared Multi30k Marian (7.7M parameters)",
            "extrapolated_hours_1m": 1e6 / rate / 3600, "extrapolated_hours_4_5m": WMT16_PAIRS / rate / 3600,
            "peak_rss_mb": peak_rss_mb()}


def random_batch_dataset(rows: int, length: int, vocab: int, seed: int = 0):
    import torch
    from datasets import Dataset

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab - 1, (rows, length), generator=g)
    ids[:, -1] = 0  # eos
    labels = torch.randint(2, vocab - 1, (rows, length), generator=g)
    labels[:, -1] = 0
    return Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": torch.ones_like(ids).tolist(),
                              "labels": labels.tolist()})


def step_timer():
    """A TrainerCallback recording the wall-clock seconds of each optimizer step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.start = [], 0.0

        def on_step_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            self.times.append(time.perf_counter() - self.start)

    return StepTimer()


def part_fullsize(opts) -> dict:
    import statistics

    import torch
    from transformers import MarianConfig, MarianMTModel

    from hfqd.distill import DistillationArguments, QuantizedDistillationTrainer, make_student_from_teacher
    from hfqd.quant import model_size

    torch.manual_seed(0)
    config = MarianConfig(**OPUS_MT, pad_token_id=58100, eos_token_id=0, decoder_start_token_id=58100,
                          max_position_embeddings=512, share_encoder_decoder_embeddings=True)
    teacher = MarianMTModel(config).eval()
    student = make_student_from_teacher(teacher, 6, 1)
    rows = opts.batch_size * (opts.steps + 1)
    dataset = random_batch_dataset(rows, opts.length, config.vocab_size)

    def collate(features):  # equal lengths: no padding needed
        return {k: torch.tensor([f[k] for f in features]) for k in ("input_ids", "attention_mask", "labels")}

    timer = step_timer()
    cache_dir = os.path.join(opts.work, "teacher-cache") if opts.mode == "cached" else ""
    args = DistillationArguments(
        output_dir=os.path.join(opts.work, f"fullsize-{opts.mode}"), report_to="none", use_cpu=True, bits=4,
        bucket_size=256, alpha=0.7, temperature=1.0, per_device_train_batch_size=opts.batch_size,
        max_steps=opts.steps + 1, save_strategy="no", logging_steps=1, learning_rate=1e-4,
        teacher_cache_dir=cache_dir, teacher_top_k=16, teacher_cache_batch_size=opts.batch_size,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    start = time.perf_counter()
    trainer = QuantizedDistillationTrainer(model=student, teacher_model=teacher, args=args, train_dataset=dataset,
                                           data_collator=collate, callbacks=[timer])
    setup = time.perf_counter() - start  # includes building the cache in "cached" mode
    trainer.train()
    steps = timer.times[1:]  # the first step warms up allocators and caches
    step = statistics.median(steps)
    tokens = opts.batch_size * opts.length
    return {"mode": opts.mode, "teacher_params": sum(p.numel() for p in teacher.parameters()),
            "student_params": model_size(student).params, "student": "6+1 layers copied, 4-bit QD, buckets of 256",
            "batch_sentences": opts.batch_size, "tokens_per_side": opts.length, "measured_steps": len(steps),
            "step_seconds_median": step, "target_tokens_per_second": tokens / step, "setup_seconds": setup,
            "cache_rows": rows if opts.mode == "cached" else None, "peak_rss_mb": peak_rss_mb(),
            "threads": torch.get_num_threads()}


def run_part(name: str, opts, extra: list[str]) -> dict:
    """Run one part in a child process (its own peak RSS) and return its JSON line."""
    cmd = [sys.executable, __file__, "--_part", name, "--work", opts.work, *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"part {name} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def same_targets(rows: list[dict], work: str) -> None:
    """Add each engine's share of targets identical to transformers' (when both engines ran)."""
    def labels(engine):
        with open(os.path.join(work, f"seqkd-{engine}.json")) as f:
            return json.load(f)

    if "transformers" not in [row["engine"] for row in rows]:
        return
    reference = labels("transformers")
    for row in rows:
        ours = labels(row["engine"])
        row["same_as_transformers"] = sum(a == b for a, b in zip(ours, reference)) / len(reference)


def report(results: dict, opts) -> str:
    from hfqd.eval.report import table, write_report
    from hfqd.utils import command_line, git_commit, run_header

    header = run_header(command_line("scripts/benchmark_real_job.py"), git_commit(ROOT), **{
        "machine note": opts.note or "other processes may have shared the 2 cores",
        "extrapolation": f"linear in the number of pairs, to WMT16's {WMT16_PAIRS:,}",
    })
    sections = []
    if "data" in results:
        d = results["data"]
        sections.append("## 1M-pair corpus: load and tokenize\n\n" + table(
            ["pairs", "tokenize (s)", "pairs/s", "source / target tokens", "peak RSS (MB)", "4.5M pairs (min)"],
            [(f"{d['pairs']:,}", f"{d['tokenize_seconds']:.0f}", f"{d['pairs_per_second']:,.0f}",
              f"{d['source_tokens']:,} / {d['target_tokens']:,}", f"{d['peak_rss_mb']:.0f}",
              f"{d['extrapolated_tokenize_seconds_4_5m'] / 60:.0f}")]))
    if "seqkd" in results:
        sections.append("## Sequence-level KD targets (beam 4, shared teacher)\n\n" + table(
            ["engine", "sentences", "batch", "threads", "sentences/s", "same targets as transformers",
             "1M pairs (h)", "4.5M pairs (h)", "peak RSS (MB)"],
            [(s.get("engine", "transformers"), s["sentences"], s["batch_size"], s.get("threads", ""),
              f"{s['sentences_per_second']:.1f}",
              "" if s.get("same_as_transformers") is None else f"{100 * s['same_as_transformers']:.1f}%",
              f"{s['extrapolated_hours_1m']:.1f}", f"{s['extrapolated_hours_4_5m']:.1f}", f"{s['peak_rss_mb']:.0f}")
             for s in results["seqkd"]]))
    full = [results[k] for k in ("fullsize-live", "fullsize-cached") if k in results]
    if full:
        sections.append("## Full size: opus-mt-en-de's shape, 6+1 copied 4-bit student, token-level KD\n\n" + table(
            ["teacher", "batch (sentences x tokens)", "step (s)", "target tokens/s", "setup (s)", "peak RSS (MB)"],
            [(r["mode"], f"{r['batch_sentences']} x {r['tokens_per_side']}", f"{r['step_seconds_median']:.2f}",
              f"{r['target_tokens_per_second']:.0f}", f"{r['setup_seconds']:.0f}", f"{r['peak_rss_mb']:.0f}")
             for r in full]))
    return write_report(opts.output, header, sections, {"results": results})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["data", "seqkd", "fullsize"],
                        choices=["data", "seqkd", "fullsize"])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--seqkd_sentences", type=int, default=1024)
    parser.add_argument("--seqkd_batch_size", type=int, default=64)
    parser.add_argument("--seqkd_engines", nargs="+", default=["transformers", "ctranslate2"],
                        choices=["transformers", "ctranslate2"], help="Engines of the teacher's beam search.")
    parser.add_argument("--seqkd_engine", default="transformers", help=argparse.SUPPRESS)
    parser.add_argument("--batch_size", type=int, default=32, help="Sentences per full-size KD step.")
    parser.add_argument("--length", type=int, default=30, help="Tokens per sentence, each side (WMT average).")
    parser.add_argument("--steps", type=int, default=4, help="Timed full-size steps (after one warm-up step).")
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "real_job"))
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "real_job_rehearsal"))
    parser.add_argument("--note", default="", help="What else ran on the machine (recorded in the results).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (corpus, caches).")
    parser.add_argument("--_part", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="live", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts._part:
        part = {"data": part_data, "seqkd": part_seqkd, "fullsize": part_fullsize}[opts._part]
        print(json.dumps(part(opts)))
        return
    os.makedirs(opts.work, exist_ok=True)
    common = ["--pairs", str(opts.pairs), "--seqkd_sentences", str(opts.seqkd_sentences), "--seqkd_batch_size",
              str(opts.seqkd_batch_size), "--batch_size", str(opts.batch_size), "--length", str(opts.length),
              "--steps", str(opts.steps)]
    results = {}
    try:
        for name in opts.parts:
            if name == "fullsize":
                for mode in ("live", "cached"):
                    results[f"fullsize-{mode}"] = run_part(name, opts, common + ["--mode", mode])
            elif name == "seqkd":
                results[name] = [run_part(name, opts, common + ["--seqkd_engine", engine])
                                 for engine in opts.seqkd_engines]
                same_targets(results[name], opts.work)
            else:
                results[name] = run_part(name, opts, common)
    finally:
        if not opts.keep:
            shutil.rmtree(opts.work, ignore_errors=True)
    print(report(results, opts))


if __name__ == "__main__":
    main()
