"""Where does a low-bit weight cost a translation student most? One part quantized, the rest left in fp32.

    python scripts/benchmark_bit_sensitivity.py --model PATH      # a trained fp32 student (e.g. a frontier kd row)

The 2-bit students of the frontier stay 2-3 BLEU behind the teacher even from a kd student that beats it, so the
question is which weights to give more bits. For each part of the model (the tied embedding, which is also the
output layer; the encoder layers; the decoder layers; everything but the embedding; everything) and each width,
the part's weights are quantized after training (uniform, bucketed, as the QD rows store them) while every other
weight stays fp32, and the greedy BLEU on the validation split is measured: the BLEU a part loses alone. This is
post-training quantization, so it ranks the parts by how much their rounding error costs before any quantized
training repairs it, not what QD reaches. Only the validation split is used (the test splits stay for the rows).
Writes benchmarks/results/bit_sensitivity.{md,json} with the command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hfqd import QuantConfig, quantize_
from hfqd.bench.time_budget import torch_threads
from hfqd.data import load_parallel_dir
from hfqd.eval.report import table, write_report
from hfqd.eval.translation import corpus_scores, translate
from hfqd.quant import model_size
from hfqd.utils import command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "multi30k")
# Marian ties embed_tokens and lm_head to model.shared, so quantizing the embedding quantizes the output layer too
EMBEDDING = ("model.shared", "*embed_tokens", "lm_head")
# part -> (include, exclude) glob patterns on module names (hfqd.QuantConfig)
PARTS = {
    "embedding": (EMBEDDING, ()),
    "encoder layers": (("model.encoder.layers.*",), ()),
    "decoder layers": (("model.decoder.layers.*",), ()),
    "all but embedding": ((), EMBEDDING),
    "all": ((), ()),
}


def part_bleu(model, tokenizer, sources: list[str], references: list[str], part: str, bits: int,
              bucket_size: int) -> dict:
    """Greedy BLEU of ``model`` with only ``part`` quantized to ``bits``; the share of the weights it holds."""
    include, exclude = PARTS[part]
    quantized = quantize_(copy.deepcopy(model), QuantConfig(bits=bits, bucket_size=bucket_size, include=include,
                                                          exclude=exclude))
    params = model_size(quantized).quantized_params
    hypotheses = translate(quantized, tokenizer, sources, batch_size=64, num_beams=1)
    return {"part": part, "bits": bits, "quantized_params": params, **corpus_scores(hypotheses, references)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained fp32 student folder (save_pretrained)")
    parser.add_argument("--dataset_dir", default=DATA, help="Multi30k layout: val.en / val.de")
    parser.add_argument("--split", default="val", help="file prefix of the split to score (never a test split)")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--bucket_size", type=int, default=128)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "bit_sensitivity"))
    opts = parser.parse_args()
    if not os.path.isfile(os.path.join(opts.model, "config.json")):
        sys.exit(f"--model {opts.model} is not a saved model folder (no config.json); pass a trained fp32 student.")
    data = load_parallel_dir(opts.dataset_dir, splits={opts.split: opts.split})[opts.split]["translation"]
    sources, references = [x["en"] for x in data], [x["de"] for x in data]
    model = AutoModelForSeq2SeqLM.from_pretrained(opts.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(opts.model)
    total = sum(p.numel() for p in model.parameters())
    with torch_threads(opts.threads), torch.no_grad():
        fp32 = corpus_scores(translate(model, tokenizer, sources, batch_size=64, num_beams=1), references)
        rows = [part_bleu(model, tokenizer, sources, references, part, bits, opts.bucket_size)
                for bits in opts.bits for part in opts.parts]
    header = run_header(
        command_line("scripts/benchmark_bit_sensitivity.py"), git_commit(ROOT), model=opts.model, params=total, bucket_size=opts.bucket_size,
        data=f"{opts.dataset_dir}: {opts.split} ({len(sources)} sentences), greedy, sacreBLEU",
        fp32=f"BLEU {fp32['bleu']:.2f}, chrF {fp32['chrf']:.2f}",
    )
    columns = ["part quantized (rest fp32)", "bits", "weights", "share of the model", "BLEU", "vs fp32", "chrF"]
    cells = [(r["part"], r["bits"], f"{r['quantized_params']:,}", f"{r['quantized_params'] / total:.1%}",
              f"{r['bleu']:.2f}", f"{r['bleu'] - fp32['bleu']:+.2f}", f"{r['chrf']:.2f}") for r in rows]
    print(write_report(opts.output, header, [table(columns, cells)], {"fp32": fp32, "rows": rows}))


if __name__ == "__main__":
    main()
