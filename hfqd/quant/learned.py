"""Differentiable quantization (Polino et al., 2018, section 3): quantization points learned by gradient descent.

Each quantized tensor gets one sorted vector of points in the per-bucket scaled domain [0, 1]. A weight maps to
its nearest point; the quantized value is ``points[j] * scale + min`` of its bucket. The gradient reaching the
points is exact, not straight-through: dL/dp_j = sum over weights assigned to p_j of dL/dQ_i * scale_i, which
autograd derives from the gather ``points[codes]``. The weights themselves receive a straight-through gradient,
used when weights and points are trained jointly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import QuantConfig
from .functions import QuantizedCodes, _scaled, nearest_point_codes
from .quantizer import Quantizer, QuantState
from .ste import pass_gradient

POINT_INITS = ("quantiles", "uniform")


def initial_points(weight: torch.Tensor, n_points: int, bucket_size: int | None, init: str = "quantiles"):
    """``n_points`` sorted points in [0, 1]: quantiles of the scaled weights (ends included) or evenly spaced."""
    if n_points < 2:
        raise ValueError(f"A learned quantizer needs at least 2 points, got {n_points}.")
    if init == "uniform":
        return torch.linspace(0.0, 1.0, n_points)
    if init != "quantiles":
        raise ValueError(f"`points_init` must be one of {POINT_INITS}, got {init!r}.")
    unit, _, _ = _scaled(weight, bucket_size)
    values = unit.reshape(-1)
    if values.numel() > 1_000_000:  # torch.quantile's input limit; a strided sample keeps the distribution
        values = values[:: values.numel() // 1_000_000 + 1]
    return torch.quantile(values, torch.linspace(0.0, 1.0, n_points))


class LearnedQuantizer(Quantizer):
    """Parametrization ``w -> points[nearest(sc(w))] * scale + min`` with learnable ``points``.

    Args:
        config: quantization settings; `config.bits` gives `2**bits` points unless ``n_points`` is set.
        name: the parameter's qualified name.
        state: the model's shared :class:`QuantState`.
        weight: the weight, to initialise the points from.
        n_points: number of points (need not be a power of two; bit allocation sets it).
    """

    def __init__(self, config: QuantConfig, name: str, state: QuantState, weight: torch.Tensor,
                 n_points: int | None = None):
        super().__init__(config, name, state)
        n_points = 2**config.bits if n_points is None else n_points
        init = initial_points(weight.detach(), n_points, config.bucket_size, config.points_init)
        self.points = nn.Parameter(init.to(device=weight.device, dtype=torch.float32))

    @property
    def levels(self) -> int:
        return self.points.numel()

    def _cache_token(self) -> tuple:
        return (self.points.data_ptr(), self.points._version)

    @property
    def bits_per_weight(self) -> float:
        """log2 of the number of points: point counts need not be powers of two (bit allocation)."""
        return math.log2(self.points.numel())

    @property
    def extra_bits(self) -> int:
        return 32 * self.points.numel()

    def codes(self, weight: torch.Tensor) -> QuantizedCodes:
        return nearest_point_codes(weight.detach(), self.points, self.bucket_size)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return weight
        needs_graph = torch.is_grad_enabled() and (weight.requires_grad or self.points.requires_grad)
        if not needs_graph:
            return super().forward(weight)  # cached, no autograd
        q = self.codes(weight)
        # Gathering the points makes autograd send each weight's dL/dQ * scale to its point, exactly.
        unit = self.points[q.codes.long()]
        values = unit * q.scale[:, None] + q.minimum[:, None]
        values = values.reshape(-1)[: q.numel].view(q.shape).to(weight.dtype)
        if weight.requires_grad:
            values = pass_gradient(values, weight)  # straight-through gradient for joint training
        return values

    @torch.no_grad()
    def sort_points_(self) -> torch.Tensor:
        """Keep the points sorted after an optimizer step (nearest-point assignment assumes it); returns the
        permutation applied, so that per-point optimizer state can follow its point."""
        values, order = torch.sort(self.points)
        self.points.copy_(values)
        self.clear_cache()
        return order

    def extra_repr(self) -> str:
        return f"points={self.points.numel()}, bucket_size={self.bucket_size}, name={self.param_name!r}"
