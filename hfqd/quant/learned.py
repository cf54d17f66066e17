"""Differentiable quantization (Polino et al., 2018, section 3): quantization points learned by gradient descent.

Each quantized tensor gets one sorted vector of points in the per-bucket scaled domain [0, 1]. A weight maps to
its nearest point; the quantized value is ``points[j] * scale + min`` of its bucket. The gradient reaching the
points is exact, not straight-through: dL/dp_j = sum over weights assigned to p_j of dL/dQ_i * scale_i, the
backward of the lookup ``points[codes]``. The weights themselves receive a straight-through gradient, used when
weights and points are trained jointly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import QuantConfig
from .functions import QuantizedCodes, _scaled, nearest_points
from .quantizer import Quantizer, QuantState
from .ste import pass_gradient

POINT_INITS = ("quantiles", "uniform")


class _PointLookup(torch.autograd.Function):
    """``points[codes]``, whose backward adds each value's gradient into its point with one ``scatter_add_``.

    Autograd's own backward of indexing accumulates with ``index_put_``, which serializes on the CPU and sorts the
    index on CUDA when a million weights share a handful of points; ``scatter_add_`` does neither and has a
    deterministic CUDA kernel (`scripts/benchmark_step_time.py --learned` times the step it serves).
    """

    @staticmethod
    def forward(ctx, points: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(codes)  # uint8: an eighth of the memory of the int64 index
        ctx.n_points = points.numel()
        return points[codes.long()]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (codes,) = ctx.saved_tensors
        index = codes.reshape(-1).long()
        return grad.new_zeros(ctx.n_points).scatter_add_(0, index, grad.reshape(-1)), None


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
        self._scaled_key: tuple | None = None
        self._scaled_value: tuple | None = None

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
        unit, minimum, scale = self._scaled(weight)
        return QuantizedCodes(nearest_points(unit, self.points), minimum, scale, weight.shape, self.levels, self.points)

    def _scaled(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The weight's buckets in the scaled domain, with their minima and spans. A frozen weight (the paper's
        DQ trains the points only) keeps them from one step to the next; only the assignment to points moves."""
        if weight.requires_grad or not self.points.requires_grad:
            self._scaled_key = self._scaled_value = None  # a weight that trains now may be frozen again later
            return _scaled(weight.detach(), self.bucket_size)
        key = (weight.data_ptr(), weight._version, weight.dtype)
        if self._scaled_key != key:
            self._scaled_key, self._scaled_value = key, _scaled(weight.detach(), self.bucket_size)
        return self._scaled_value

    def _needs_graph(self, weight: torch.Tensor) -> bool:
        return weight.requires_grad or self.points.requires_grad

    def _with_graph(self, weight: torch.Tensor) -> torch.Tensor:
        q = self.codes(weight)
        unit = _PointLookup.apply(self.points, q.codes)  # each weight's dL/dQ * scale reaches its point, exactly
        values = unit * q.scale[:, None] + q.minimum[:, None]
        values = values.reshape(-1)[: q.numel].view(q.shape).to(weight.dtype)
        if weight.requires_grad:
            values = pass_gradient(values, weight)  # straight-through gradient for joint training
        return values

    def __getstate__(self):
        state = super().__getstate__()
        state["_scaled_key"], state["_scaled_value"] = None, None  # rebuilt on demand; a copy need not carry it
        return state

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
