"""Huffman-coded size of a quantized model (Polino et al., 2018, section 4).

One frequency table over the level indices of all quantized tensors, one Huffman code built from it; the mean
code length is the bits per weight a variable-length encoding of the codes would need (code-book cost ignored, as
in the paper).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from .api import quantized_parameters
from .size import model_size


def huffman_code_lengths(frequencies: dict[int, int]) -> dict[int, int]:
    """Code length of each symbol in a Huffman code for ``frequencies`` (a single symbol gets length 1)."""
    items = [(count, i, symbol) for i, (symbol, count) in enumerate(frequencies.items()) if count > 0]
    if not items:
        raise ValueError("No symbols to code.")
    if len(items) == 1:
        return {items[0][2]: 1}
    lengths = {symbol: 0 for _, _, symbol in items}
    heap = [(count, i, [symbol]) for count, i, symbol in items]
    heapq.heapify(heap)
    counter = len(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for symbol in s1 + s2:
            lengths[symbol] += 1
        heapq.heappush(heap, (c1 + c2, counter, s1 + s2))
        counter += 1
    return lengths


def mean_code_length(frequencies: dict[int, int]) -> float:
    """Mean bits per symbol of the Huffman code."""
    lengths = huffman_code_lengths(frequencies)
    total = sum(frequencies.values())
    return sum(frequencies[s] * lengths[s] for s in lengths) / total


def entropy(frequencies: dict[int, int]) -> float:
    """Shannon entropy of the symbol distribution, in bits."""
    total = sum(frequencies.values())
    return -sum(c / total * math.log2(c / total) for c in frequencies.values() if c)


@dataclass
class HuffmanSize:
    """Mean Huffman bits per quantized weight, the fixed whole-bit width it replaces, and the model size with it."""

    mean_bits: float
    fixed_bits: float
    bits: float

    @property
    def megabytes(self) -> float:
        return self.bits / 8 / 1e6


@torch.no_grad()
def code_frequencies(model: nn.Module) -> Counter:
    """Counts of each level index over all quantized tensors of ``model`` (padding excluded)."""
    counts: Counter = Counter()
    for entry in quantized_parameters(model):
        codes = entry.quantizer.codes(entry.shadow).flat_codes()
        values, n = torch.unique(codes, return_counts=True)
        counts.update(dict(zip(values.tolist(), n.tolist())))
    return counts


def huffman_size(model: nn.Module) -> HuffmanSize:
    """Size of ``model`` with Huffman-coded level indices; everything else counted as in `model_size`."""
    entries = quantized_parameters(model)
    if not entries:
        raise ValueError("The model is not quantized.")
    mean = mean_code_length(dict(code_frequencies(model)))
    n_q = sum(e.numel for e in entries)
    fixed = sum(e.quantizer.bits * e.numel for e in entries) / n_q  # whole bits, as the packed file stores
    # Swap the fixed-width codes of `model_size` for Huffman codes; buckets, points and fp32 tensors stay as counted.
    code_bits = sum(e.quantizer.bits_per_weight * e.numel for e in entries)
    bits = model_size(model).bits - code_bits + mean * n_q
    return HuffmanSize(mean_bits=mean, fixed_bits=fixed, bits=bits)
