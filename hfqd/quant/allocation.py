"""Bit allocation by gradient norm (Polino et al., 2018, section 3): more points where the loss is most sensitive."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Allocation:
    """Points given to one tensor."""

    name: str
    grad_norm: float
    points_before: int
    points: int

    @property
    def bits(self) -> float:
        return math.log2(self.points)


def allocate_points(grad_norms: dict[str, float], points: dict[str, int]) -> list[Allocation]:
    """Redistribute the total number of points across tensors in proportion to their gradient norms.

    Each tensor keeps half its points (at least 2); the other half of the total is shared out in proportion to
    the gradient norms, rounded; rounding drift is taken from the tensor with the most points, or given to the one
    with the largest norm, so the total is exactly preserved. A tensor never ends below half its points.
    """
    if set(grad_norms) != set(points):
        raise ValueError("`grad_norms` and `points` must name the same tensors.")
    if not points:
        return []
    if any(n < 2 for n in points.values()):
        raise ValueError("Every tensor needs at least 2 points.")
    if any(not math.isfinite(g) or g < 0 for g in grad_norms.values()):
        raise ValueError("Gradient norms must be finite and non-negative.")
    names = list(points)
    base = {n: max(2, points[n] // 2) for n in names}
    remaining = sum(points.values()) - sum(base.values())
    total_norm = sum(grad_norms.values())
    if total_norm == 0:
        share = {n: points[n] - base[n] for n in names}  # no signal: keep the allocation as it was
    else:
        share = {n: round(grad_norms[n] / total_norm * remaining) for n in names}
    new = {n: base[n] + share[n] for n in names}
    drift = sum(new.values()) - sum(points.values())
    while drift > 0:  # too many: take from the largest allocation that is still above its floor
        name = max((n for n in names if new[n] > base[n]), key=lambda n: new[n])
        new[name] -= 1
        drift -= 1
    while drift < 0:  # too few: give to the most sensitive tensor
        name = max(names, key=lambda n: grad_norms[n])
        new[name] += 1
        drift += 1
    if any(new[n] > 256 for n in names):
        raise ValueError("An allocation exceeds 256 points (8-bit codes); use fewer bits to start from.")
    return [Allocation(n, grad_norms[n], points[n], new[n]) for n in names]


def allocation_report(allocations: list[Allocation]) -> str:
    """A markdown table: which tensor got how many points and bits."""
    lines = ["| tensor | grad norm | points before | points | bits |", "|---|---|---|---|---|"]
    for a in allocations:
        lines.append(f"| {a.name} | {a.grad_norm:.4g} | {a.points_before} | {a.points} | {a.bits:.2f} |")
    return "\n".join(lines)
