"""Bit packing cost at opus-mt-en-de size: time and peak memory of packing and unpacking every quantized tensor.

    python scripts/benchmark_bitpack.py

The tensors hfqd quantizes in a Marian of opus-mt-en-de's shape (6+6 layers, d_model 512, 58,101-token vocabulary,
74M parameters) get random 2- and 4-bit codes, which are packed and unpacked tensor by tensor with hfqd's packer
and, for comparison, with the bit-by-bit packer hfqd used before (kept below only as the baseline of this
measurement; its files are byte-identical, which the script checks). Each measurement runs in a fresh process, so
its peak resident memory is its own. Writes benchmarks/results/bitpack.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bit_by_bit_pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """The previous packer: one int64 element per bit (the baseline measured here)."""
    flat = codes.reshape(-1).to(torch.uint8)
    if bits == 8:
        return flat.clone()
    shifts = torch.arange(bits, dtype=torch.uint8)
    stream = ((flat[:, None] >> shifts) & 1).reshape(-1)
    pad = (-stream.numel()) % 8
    if pad:
        stream = torch.cat([stream, stream.new_zeros(pad)])
    weights = torch.arange(8, dtype=torch.uint8)
    return (stream.view(-1, 8).long() << weights.long()).sum(dim=1).to(torch.uint8)


def bit_by_bit_unpack(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    if bits == 8:
        return packed.clone()
    shifts = torch.arange(8, dtype=torch.uint8)
    stream = ((packed[:, None] >> shifts) & 1).reshape(-1)[: n * bits]
    weights = torch.arange(bits, dtype=torch.uint8)
    return (stream.view(n, bits).long() << weights.long()).sum(dim=1).to(torch.uint8)


def opus_mt_shaped_sizes() -> list[int]:
    """Element counts of every tensor hfqd quantizes in an opus-mt-en-de-shaped Marian (built on the meta device)."""
    from transformers import MarianConfig, MarianMTModel

    from hfqd.quant import QuantConfig, selected_parameters

    config = MarianConfig(vocab_size=58101, decoder_vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
                          encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                          decoder_ffn_dim=2048, pad_token_id=58100, decoder_start_token_id=58100,
                          scale_embedding=True, share_encoder_decoder_embeddings=True)
    with torch.device("meta"):
        model = MarianMTModel(config)
    return [p.numel() for p in selected_parameters(model, QuantConfig(bits=4)).values()]


def measure(impl: str, bits: int, sizes_file: str) -> dict:
    """Runs in its own process: pack and unpack every tensor, report times and peak memory above the codes.

    The codes are random (packing cost does not depend on their values), drawn straight into uint8 tensors, so the
    process holds nothing else before packing starts.
    """
    from hfqd.hub.bitpack import pack_codes, unpack_codes

    pack, unpack = (pack_codes, unpack_codes) if impl == "hfqd" else (bit_by_bit_pack, bit_by_bit_unpack)
    generator = torch.Generator().manual_seed(0)
    codes = [torch.randint(0, 2**bits, (n,), generator=generator, dtype=torch.uint8)
             for n in json.loads(Path(sizes_file).read_text())]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    packed = [pack(c, bits) for c in codes]
    pack_s = time.perf_counter() - start
    start = time.perf_counter()
    for p, c in zip(packed, codes):
        assert torch.equal(unpack(p, bits, c.numel()), c)
    unpack_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"impl": impl, "bits": bits, "codes": sum(c.numel() for c in codes),
            "packed_bytes": sum(p.numel() for p in packed), "pack_s": pack_s, "unpack_and_check_s": unpack_s,
            "peak_rss_above_codes_mb": (peak - baseline) / 1024,
            "checksum": int(sum(int(p.sum()) for p in packed))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "bitpack"))
    parser.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts._measure:
        print(json.dumps(measure(opts._measure[0], int(opts._measure[1]), opts._measure[2])))
        return
    import tempfile

    from hfqd.eval.report import table, write_report
    from hfqd.utils import command_line, git_commit, run_header

    rows = []
    for bits in (2, 4):
        with tempfile.TemporaryDirectory() as tmp:
            sizes_file = os.path.join(tmp, "sizes.json")
            with open(sizes_file, "w") as f:
                json.dump(opus_mt_shaped_sizes(), f)
            for impl in ("bit-by-bit (before)", "hfqd"):
                out = subprocess.run([sys.executable, __file__, "--_measure", impl.split()[0], str(bits), sizes_file],
                                     capture_output=True, text=True, check=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})
                rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "impl": impl})
        assert rows[-1]["checksum"] == rows[-2]["checksum"], "the packers disagree"
    header = run_header(command_line("scripts/benchmark_bitpack.py"), git_commit(ROOT),
                        model="the quantized tensors of a Marian of opus-mt-en-de's shape (6+6, d_model 512, 58,101 "
                              "tokens), random codes", threads=1)
    columns = ["packer", "bits", "codes", "packed bytes", "pack (s)", "unpack + check (s)",
               "peak RSS above the codes (MB)"]
    cells = [(r["impl"], r["bits"], f"{r['codes']:,}", f"{r['packed_bytes']:,}", f"{r['pack_s']:.2f}",
              f"{r['unpack_and_check_s']:.2f}", f"{r['peak_rss_above_codes_mb']:.0f}") for r in rows]
    print(write_report(opts.output, header, [table(columns, cells)], {"rows": rows}))


if __name__ == "__main__":
    main()
