"""Quantizer modules registered as parametrizations of weights.

A quantizer turns the full-precision shadow weight into its quantized value in every forward pass. One
quantizer instance serves each distinct parameter, so tied weights (shared input embeddings and LM head) are
quantized once per forward pass and stay one tensor.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from .config import QuantConfig
from .functions import QuantizedCodes, dequantize_codes, uniform_codes
from .ste import straight_through


_optimizer_steps = 0


def _count_optimizer_step(*_args) -> None:
    global _optimizer_steps
    _optimizer_steps += 1


# A fused optimizer (`torch.optim.AdamW(fused=True)`, the Trainer's default with torch 2.8 and later) writes
# parameters without bumping their version counters, so a value cached by a no-grad forward could outlive a step
# that changed its weight. Every `torch.optim.Optimizer` step runs this hook, and the cache key includes the count.
register_optimizer_step_post_hook(_count_optimizer_step)


@dataclass
class QuantState:
    """State shared by all quantizers of one model.

    Attributes:
        step: training step, set by the trainer; it seeds stochastic rounding together with the seed and the
            parameter name, so that all processes of a distributed run draw identical values.
        forward_id: increases at the start of every outermost forward call, so a quantized value computed with
            autograd history is reused only inside the forward pass that built it.
        depth: nesting depth of hooked forward calls (internal).
        hooks: handles of the forward hooks (for reference; `convert_` finds the hooks by scanning the modules).
    """

    step: int = 0
    forward_id: int = 0
    depth: int = 0
    hooks: list = field(default_factory=list)

    def enter(self, *_args) -> None:
        if self.depth == 0:
            self.forward_id += 1
        self.depth += 1

    def leave(self, *_args) -> None:
        self.depth = max(0, self.depth - 1)


class Quantizer(nn.Module):
    """Parametrization ``w -> Q(w)``: the part every quantizer shares (bucketing, caching, straight-through).

    Subclasses say how codes are made (:meth:`codes`) and how many levels there are; the quantized value is always
    :func:`~hfqd.quant.functions.dequantize_codes` of the codes, in training and when a packed file is loaded.

    Args:
        config: the quantization settings (bucket size, seed).
        name: the parameter's qualified name; seeds its stochastic-rounding stream.
        state: the model's shared :class:`QuantState`.
    """

    rounding = "nearest"

    def __init__(self, config: QuantConfig, name: str, state: QuantState):
        super().__init__()
        self.bucket_size = config.bucket_size
        self.seed = config.seed
        self.param_name = name
        self.state = state
        self.enabled = True
        self._cache_key: tuple | None = None
        self._cache_value: torch.Tensor | None = None

    @property
    def levels(self) -> int:
        raise NotImplementedError

    @property
    def bits(self) -> int:
        """Whole bits per code (what the packed format stores)."""
        return max(1, (self.levels - 1).bit_length())

    def codes(self, weight: torch.Tensor) -> QuantizedCodes:
        """Integer codes of ``weight`` under the current settings (no autograd)."""
        raise NotImplementedError

    def quantize(self, weight: torch.Tensor) -> torch.Tensor:
        """The quantized value of ``weight``, without autograd history."""
        return dequantize_codes(self.codes(weight), weight.dtype)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return weight
        grad = torch.is_grad_enabled() and self._needs_graph(weight)
        if grad and self.state.depth == 0:
            return self._with_graph(weight)  # outside the model's forward pass nothing says when a graph is spent
        # Without autograd history the value depends only on the weight's content and the step; with it, it
        # must be rebuilt in every forward pass because backward frees the graph. Within one forward pass it is
        # reused, so a tied weight (embedding and output layer) is quantized once.
        key = (weight.data_ptr(), weight._version, _optimizer_steps, weight.dtype, self.state.step,
               self.state.forward_id if grad else -1, *self._cache_token())
        if self._cache_key == key and self._cache_value is not None:
            return self._cache_value
        value = self._with_graph(weight) if grad else self.quantize(weight)
        self._cache_key, self._cache_value = key, value
        return value

    def _needs_graph(self, weight: torch.Tensor) -> bool:
        """Whether the quantized value must carry autograd history (a learned quantizer also has its points)."""
        return weight.requires_grad

    def _with_graph(self, weight: torch.Tensor) -> torch.Tensor:
        """The quantized value with autograd history: the straight-through gradient to the shadow weight."""
        return straight_through(weight, self.quantize)

    def _cache_token(self) -> tuple:
        """Extra state the quantized value depends on (learned points, in a subclass)."""
        return ()

    @property
    def bits_per_weight(self) -> float:
        """Bits each weight costs in the size accounting."""
        return float(self.bits)

    @property
    def extra_bits(self) -> int:
        """Bits stored per tensor beyond codes and bucket scales (learned points, in a subclass)."""
        return 0

    def clear_cache(self) -> None:
        """Forget the cached value: needed only after writing the weight through `.data`, which no counter sees."""
        self._cache_key, self._cache_value = None, None

    def __getstate__(self):
        # Cached tensors carry autograd graphs that cannot be deep-copied; they are rebuilt on demand.
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_cache_key"], state["_cache_value"] = None, None
        return state


class UniformQuantizer(Quantizer):
    """``2**bits`` evenly spaced levels per bucket, nearest or stochastic rounding (quantized distillation).

    Args:
        config: the quantization settings (bits, bucket size, rounding, seed).
        name: the parameter's qualified name; seeds its stochastic-rounding stream.
        state: the model's shared :class:`QuantState`.
        bits: this tensor's width when it is not `config.bits` (`QuantConfig.module_bits`).
    """

    def __init__(self, config: QuantConfig, name: str, state: QuantState, bits: int | None = None):
        super().__init__(config, name, state)
        self._bits = config.bits if bits is None else bits
        self.rounding = config.rounding

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def levels(self) -> int:
        return 2**self._bits

    def generator(self, device: torch.device) -> torch.Generator | None:
        """Random stream for stochastic rounding, a pure function of (seed, step, parameter name)."""
        if self.rounding != "stochastic":
            return None
        key = f"{self.seed}:{self.state.step}:{self.param_name}".encode()
        gen = torch.Generator(device=device)
        gen.manual_seed(zlib.crc32(key))
        return gen

    def codes(self, weight: torch.Tensor) -> QuantizedCodes:
        return uniform_codes(weight.detach(), self.bits, self.bucket_size, self.rounding, self.generator(weight.device))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, bucket_size={self.bucket_size}, rounding={self.rounding!r}, name={self.param_name!r}"
