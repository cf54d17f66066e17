"""Huffman-coded size of a quantized model (Polino et al., 2018, section 4).

A Huffman code per quantized tensor, built from the frequencies of its level indices; the mean code length is the
bits per weight a variable-length encoding of the codes would need (code-book cost ignored, as in the paper).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from .api import QuantizedParameter, quantized_parameters
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
    """Mean Huffman bits per quantized weight, the fixed width it replaces, and the model size with it."""

    mean_bits: float
    fixed_bits: float
    bits: float

    @property
    def megabytes(self) -> float:
        return self.bits / 8 / 1e6


@torch.no_grad()
def tensor_code_frequencies(model: nn.Module) -> list[tuple[QuantizedParameter, Counter]]:
    """Counts of each level index of every quantized tensor of ``model`` (padding excluded)."""
    out = []
    for entry in quantized_parameters(model):
        codes = entry.quantizer.codes(entry.shadow).flat_codes()
        values, n = torch.unique(codes, return_counts=True)
        out.append((entry, Counter(dict(zip(values.tolist(), n.tolist())))))
    return out


def code_frequencies(model: nn.Module) -> Counter:
    """Counts of each level index over all quantized tensors of ``model`` (padding excluded)."""
    total: Counter = Counter()
    for _, counts in tensor_code_frequencies(model):
        total.update(counts)
    return total


def huffman_size(model: nn.Module) -> HuffmanSize:
    """Size of ``model`` with Huffman-coded level indices; everything else counted as in `model_size`.

    Each tensor gets its own code (tensors with learned points have alphabets of their own, so one global table
    would mix unrelated symbols), and a tensor never costs more than its fixed width: where Huffman would not
    help, the fixed-width codes are kept. The Huffman size therefore never exceeds `model_size`.
    """
    tensors = tensor_code_frequencies(model)
    if not tensors:
        raise ValueError("The model is not quantized.")
    n_q = sum(entry.numel for entry, _ in tensors)
    code_bits = sum(entry.quantizer.bits_per_weight * entry.numel for entry, _ in tensors)
    coded = sum(min(mean_code_length(dict(counts)), entry.quantizer.bits_per_weight) * entry.numel
                for entry, counts in tensors)
    fixed = sum(entry.quantizer.bits * entry.numel for entry, _ in tensors) / n_q  # whole bits, as packed
    # Swap the fixed-width codes of `model_size` for Huffman codes; buckets, points and fp32 tensors stay as counted.
    bits = model_size(model).bits - code_bits + coded
    return HuffmanSize(mean_bits=coded / n_q, fixed_bits=fixed, bits=bits)
