"""How exact is the CTranslate2 export? Token-for-token agreement in float32, BLEU after int8, on Multi30k.

    python scripts/benchmark_ct2_export.py [--models PATH ...]

For the shared Multi30k teacher, its 4-bit packed post-training quantization (made here, a packed hfqd model of the
teacher's shape), and any packed students given with --models: export with hfqd.export_ctranslate2, then
- float32: the share of test2016 sentences whose greedy translation is the same token sequence in CTranslate2 and in
  transformers `generate` (target: at least 99%);
- int8: BLEU (beam 4) on test2016 and test2017 in both engines (target: within 0.3), beside the float32 export's
  beam-4 BLEU, which separates what CTranslate2's beam search changes from what int8 rounding does, and the int8
  export computed in float32, which separates rounding the weights from rounding activations at run time. CTranslate2
  searches with --patience 2 by default here: with its own default (1) it stops earlier than transformers' beam
  search, which alone moved the teacher's test2017 BLEU by +0.27 (28.25 against 27.98; 27.97 with patience 2).
  Beside each int8 difference: the share of sentences whose beam-4 translation is unchanged by the export, and the
  paired bootstrap p-value of the difference (sacreBLEU, 1,000 resamples): whether the test set can tell it from
  chance.
With --speed, also what each way of running the export costs: greedy sentences per CPU-second (batch 32, the first
256 test2016 sentences, one thread) of the int8 export, the same int8 weights computed in float32, and the float32
export, each against the teacher's int8 export, interleaved (hfqd.eval.deploy.interleaved_rates).
Writes benchmarks/results/ct2_export.{md,json} with the command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import ctranslate2
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hfqd import QuantConfig, export_ctranslate2, quantize_, save_packed
from hfqd.data import load_parallel_dir
from hfqd.eval.deploy import interleaved_rates
from hfqd.eval.translation import bleu_difference_p_value, corpus_scores, translate, translate_ctranslate2
from hfqd.eval.report import table, write_report
from hfqd.utils import command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
MAX_NEW_TOKENS = 128
SPEED_MODES = ("int8", "int8_weights_float32_compute", "float32")  # the ways --speed runs each export


@torch.no_grad()
def greedy_ids_transformers(model, tokenizer, sources, batch_size=32) -> list[list[int]]:
    eos = tokenizer.eos_token_id
    out = []
    for start in range(0, len(sources), batch_size):
        enc = tokenizer(sources[start:start + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=MAX_NEW_TOKENS)
        generated = model.generate(**enc, num_beams=1, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
        for row in generated[:, 1:].tolist():
            out.append(row[: row.index(eos)] if eos in row else row)
    return out


def greedy_ids_ctranslate2(translator, tokenizer, sources, batch_size=32) -> list[list[int]]:
    out = []
    for start in range(0, len(sources), batch_size):
        ids = tokenizer(sources[start:start + batch_size], truncation=True, max_length=MAX_NEW_TOKENS)["input_ids"]
        results = translator.translate_batch([tokenizer.convert_ids_to_tokens(x) for x in ids], beam_size=1,
                                             max_decoding_length=MAX_NEW_TOKENS - 1)
        out += [tokenizer.convert_tokens_to_ids(r.hypotheses[0]) for r in results]
    return out


def speeds(translators: dict[str, "ctranslate2.Translator"], tokenizer, teacher_int8, sources: list[str],
           repeats: int) -> dict[str, float]:
    """Greedy batch-32 sentences per CPU-second of each translator, relative to the teacher's int8 export."""
    def run(translator):
        return lambda: len(translate_ctranslate2(translator, tokenizer, sources, 32, 1, MAX_NEW_TOKENS,
                                                 MAX_NEW_TOKENS))

    rates = interleaved_rates({"teacher": run(teacher_int8), **{k: run(t) for k, t in translators.items()}}, repeats)
    return {f"speed_{k}_vs_teacher_int8": rates[k]["cpu"] / rates["teacher"]["cpu"] for k in translators}


