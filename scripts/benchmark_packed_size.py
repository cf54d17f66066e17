"""Packed checkpoint size: bytes on disk vs the theoretical size vs fp32 vs Huffman-coded, for a real model.

    python scripts/benchmark_packed_size.py                 # ../shared/models/multi30k-en-de-marian-7.7m
    python scripts/benchmark_packed_size.py --model PATH --bits 2 4 8

Quantizes the model's Linear/Embedding weights (no training: the sizes do not depend on it), saves it packed,
reloads it with `from_pretrained` and checks that the logits are bit-identical, then writes
benchmarks/results/packed_size.{json,md}. hfqd's target: file size at most 1.05x the theoretical size.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile

import torch
from transformers import AutoModelForSeq2SeqLM

import hfqd  # noqa: F401  (registers the "hfqd" quantizer)
from hfqd.hub import packed_size_report, save_packed
from hfqd.eval.report import table, write_report
from hfqd.quant import QuantConfig, huffman_size, model_size, quantize_
from hfqd.utils import git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "..", "shared", "models", "multi30k-en-de-marian-7.7m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 8])
    parser.add_argument("--bucket_size", type=int, default=256)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "packed_size"))
    opts = parser.parse_args()
    if not os.path.isdir(opts.model):
        sys.exit(f"Model folder {opts.model} not found; pass --model PATH.")
    base = AutoModelForSeq2SeqLM.from_pretrained(opts.model).eval()
    fp32_file = os.path.getsize(os.path.join(opts.model, "model.safetensors"))
    ids = torch.tensor([[5, 17, 42, 99, 1]])
    rows = []
    for bits in opts.bits:
        model = quantize_(copy.deepcopy(base), QuantConfig(bits=bits, bucket_size=opts.bucket_size))
        with tempfile.TemporaryDirectory() as tmp:
            save_packed(model, tmp)
            report = packed_size_report(model, os.path.join(tmp, "model.safetensors"))
            loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp).eval()
            with torch.no_grad():
                exact = torch.equal(model(input_ids=ids, decoder_input_ids=ids).logits,
                                    loaded(input_ids=ids, decoder_input_ids=ids).logits)
        huffman = huffman_size(model)
        rows.append({
            "bits": bits, "file_bytes": report.file_bytes, "theoretical_bytes": report.theoretical_bytes,
            "file_over_theoretical": report.overhead, "fp32_bytes": report.fp32_bytes,
            "huffman_bytes": huffman.bits / 8, "huffman_bits_per_weight": huffman.mean_bits,
            "compression_vs_fp32_file": fp32_file / report.file_bytes, "bit_exact_reload": exact,
            "quantized_params": model_size(model).quantized_params,
        })
    header = run_header(
        "python scripts/benchmark_packed_size.py " + " ".join(sys.argv[1:]), git_commit(ROOT),
        model=os.path.basename(os.path.normpath(opts.model)), bucket_size=opts.bucket_size,
        fp32_file_bytes=fp32_file, target="file size <= 1.05x theoretical",
    )
    columns = ["bits", "file (bytes)", "theoretical (bytes)", "file / theoretical", "Huffman (bytes)",
               "Huffman bits/weight", "vs fp32 file", "bit-exact reload"]
    cells = [(r["bits"], f"{r['file_bytes']:,}", f"{r['theoretical_bytes']:,.0f}", f"{r['file_over_theoretical']:.4f}",
              f"{r['huffman_bytes']:,.0f}", f"{r['huffman_bits_per_weight']:.3f}",
              f"{r['compression_vs_fp32_file']:.2f}x", "yes" if r["bit_exact_reload"] else "NO") for r in rows]
    print(write_report(opts.output, header, [table(columns, cells)], {"rows": rows}))


if __name__ == "__main__":
    main()
