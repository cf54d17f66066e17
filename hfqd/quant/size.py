"""Model size accounting: what a quantized model costs in bits, by the paper's formula."""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


def model_size(model: nn.Module) -> SizeReport:
    """Size of ``model`` as stored by hfqd: each distinct parameter counted once (tied weights once), parameters
    the model rebuilds on load (:func:`unsaved_keys`) not at all."""
    entries = quantized_parameters(model)
    quantized = {id(e.shadow): e for e in entries}
    q_params = fp_params = buckets = bits = unsaved = code_bits = 0
    # Learned points are parameters of the quantizers, counted with their tensor (`extra_bits`).
    seen: set[int] = {id(p) for e in entries for p in e.quantizer.parameters()}
    skip = unsaved_keys(model)
    for name, param in model.named_parameters():  # deduplicates tied parameters
        if id(param) in seen:
            continue
        seen.add(id(param))
        if name in skip:
            unsaved += param.numel()
            continue
        entry = quantized.get(id(param))
        if entry is None:
            fp_params += param.numel()
            bits += FP_BITS * param.numel()
        else:
            q_params += entry.numel
            buckets += entry.n_buckets
            q = entry.quantizer
            code_bits += q.bits_per_weight * entry.numel
            bits += q.bits_per_weight * entry.numel + BUCKET_BITS * entry.n_buckets + q.extra_bits
    buffers = saved_buffer_bits(model, skip)
    total = q_params + fp_params
    return SizeReport(q_params, fp_params, buckets, bits + buffers, FP_BITS * total + buffers, unsaved, buffers,
                      code_bits)


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
