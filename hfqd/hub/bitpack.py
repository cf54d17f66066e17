"""Bit packing of integer codes into bytes, for any width from 1 to 8 bits.

Codes are laid out least-significant bit first in one continuous bit stream, so widths that do not divide 8
(3, 5, 6, 7 bits) waste at most 7 bits per tensor, and 1, 2 and 4-bit codes fill each byte exactly. Packing works
byte-wise (shifts of whole uint8 tensors for 1, 2 and 4 bits; numpy's `packbits` on a uint8 bit stream otherwise),
so its memory stays within a few bytes per code; the format is the same one earlier versions wrote bit by bit.
"""

from __future__ import annotations

import numpy as np
import torch


def packed_size(n: int, bits: int) -> int:
    """Bytes needed for ``n`` codes of ``bits`` bits."""
    return -(-n * bits // 8)


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer ``codes`` (values < 2**bits, any shape) into a flat uint8 tensor."""
    _check_bits(bits)
    flat = codes.reshape(-1).to(torch.uint8)
    if flat.numel() and int(flat.max()) >= 2**bits:
        raise ValueError(f"A code of {int(flat.max())} does not fit in {bits} bits.")
    if bits == 8:
        return flat.clone()
    if 8 % bits == 0:
        # 1, 2 and 4 bits: whole codes per byte; code j of a byte sits at bit j * bits.
        per_byte = 8 // bits
        pad = (-flat.numel()) % per_byte
        grouped = torch.cat([flat, flat.new_zeros(pad)]).view(-1, per_byte)
        packed = grouped[:, 0].clone()
        for j in range(1, per_byte):
            packed |= grouped[:, j] << (j * bits)
        return packed
    # 3, 5, 6, 7 bits: numpy unpacks each code into its bits (uint8, LSB first) and packs the bit stream.
    array = flat.cpu().numpy()
    stream = np.unpackbits(array[:, None], axis=1, count=bits, bitorder="little").reshape(-1)
    return torch.from_numpy(np.packbits(stream, bitorder="little"))


def unpack_codes(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the first ``n`` codes as a flat uint8 tensor."""
    _check_bits(bits)
    if packed.numel() != packed_size(n, bits):
        raise ValueError(f"{packed.numel()} bytes cannot hold exactly {n} codes of {bits} bits.")
    packed = packed.reshape(-1).to(torch.uint8)
    if bits == 8:
        return packed.clone()
    if 8 % bits == 0:
        per_byte, mask = 8 // bits, (1 << bits) - 1
        codes = torch.stack([(packed >> (j * bits)) & mask for j in range(per_byte)], dim=1)
        return codes.reshape(-1)[:n].clone()
    stream = np.unpackbits(packed.cpu().numpy(), bitorder="little", count=n * bits)
    codes = np.packbits(stream.reshape(n, bits), axis=1, bitorder="little").reshape(-1)
    return torch.from_numpy(codes)


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise ValueError(f"`bits` must be from 1 to 8, got {bits}.")
