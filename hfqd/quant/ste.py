"""The straight-through estimator used by quantized distillation."""

from __future__ import annotations

from typing import Callable

import torch


class StraightThrough(torch.autograd.Function):
    """Forward: ``fn(weight)``; backward: the incoming gradient, unchanged, to ``weight``.

    This is how the paper trains through rounding: dL/dQ(w) is applied to the full-precision w as if Q were the
    identity (Polino et al., 2018, Algorithm 1).
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return fn(weight)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output, None


def straight_through(weight: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``fn`` in the forward pass and pass gradients straight through it."""
    return StraightThrough.apply(weight, fn)
