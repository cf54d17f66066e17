"""`QuantConfig`: what to quantize and how."""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .functions import ROUNDING_MODES

DEFAULT_MODULE_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Embedding")


@dataclass(frozen=True)
class QuantConfig:
    """Uniform, bucketed, min-max scaled weight quantization (Polino et al., 2018).

    Args:
        bits: bits per weight, 1 to 8 (`2**bits` levels per bucket, both ends of the bucket's range included).
        bucket_size: consecutive values sharing one (min, scale) pair; `None` scales each tensor as one bucket.
            The paper uses 256 in every experiment.
        rounding: `"nearest"` or `"stochastic"` (unbiased). Stochastic draws come from a generator seeded by
            (`seed`, training step, parameter name), so every process of a distributed run draws the same values.
        seed: seed of the stochastic-rounding streams.
        module_types: class names of the modules whose `weight` is quantized. Biases and norm layers always stay
            in full precision.
        include: glob patterns on module names (e.g. `"model.encoder.*"`); when given, only matching modules are
            quantized.
        exclude: glob patterns on module names that stay in full precision (applied after `include`).
        keep_first_last: keep the first and the last selected module in full precision, as the paper's
            `quantize_first_and_last_layer=False` runs do. With tied input/output embeddings both are one tensor.
        method: `"uniform"` (evenly spaced levels) or `"learned"` (differentiable quantization: `2**bits` points
            per tensor, trained by gradient descent).
        points_init: initial learned points, `"quantiles"` of the scaled weights (the paper's default) or
            `"uniform"`.
        module_bits: `(pattern, bits)` pairs (or a dict, or `"pattern=bits"` strings) giving the modules whose
            names match a glob pattern another width than `bits`; the first matching pair wins. For a weight tied
            across modules (Marian's `model.shared`, `embed_tokens` and `lm_head`), any of its names may match. A
            2-bit translation student loses most in its embedding, which is also its output layer: `{"model.shared":
            3}` keeps that one tensor at 3 bits (README, the 2-bit frontier row).
    """

    bits: int = 4
    bucket_size: int | None = 256
    rounding: str = "nearest"
    seed: int = 0
    module_types: tuple[str, ...] = DEFAULT_MODULE_TYPES
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    keep_first_last: bool = False
    method: str = "uniform"
    points_init: str = "quantiles"
    module_bits: tuple[tuple[str, int], ...] = ()
    version: int = field(default=1, repr=False)

    def __post_init__(self) -> None:
        for name in ("module_types", "include", "exclude"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            value = tuple(value)
            if not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"`{name}` must be a sequence of non-empty strings, got {value!r}.")
            object.__setattr__(self, name, value)
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 8:
            raise ValueError(
                f"`bits` must be an integer from 1 to 8, got {self.bits!r}. "
                "For a full-precision model, do not quantize it (e.g. `bits=None` in DistillationArguments)."
            )
        object.__setattr__(self, "module_bits", _module_bits(self.module_bits))
        if self.bucket_size is not None and (
            isinstance(self.bucket_size, bool) or not isinstance(self.bucket_size, int) or self.bucket_size < 2
        ):
            raise ValueError(
                f"`bucket_size` must be an integer >= 2 or None (one bucket per tensor), got {self.bucket_size!r}. "
                "The paper uses 256."
            )
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"`rounding` must be one of {ROUNDING_MODES}, got {self.rounding!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {self.seed!r}.")
        if self.method not in ("uniform", "learned"):
            raise ValueError(f"`method` must be 'uniform' or 'learned', got {self.method!r}.")
        if self.points_init not in ("quantiles", "uniform"):
            raise ValueError(f"`points_init` must be 'quantiles' or 'uniform', got {self.points_init!r}.")
        if self.method == "learned" and self.bits < 1:
            raise ValueError("Learned quantization needs bits >= 1 (at least 2 points).")
        if not self.module_types:
            raise ValueError("`module_types` is empty: nothing would be quantized.")

    def bits_for(self, module_names: list[str] | tuple[str, ...]) -> int:
        """The width of a weight held by ``module_names``: the first `module_bits` pattern matching one of them."""
        for pattern, bits in self.module_bits:
            if any(fnmatch.fnmatchcase(name, pattern) for name in module_names):
                return bits
        return self.bits

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: _lists(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error so that typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown QuantConfig keys {unknown}; known keys are {sorted(known)}.")
        return cls(**data)


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _module_bits(value: Any) -> tuple[tuple[str, int], ...]:
    """Normalize `module_bits` (pairs, a dict, or "pattern=bits" strings) to a tuple of `(pattern, bits)`."""
    items = value.items() if isinstance(value, dict) else value
    if isinstance(items, str):
        items = [items]
    pairs = []
    for item in items:
        pattern, bits = _pair(item)
        if not isinstance(pattern, str) or not pattern or isinstance(bits, bool) or not isinstance(bits, int) \
                or not 1 <= bits <= 8:
            raise ValueError(
                f"`module_bits` entries must be (pattern, bits) with bits from 1 to 8, or 'pattern=bits', got "
                f"{item!r}; e.g. module_bits={{'model.shared': 4}}."
            )
        pairs.append((pattern, bits))
    return tuple(pairs)


def _pair(item: Any) -> tuple[Any, Any]:
    """`(pattern, bits)` of one `module_bits` entry; bits `None` where the entry has none (an error upstream)."""
    if isinstance(item, str):
        pattern, sep, bits = item.rpartition("=")
        return (pattern, int(bits)) if sep and bits.strip().isdigit() else (item, None)
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    return item, None
