"""Bucketed min-max quantization, as in Polino et al. (2018), section 2.1.

Every function here works on plain tensors and returns both the dequantized tensor (what the forward
pass uses) and the integer codes with their per-bucket affine parameters (what a packed checkpoint
stores). Dequantization always goes through :func:`dequantize_codes`, so a tensor rebuilt from stored
codes is bit-identical to the one used in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ROUNDING_MODES = ("nearest", "stochastic")

# Buckets whose values span less than this are treated as constant (scale 1), as in the paper's code.
_MIN_SPAN = 1e-10


@dataclass
class QuantizedCodes:
    """Integer codes of one tensor plus what is needed to rebuild it.

    Attributes:
        codes: `[n_buckets, bucket_len]` integer level indices (uint8), padding included.
        minimum: `[n_buckets]` float32, the smallest value of each bucket (beta in the paper).
        scale: `[n_buckets]` float32, max - min of each bucket (alpha in the paper).
        shape: shape of the original tensor.
        levels: number of quantization levels (`2**bits` for uniform quantization, `len(points)` otherwise).
        points: sorted levels in the scaled domain [0, 1] for non-uniform quantization, else `None`.
    """

    codes: torch.Tensor
    minimum: torch.Tensor
    scale: torch.Tensor
    shape: torch.Size
    levels: int
    points: torch.Tensor | None = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def n_buckets(self) -> int:
        return self.codes.shape[0]

    def flat_codes(self) -> torch.Tensor:
        """Codes of the real elements only (padding dropped), flattened."""
        return self.codes.reshape(-1)[: self.numel]


def to_buckets(tensor: torch.Tensor, bucket_size: int | None) -> torch.Tensor:
    """Flatten ``tensor`` into ``[n_buckets, bucket_size]``, padding the last bucket with the last value.

    Padding with a real value (rather than zeros) keeps the padded bucket's min and max unchanged.
    ``bucket_size=None`` gives a single bucket holding the whole tensor.
    """
    flat = tensor.reshape(-1)
    if flat.numel() == 0:
        raise ValueError("Cannot quantize an empty tensor.")
    if bucket_size is None or bucket_size >= flat.numel():
        return flat.unsqueeze(0)
    remainder = flat.numel() % bucket_size
    if remainder:
        flat = torch.cat([flat, flat[-1:].expand(bucket_size - remainder)])
    return flat.view(-1, bucket_size)


def bucket_affine(buckets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bucket minimum and span (max - min); constant buckets get span 1 so nothing divides by zero."""
    minimum = buckets.amin(dim=1)
    scale = buckets.amax(dim=1) - minimum
    scale = torch.where(scale < _MIN_SPAN, torch.ones_like(scale), scale)
    return minimum, scale


def _scaled(tensor: torch.Tensor, bucket_size: int | None):
    buckets = to_buckets(tensor.detach().float(), bucket_size)
    minimum, scale = bucket_affine(buckets)
    return (buckets - minimum[:, None]) / scale[:, None], minimum, scale