def measure(name: str, folder: str, data, splits: list[str], workdir: str, patience: int,
            teacher_int8=None, repeats: int = 5) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    row = {"model": name, "source": folder}
    first = splits[0]
    sources = [ex["en"] for ex in data[first]["translation"]]
    fp32 = ctranslate2.Translator(export_ctranslate2(folder, os.path.join(workdir, "float32"), "float32",
                                                     force=True), intra_threads=1)
    ours = greedy_ids_transformers(model, tokenizer, sources)
    theirs = greedy_ids_ctranslate2(fp32, tokenizer, sources)
    row["float32_same_greedy_tokens"] = sum(a == b for a, b in zip(ours, theirs)) / len(sources)
    int8_folder = export_ctranslate2(folder, os.path.join(workdir, "int8"), "int8", force=True)
    int8 = ctranslate2.Translator(int8_folder, intra_threads=1)
    # The same int8 weights computed in float32 (dequantized at load): what rounding the weights costs, apart from
    # the activations that int8 compute also rounds at run time.
    int8_weights = ctranslate2.Translator(int8_folder, compute_type="float32", intra_threads=1)
    for split in splits:
        src = [ex["en"] for ex in data[split]["translation"]]
        refs = [ex["de"] for ex in data[split]["translation"]]
        hf = translate(model, tokenizer, src, 32, 4, MAX_NEW_TOKENS, MAX_NEW_TOKENS)
        ct2 = translate_ctranslate2(int8, tokenizer, src, 32, 4, MAX_NEW_TOKENS, MAX_NEW_TOKENS, patience=patience)
        # The float32 export's beam search: what CTranslate2's search alone changes, before int8 rounding.
        ct2_fp32 = translate_ctranslate2(fp32, tokenizer, src, 32, 4, MAX_NEW_TOKENS, MAX_NEW_TOKENS,
                                         patience=patience)
        row[f"bleu_{split}_beam4_ct2_float32"] = corpus_scores(ct2_fp32, refs)["bleu"]
        weights_only = translate_ctranslate2(int8_weights, tokenizer, src, 32, 4, MAX_NEW_TOKENS, MAX_NEW_TOKENS,
                                             patience=patience)
        row[f"bleu_{split}_beam4_ct2_int8_weights_float32_compute"] = corpus_scores(weights_only, refs)["bleu"]
        row[f"bleu_{split}_beam4_transformers"] = corpus_scores(hf, refs)["bleu"]
        row[f"bleu_{split}_beam4_ct2_int8"] = corpus_scores(ct2, refs)["bleu"]
        row[f"int8_minus_transformers_{split}"] = row[f"bleu_{split}_beam4_ct2_int8"] - row[
            f"bleu_{split}_beam4_transformers"]
        row[f"int8_same_beam4_output_{split}"] = sum(a == b for a, b in zip(hf, ct2)) / len(hf)
        row[f"int8_difference_p_value_{split}"] = bleu_difference_p_value(hf, ct2, refs)
    if teacher_int8 is not None:
        modes = dict(zip(SPEED_MODES, (int8, int8_weights, fp32)))
        row.update(speeds(modes, tokenizer, teacher_int8, sources[:256], repeats))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=os.path.join(SHARED, "models", "multi30k-en-de-marian-7.7m"))
    parser.add_argument("--dataset_dir", default=os.path.join(SHARED, "data", "multi30k"))
    parser.add_argument("--models", nargs="*", default=[], help="further model folders (e.g. packed qd4 students)")
    parser.add_argument("--splits", nargs="+", default=["test2016", "test2017"])
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "ct2_export"))
    parser.add_argument("--patience", type=int, default=2,
                        help="CTranslate2 beam patience; 2 stops about where transformers' default beam search does")
    parser.add_argument("--speed", action="store_true", help="also time each export mode against the teacher's int8")
    parser.add_argument("--speed_repeats", type=int, default=5, help="interleaved timing rounds (median kept)")
    opts = parser.parse_args()
    torch.set_num_threads(1)  # both engines at one thread, as the speed benchmarks
    data = load_parallel_dir(opts.dataset_dir, "en", "de", {s: s for s in opts.splits})
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        teacher = AutoModelForSeq2SeqLM.from_pretrained(opts.teacher)
        pm4 = os.path.join(workdir, "teacher-pm4")
        save_packed(quantize_(teacher, QuantConfig(bits=4, bucket_size=256)), pm4,
                    tokenizer=AutoTokenizer.from_pretrained(opts.teacher))
        models = [("teacher", opts.teacher), ("teacher 4-bit packed (pm4)", pm4)]
        models += [(m, m) for m in opts.models]  # named as given: two runs may share SHAPE/ROW
        teacher_int8 = None
        if opts.speed:
            folder = export_ctranslate2(opts.teacher, os.path.join(workdir, "teacher-int8"), "int8", force=True)
            teacher_int8 = ctranslate2.Translator(folder, intra_threads=1)
        for index, (name, folder) in enumerate(models):
            rows.append(measure(name, folder, data, opts.splits, os.path.join(workdir, f"export-{index}"),
                                opts.patience, teacher_int8, opts.speed_repeats))
            print(json.dumps(rows[-1]))
    header = run_header(command_line("scripts/benchmark_ct2_export.py"), git_commit(ROOT),
                        engines=f"transformers generate and ctranslate2 {ctranslate2.__version__}, 1 thread each; "
                                f"CTranslate2 beam patience {opts.patience}",
                        targets="float32: >= 99% of test sentences decode to the same greedy tokens; int8: beam-4 "
                                "BLEU within 0.3 of transformers")
    columns = ["model", "float32: same greedy tokens"]
    columns += [f"{s} BLEU transformers / CT2 float32 / CT2 int8 weights in float32 / CT2 int8 (int8 diff, p; "
                "unchanged sentences)" for s in opts.splits]
    cells = [[r["model"], f"{100 * r['float32_same_greedy_tokens']:.1f}%"]
             + [f"{r[f'bleu_{s}_beam4_transformers']:.2f} / {r[f'bleu_{s}_beam4_ct2_float32']:.2f} / "
                f"{r[f'bleu_{s}_beam4_ct2_int8_weights_float32_compute']:.2f} / "
                f"{r[f'bleu_{s}_beam4_ct2_int8']:.2f} ({r[f'int8_minus_transformers_{s}']:+.2f}, "
                f"p {r[f'int8_difference_p_value_{s}']:.2f}; {100 * r[f'int8_same_beam4_output_{s}']:.0f}%)"
                for s in opts.splits] for r in rows]
    tables = [table(columns, cells)]
    if opts.speed:
        tables.append(table(["model", "greedy speed vs the teacher's CT2 int8: int8 / int8 weights in float32 / "
                                      "float32 export"],
                            [[r["model"], " / ".join(f"{r[f'speed_{m}_vs_teacher_int8']:.2f}x" for m in SPEED_MODES)]
                             for r in rows]))
    print(write_report(opts.output, header, tables, {"rows": rows}))


if __name__ == "__main__":
    main()
