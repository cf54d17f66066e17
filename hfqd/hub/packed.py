"""The packed checkpoint format: bit-packed codes, per-bucket (min, scale), everything else as it is.

For each quantized tensor `P` (e.g. `model.encoder.layers.0.fc1.weight`) the safetensors file holds

    P            uint8, the level codes of the real elements bit-packed at the tensor's width (bucket padding dropped)
    P_qmin       float32 [n_buckets], each bucket's minimum
    P_qscale     float32 [n_buckets], each bucket's max - min
    P_qpoints    float32 [n_points], learned levels in [0, 1] (non-uniform quantization only)

and `config.json` carries `quantization_config = {"quant_method": "hfqd", ...}` with the bits of each tensor.
The file's own metadata (`hfqd` key) repeats each quantized tensor's geometry (shape, bits, bucket size, levels)
and a SHA-256 of its packed entries, so a file that does not match its config, or whose bytes changed, is refused
at load instead of being decoded into wrong weights. Weights are rebuilt with :func:`hfqd.quant.dequantize_codes`,
the same function the training forward pass uses, so a loaded model computes exactly what the saved one did.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import torch
from torch import nn

from ..quant import (
    QuantizedCodes,
    dequantize_codes,
    get_quant_config,
    model_size,
    quantized_parameters,
    shadow_state_dict,
)
from ..quant.size import stored_once, unsaved_keys
from ..version import __version__
from .bitpack import pack_codes, unpack_codes

MIN_SUFFIX, SCALE_SUFFIX, POINTS_SUFFIX = "_qmin", "_qscale", "_qpoints"
WEIGHTS_NAME = "model.safetensors"
METADATA_KEY = "hfqd"


def tensor_checksum(geometry: dict, *tensors: torch.Tensor | None) -> str:
    """SHA-256 of a quantized tensor's geometry (shape, bits, bucket size) and the bytes of its packed entries
    (codes, min, scale, points): a file whose bytes or recorded geometry were changed no longer matches."""
    digest = hashlib.sha256(json.dumps({k: geometry[k] for k in ("shape", "bits", "bucket_size")}).encode())
    for tensor in tensors:
        if tensor is not None:
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_metadata(info: dict[str, dict]) -> dict[str, str]:
    """The safetensors metadata of a packed file (string values only, as safetensors requires)."""
    return {"format": "pt", METADATA_KEY: json.dumps(info, sort_keys=True)}


def _plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with parametrized weights under their plain names; tied tensors kept once (first name); what
    the model rebuilds on load (its `_keys_to_ignore_on_save`, as `save_pretrained` does) left out."""
    weights, _ = shadow_state_dict(model)
    skip = unsaved_keys(model)
    return stored_once((name, tensor) for name, tensor in weights.items() if name not in skip)


def packed_state_dict(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """Tensors of the packed file and, per quantized tensor, its metadata (shape, bits, bucket size, levels and
    the checksum of its packed entries)."""
    tensors = _plain_state_dict(model)
    info: dict[str, dict] = {}
    for entry in quantized_parameters(model):
        q = entry.quantizer.codes(entry.shadow)
        bits = max(1, (q.levels - 1).bit_length())
        parts = [
            pack_codes(q.flat_codes(), bits),
            q.minimum.detach().float().cpu().contiguous(),
            q.scale.detach().float().cpu().contiguous(),
            None if q.points is None else q.points.detach().float().cpu().contiguous(),
        ]
        for suffix, tensor in zip(("", MIN_SUFFIX, SCALE_SUFFIX, POINTS_SUFFIX), parts):
            if tensor is not None:
                tensors[entry.name + suffix] = tensor
        info[entry.name] = {"bits": bits, "bucket_size": entry.quantizer.bucket_size, "levels": q.levels,
                            "shape": list(entry.shadow.shape)}
        info[entry.name]["sha256"] = tensor_checksum(info[entry.name], *parts)
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, info


def check_entries(
    packed: torch.Tensor,
    minimum: torch.Tensor,
    scale: torch.Tensor,
    numel: int,
    bits: int,
    bucket_size: int | None,
    points: torch.Tensor | None = None,
) -> torch.Tensor:
    """Validate one quantized tensor's packed entries against its geometry; returns its unpacked codes.

    Raises:
        ValueError: wrong bucket count or byte count, non-finite or negative bucket parameters, non-finite points,
            or codes beyond the number of levels.
    """
    n_buckets = minimum.numel()
    bucket_len = numel if bucket_size is None or bucket_size >= numel else bucket_size
    if n_buckets != -(-numel // bucket_len) or scale.numel() != n_buckets:
        raise ValueError(
            f"{numel} values in buckets of {bucket_size} make {-(-numel // bucket_len)} buckets, but the checkpoint "
            f"stores {n_buckets} minima and {scale.numel()} scales: the file and its config.json do not match."
        )
    for what, tensor in (("minimum", minimum), ("scale", scale), ("points", points)):
        if tensor is not None and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"The stored bucket {what} holds non-finite values: the file is corrupt.")
    if bool((scale < 0).any()):
        raise ValueError("A stored bucket scale is negative: the file is corrupt.")
    codes = unpack_codes(packed, bits, numel)
    levels = points.numel() if points is not None else 2**bits
    if numel and int(codes.max()) >= levels:
        raise ValueError(f"A stored code ({int(codes.max())}) exceeds the {levels} levels: the file is corrupt.")
    return codes


def unpack_tensor(
    packed: torch.Tensor,
    minimum: torch.Tensor,
    scale: torch.Tensor,
    shape: tuple[int, ...],
    bits: int,
    bucket_size: int | None,
    points: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Rebuild one weight from its packed entries (checked by :func:`check_entries`)."""
    numel = 1
    for d in shape:
        numel *= d
    codes = check_entries(packed, minimum, scale, numel, bits, bucket_size, points)
    bucket_len = numel if bucket_size is None or bucket_size >= numel else bucket_size
    n_buckets = minimum.numel()
    padded = torch.zeros(n_buckets * bucket_len, dtype=torch.uint8)
    padded[:numel] = codes
    levels = points.numel() if points is not None else 2**bits
    q = QuantizedCodes(padded.view(n_buckets, -1), minimum.float(), scale.float(), torch.Size(shape), levels, points)
    return dequantize_codes(q, dtype)


@dataclass
class PackedSize:
    """Bytes of a packed model: on disk, in theory (paper formula), and in fp32."""

    file_bytes: int
    theoretical_bytes: float
    fp32_bytes: int

    @property
    def overhead(self) -> float:
        """File size over theoretical size (1.0 = no overhead)."""
        return self.file_bytes / self.theoretical_bytes


def packed_size_report(model: nn.Module, weights_file: str) -> PackedSize:
    """Compare a packed file's size with the theoretical size of ``model`` and with fp32."""
    report = model_size(model)
    return PackedSize(os.path.getsize(weights_file), report.bits / 8, report.fp32_bits // 8)


def quant_config_dict(model: nn.Module, info: dict[str, dict]) -> dict:
    """The `quantization_config` entry of config.json for a packed model."""
    config = get_quant_config(model)
    default_bits = config.bits if config is not None else None
    return {
        "quant_method": "hfqd",
        "bits": default_bits,
        "bucket_size": config.bucket_size if config is not None else None,
        "rounding": config.rounding if config is not None else "nearest",
        "method": config.method if config is not None else "uniform",
        "tensor_bits": {name: meta["bits"] for name, meta in info.items() if meta["bits"] != default_bits},
        "quantized_tensors": sorted(info),
        "quant_config": config.to_dict() if config is not None else None,
        "hfqd_version": __version__,
    }
