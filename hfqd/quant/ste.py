"""The straight-through estimator used by quantized distillation: the one place gradients skip rounding."""

from __future__ import annotations

from typing import Callable

import torch


class _PassGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return value.view_as(value)  # no copy

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output, grad_output


def pass_gradient(value: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass; in the backward pass ``weight`` receives the incoming gradient unchanged,
    while ``value`` keeps its own graph (learned points get their exact gradient through it).

    This is how the paper trains through rounding: dL/dQ(w) is applied to the full-precision w as if Q were the
    identity (Polino et al., 2018, Algorithm 1).
    """
    return _PassGradient.apply(value, weight)


def straight_through(weight: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``fn(weight)`` in the forward pass (computed without a graph), the gradient straight through to ``weight``."""
    with torch.no_grad():
        value = fn(weight)
    return pass_gradient(value, weight)
