"""What an output shortlist (a CTranslate2 vocabulary map) buys in speed and costs in BLEU, on Multi30k.

    python scripts/benchmark_vocab_map.py --models PATH [PATH ...] [--per_token 10 20 50] [--always 100]

For the shared teacher and each model given (packed students included, all with the teacher's vocabulary): an int8
CTranslate2 export without a map and one with a map per --per_token, built from the training pairs by
`hfqd.export.write_vocab_map`. Scores BLEU (beam 4) on test2016 and test2017 and times greedy decoding at batch 32
and batch 1 in sentences per CPU-second, every translator interleaved with the others, one thread; at batch 32 the
teacher in transformers too (greedy, one thread), the baseline of the "15x the teacher" target. Writes
benchmarks/results/vocab_map.{md,json} with the command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import ctranslate2
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hfqd.bench.time_budget import torch_threads
from hfqd.data import load_parallel_dir
from hfqd.eval.deploy import interleaved_rates
from hfqd.eval.report import table, write_report
from hfqd.eval.translation import corpus_scores, translate, translate_ctranslate2
from hfqd.export import count_cooccurrence, export_ctranslate2, vocab_map_lines
from hfqd.utils import atomic_write_text, command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
TEACHER_HF = ("teacher in transformers", None)  # the baseline of "15x the teacher" (batch 32): as it ships


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=os.path.join(SHARED, "models", "multi30k-en-de-marian-7.7m"))
    parser.add_argument("--dataset_dir", default=os.path.join(SHARED, "data", "multi30k"))
    parser.add_argument("--models", nargs="*", default=[], help="further model folders (e.g. packed students)")
    parser.add_argument("--per_token", nargs="+", type=int, default=[10, 20, 50],
                        help="candidates per source token, one map each")
    parser.add_argument("--always", type=int, default=100, help="most frequent target tokens, always candidates")
    parser.add_argument("--splits", nargs="+", default=["test2016", "test2017"])
    parser.add_argument("--timed_sentences", type=int, default=256)
    parser.add_argument("--max_length", type=int, default=128, help="source tokens kept and new tokens generated")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (median kept)")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "vocab_map"))
    return parser.parse_args()


def main() -> None:
    opts = parse()
    length = opts.max_length
    data = load_parallel_dir(opts.dataset_dir, "en", "de", {"train": "train", **{s: s for s in opts.splits}})
    tokenizer = AutoTokenizer.from_pretrained(opts.teacher)
    models = [("teacher", opts.teacher)] + [("/".join(Path(m).resolve().parts[-2:]), m) for m in opts.models]
    for name, folder in models[1:]:
        if AutoTokenizer.from_pretrained(folder).get_vocab() != tokenizer.get_vocab():
            raise ValueError(f"{name} does not share the teacher's vocabulary; one map serves them all here.")
    train = data["train"]["translation"]
    stats = count_cooccurrence([p["en"] for p in train], [p["de"] for p in train], tokenizer)
    rows, translators = [], {}
    with tempfile.TemporaryDirectory() as work:
        maps = {None: None}
        for k in opts.per_token:
            maps[k] = os.path.join(work, f"vmap-{k}.txt")
            atomic_write_text(maps[k], "\n".join(vocab_map_lines(stats, tokenizer, k, opts.always)) + "\n")
        for index, (name, folder) in enumerate(models):
            for k, vmap in maps.items():
                out = export_ctranslate2(folder, os.path.join(work, f"ct2-{index}-{k}"), "int8", vocab_map=vmap)
                translator = ctranslate2.Translator(out, intra_threads=1)
                translators[(name, k)] = translator
                row = {"model": name, "per_token": k, "always": opts.always if k else None}
                for split in opts.splits:
                    sources = [p["en"] for p in data[split]["translation"]]
                    refs = [p["de"] for p in data[split]["translation"]]
                    hyps = translate_ctranslate2(translator, tokenizer, sources, 32, 4, length, length,
                                                 use_vmap=k is not None)
                    row[f"bleu_{split}_beam4"] = corpus_scores(hyps, refs)["bleu"]
                rows.append(row)
                print(row, flush=True)
        timed = [p["en"] for p in data[opts.splits[0]]["translation"]][: opts.timed_sentences]

        def run(key, batch):
            return lambda: len(translate_ctranslate2(translators[key], tokenizer, timed, batch, 1, length, length,
                                                     use_vmap=key[1] is not None))

        teacher_hf = AutoModelForSeq2SeqLM.from_pretrained(opts.teacher).eval()
        for batch in (32, 1):
            work = {key: run(key, batch) for key in translators}
            if batch == 32:
                work[TEACHER_HF] = lambda: len(translate(teacher_hf, tokenizer, timed, 32, 1, length, length))
            with torch_threads(1):
                rates = interleaved_rates(work, opts.repeats)
            for row in rows:
                key = (row["model"], row["per_token"])
                row[f"sent_per_cpu_s_b{batch}"] = rates[key]["cpu"]
                row[f"speed_b{batch}_vs_no_map"] = rates[key]["cpu"] / rates[(row["model"], None)]["cpu"]
                row[f"speed_b{batch}_vs_teacher"] = rates[key]["cpu"] / rates[("teacher", None)]["cpu"]
                if batch == 32:
                    row["speed_b32_vs_teacher_hf"] = rates[key]["cpu"] / rates[TEACHER_HF]["cpu"]
    report(opts, rows)


def report(opts: argparse.Namespace, rows: list[dict]) -> None:
    base = {r["model"]: r for r in rows if r["per_token"] is None}
    columns = ["model", "map (per token / always)"]
    columns += [f"BLEU {s} (vs no map)" for s in opts.splits]
    columns += ["CT2 int8 speed b32 vs no map", "b32 vs teacher", "b32 vs teacher in transformers", "b1 vs no map",
                "b1 vs teacher"]
    cells = [[r["model"], "none" if r["per_token"] is None else f"{r['per_token']} / {r['always']}"]
             + [f"{r[f'bleu_{s}_beam4']:.2f} ({r[f'bleu_{s}_beam4'] - base[r['model']][f'bleu_{s}_beam4']:+.2f})"
                for s in opts.splits]
             + [f"{r[key]:.2f}x" for key in ("speed_b32_vs_no_map", "speed_b32_vs_teacher", "speed_b32_vs_teacher_hf",
                                               "speed_b1_vs_no_map", "speed_b1_vs_teacher")] for r in rows]
    header = run_header(command_line("scripts/benchmark_vocab_map.py"), git_commit(ROOT),
                        engine=f"ctranslate2 {ctranslate2.__version__} int8, 1 thread",
                        map=f"built from {opts.dataset_dir} train (Dice of sentence co-occurrence, "
                            f"pairs seen at least twice) + the {opts.always} most frequent target tokens",
                        speed=f"greedy, {opts.timed_sentences} {opts.splits[0]} sentences, sentences per "
                              f"CPU-second, every translator interleaved ({opts.repeats} rounds, medians)")
    print(write_report(opts.output, header, [table(columns, cells)], {"rows": rows}))


if __name__ == "__main__":
    main()
