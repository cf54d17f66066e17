"""Model size accounting: what a quantized model costs in bits, by the paper's formula."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn

from .api import quantized_parameters

FP_BITS = 32
BUCKET_BITS = 2 * FP_BITS  # one minimum and one scale per bucket


@dataclass
class SizeReport:
    """Theoretical size of a model: quantized codes + per-bucket (min, scale) + full-precision parameters.

    Attributes:
        quantized_params: values stored as codes.
        fp_params: values stored in fp32 (biases, norms, excluded layers).
        buckets: number of (min, scale) pairs.
        bits: total size in bits (fractional with learned point counts that are not powers of two).
        fp32_bits: size of the same model with every stored parameter in fp32.
        unsaved_params: parameters the model rebuilds from its config instead of storing them (those named in
            its `_keys_to_ignore_on_save`, e.g. Marian's fixed sinusoidal position tables); no bits counted.
        buffer_bits: bits of the saved buffers (BatchNorm running statistics, Marian's `final_logits_bias`) at
            their own dtype; part of both `bits` and `fp32_bits`, since every checkpoint stores them.
        code_bits: bits of the quantized codes alone (fractional for learned point counts).
    """

    quantized_params: int
    fp_params: int
    buckets: int
    bits: float
    fp32_bits: int
    unsaved_params: int = 0
    buffer_bits: int = 0
    code_bits: float = 0.0

    @property
    def params(self) -> int:
        """Every parameter of the model, stored or not."""
        return self.quantized_params + self.fp_params + self.unsaved_params

    @property
    def megabytes(self) -> float:
        return self.bits / 8 / 1e6

    @property
    def compression_ratio(self) -> float:
        """fp32 size over quantized size."""
        return self.fp32_bits / self.bits

    @property
    def bits_per_param(self) -> float:
        return self.bits / (self.quantized_params + self.fp_params)

    @property
    def code_bits_per_weight(self) -> float | None:
        """Mean bits per quantized weight (log2 of the point count for learned points); `None` if none is."""
        return self.code_bits / self.quantized_params if self.quantized_params else None

    def to_dict(self) -> dict:
        return {**asdict(self), "megabytes": self.megabytes, "compression_ratio": self.compression_ratio}


def unsaved_keys(model: nn.Module) -> set[str]:
    """State-dict keys a model does not store because it rebuilds them (transformers' `_keys_to_ignore_on_save`)."""
    return set(getattr(model, "_keys_to_ignore_on_save", None) or ())


def stored_once(named: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Each tensor under its first name only: tied modules list one storage under several names, and a file stores
    it once (loading fills the aliases). Empty tensors share no storage and are all kept."""
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, tensor in named:
        key = (tensor.data_ptr(), tensor.numel(), tensor.dtype)
        if tensor.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = tensor
    return out


@dataclass(frozen=True)
class StoredAs:
    """How one parameter is stored in low bits: its elements, buckets (one minimum and scale each), code bits per
    weight and any extra bits (learned points)."""

    numel: int
    buckets: int
    bits_per_weight: float
    extra_bits: int = 0


def size_report(model: nn.Module, quantized: dict[int, StoredAs], also_fp32: set[int] = frozenset(),
                not_counted: set[int] = frozenset()) -> SizeReport:
    """The paper's size formula over ``model``'s parameters (each distinct one once, those the model rebuilds on
    load not at all): ``quantized`` maps ``id(parameter)`` to how it is stored; the rest is fp32, and so is a
    quantized parameter in ``also_fp32`` (a layer also reads it unquantized, so an fp32 copy is stored beside it).
    Parameters in ``not_counted`` are accounted for elsewhere (learned points, in their tensor's ``extra_bits``)."""
    q_params = fp_params = buckets = bits = unsaved = code_bits = 0
    skip = unsaved_keys(model)
    for name, param in model.named_parameters():  # deduplicates tied parameters
        if id(param) in not_counted:
            continue
        if name in skip:
            unsaved += param.numel()
            continue
        entry = quantized.get(id(param))
        if entry is None or id(param) in also_fp32:
            fp_params += param.numel()
            bits += FP_BITS * param.numel()
        if entry is not None:
            q_params += entry.numel
            buckets += entry.buckets
            code_bits += entry.bits_per_weight * entry.numel
            bits += entry.bits_per_weight * entry.numel + BUCKET_BITS * entry.buckets + entry.extra_bits
    buffers = saved_buffer_bits(model, skip)
    total = q_params + fp_params
    return SizeReport(q_params, fp_params, buckets, bits + buffers, FP_BITS * total + buffers, unsaved, buffers,
                      code_bits)


def model_size(model: nn.Module) -> SizeReport:
    """Size of ``model`` as stored by hfqd (:func:`size_report` over its quantized parameters)."""
    entries = quantized_parameters(model)
    quantized = {id(e.shadow): StoredAs(e.numel, e.n_buckets, e.quantizer.bits_per_weight, e.quantizer.extra_bits)
                 for e in entries}
    points = {id(p) for e in entries for p in e.quantizer.parameters()}
    return size_report(model, quantized, not_counted=points)


def saved_buffer_bits(model: nn.Module, skip: set[str] = frozenset()) -> int:
    """Bits of the buffers a checkpoint stores (persistent ones, each tensor once), at their own dtype."""
    saved = set(model.state_dict(keep_vars=True))
    seen: set[int] = set()
    bits = 0
    for name, buffer in model.named_buffers():
        if name not in saved or name in skip or id(buffer) in seen:
            continue
        seen.add(id(buffer))
        bits += buffer.numel() * buffer.element_size() * 8
    return bits