def dequantize_codes(q: QuantizedCodes, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rebuild the tensor from its codes: the single definition of the dequantized value."""
    if q.points is None:
        unit = q.codes.float() / (q.levels - 1)
    else:
        unit = q.points.detach().float()[q.codes.long()]
    values = unit * q.scale[:, None] + q.minimum[:, None]
    return values.reshape(-1)[: q.numel].view(q.shape).to(dtype)


def uniform_codes(
    tensor: torch.Tensor,
    bits: int,
    bucket_size: int | None = 256,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> QuantizedCodes:
    """Integer codes of ``tensor`` on ``2**bits`` evenly spaced levels per bucket (both ends included).

    Args:
        tensor: any shape and float dtype.
        bits: 1 to 8.
        bucket_size: values per bucket, or `None` for one bucket per tensor.
        rounding: `"nearest"` (deterministic) or `"stochastic"` (unbiased: rounds up with probability equal to
            the distance from the level below, in level units).
        generator: required for stochastic rounding, so that results never depend on the global RNG.
    """
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 8:
        raise ValueError(f"`bits` must be an integer from 1 to 8, got {bits!r}.")
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"`rounding` must be one of {ROUNDING_MODES}, got {rounding!r}.")
    steps = 2**bits - 1
    unit, minimum, scale = _scaled(tensor, bucket_size)
    x = unit * steps
    if rounding == "nearest":
        codes = torch.round(x)
    else:
        if generator is None:
            raise ValueError("Stochastic rounding needs an explicit `generator` (torch.Generator) for reproducibility.")
        low = torch.floor(x)
        draw = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device)
        codes = low + (draw < (x - low)).float()
    codes = codes.clamp_(0, steps).to(torch.uint8)
    return QuantizedCodes(codes=codes, minimum=minimum, scale=scale, shape=tensor.shape, levels=steps + 1)


def uniform_quantize(
    tensor: torch.Tensor,
    bits: int,
    bucket_size: int | None = 256,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, QuantizedCodes]:
    """Quantize ``tensor`` uniformly; returns ``(dequantized tensor, codes)``. See :func:`uniform_codes`."""
    q = uniform_codes(tensor, bits, bucket_size, rounding, generator)
    return dequantize_codes(q, tensor.dtype), q


def nearest_point_codes(tensor: torch.Tensor, points: torch.Tensor, bucket_size: int | None = 256) -> QuantizedCodes:
    """Codes mapping each value of ``tensor`` to the nearest of ``points`` (sorted, in the scaled domain [0, 1])."""
    if points.dim() != 1 or points.numel() < 2:
        raise ValueError(f"`points` must be a 1-D tensor with at least 2 values, got shape {tuple(points.shape)}.")
    if points.numel() > 256:
        raise ValueError(f"At most 256 points fit in 8-bit codes, got {points.numel()}.")
    if bool((points[1:] < points[:-1]).any()):
        raise ValueError("`points` must be sorted in increasing order.")
    unit, minimum, scale = _scaled(tensor, bucket_size)
    return QuantizedCodes(nearest_points(unit, points), minimum, scale, tensor.shape, points.numel(), points)


def nearest_points(unit: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """uint8 index of the nearest of ``points`` (sorted) for each value of ``unit`` (already in the scaled domain).

    It does not check that the points are sorted: that check reads the tensor back to the host, which a learned
    quantizer, keeping its points sorted itself, cannot afford in every forward pass.
    """
    p = points.detach().float()
    return torch.bucketize(unit, (p[1:] + p[:-1]) / 2).to(torch.uint8)


def quantize_to_points(
    tensor: torch.Tensor, points: torch.Tensor, bucket_size: int | None = 256
) -> tuple[torch.Tensor, QuantizedCodes]:
    """Non-uniform quantization to ``points``; returns ``(dequantized tensor, codes)``."""
    q = nearest_point_codes(tensor, points, bucket_size)
    return dequantize_codes(q, tensor.dtype), q


def codes_from_values(
    values: torch.Tensor,
    minimum: torch.Tensor,
    scale: torch.Tensor,
    levels: int,
    bucket_size: int | None,
    points: torch.Tensor | None = None,
) -> QuantizedCodes:
    """The codes of a tensor that already holds dequantized values, given the stored per-bucket affine."""
    buckets = to_buckets(values.detach().float(), bucket_size)
    unit = (buckets - minimum[:, None]) / scale[:, None]
    if points is None:
        codes = torch.round(unit * (levels - 1)).clamp_(0, levels - 1)
    else:
        codes = nearest_points(unit, points)
    return QuantizedCodes(codes.to(torch.uint8), minimum.float(), scale.float(), values.shape, levels, points)


def shadow_for_codes(q: QuantizedCodes, max_ulps: int = 8) -> torch.Tensor:
    """A full-precision tensor that quantizes back to exactly the values of ``q`` (nearest rounding).

    The dequantized values alone do not: their bucket's max - min is recomputed in floating point and can differ
    from the stored scale by an ulp, and learned points need not reach 0 and 1, so the recomputed span would shrink.
    Here each bucket's lowest-code values sit at its stored minimum and its highest-code values at a float chosen
    so that `max - min` equals the stored scale exactly; every other value is its dequantized value.
    """
    values = dequantize_codes(q).reshape(-1)
    n_buckets, bucket_len = q.codes.shape
    padded = torch.cat([values, values[-1:].expand(n_buckets * bucket_len - values.numel())]).view(n_buckets, -1)
    minimum, scale = q.minimum.float(), q.scale.float()
    top = minimum + scale
    for _ in range(max_ulps):  # nudge `top` until top - minimum == scale in float32
        span = top - minimum
        top = torch.where(span < scale, torch.nextafter(top, top + 1),
                          torch.where(span > scale, torch.nextafter(top, top - 1), top))
    padded = torch.where(q.codes == 0, minimum[:, None], padded)
    padded = torch.where(q.codes == q.levels - 1, top[:, None], padded)
    return padded.reshape(-1)[: q.numel].view(q.shape)
