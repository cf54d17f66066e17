"""Bit packing of integer codes into bytes, for any width from 1 to 8 bits.

Codes are laid out least-significant bit first in one continuous bit stream, so widths that do not divide 8
(3, 5, 6, 7 bits) waste at most 7 bits per tensor, and 1, 2 and 4-bit codes fill each byte exactly.
"""

from __future__ import annotations

import torch


def packed_size(n: int, bits: int) -> int:
    """Bytes needed for ``n`` codes of ``bits`` bits."""
    return -(-n * bits // 8)


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer ``codes`` (values < 2**bits, any shape) into a flat uint8 tensor."""
    if not 1 <= bits <= 8:
        raise ValueError(f"`bits` must be from 1 to 8, got {bits}.")
    flat = codes.reshape(-1).to(torch.uint8)
    if flat.numel() and int(flat.max()) >= 2**bits:
        raise ValueError(f"A code of {int(flat.max())} does not fit in {bits} bits.")
    if bits == 8:
        return flat.clone()
    shifts = torch.arange(bits, dtype=torch.uint8, device=flat.device)
    stream = ((flat[:, None] >> shifts) & 1).reshape(-1)
    pad = (-stream.numel()) % 8
    if pad:
        stream = torch.cat([stream, stream.new_zeros(pad)])
    weights = torch.arange(8, dtype=torch.uint8, device=flat.device)
    return (stream.view(-1, 8).long() << weights.long()).sum(dim=1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the first ``n`` codes as a flat uint8 tensor."""
    if not 1 <= bits <= 8:
        raise ValueError(f"`bits` must be from 1 to 8, got {bits}.")
    if packed.numel() != packed_size(n, bits):
        raise ValueError(f"{packed.numel()} bytes cannot hold exactly {n} codes of {bits} bits.")
    packed = packed.reshape(-1).to(torch.uint8)
    if bits == 8:
        return packed.clone()
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    stream = ((packed[:, None] >> shifts) & 1).reshape(-1)[: n * bits]
    weights = torch.arange(bits, dtype=torch.uint8, device=packed.device)
    return (stream.view(n, bits).long() << weights.long()).sum(dim=1).to(torch.uint8)
