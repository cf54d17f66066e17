"""Continue training a packed hfqd student: restore its quantization and, if saved, its full-precision shadows."""

from __future__ import annotations

import logging
import os

import safetensors.torch
import torch
from torch import nn

from ..quant import QuantConfig, is_quantized, quantize_, quantized_parameters

logger = logging.getLogger(__name__)

SHADOWS_NAME = "hfqd_shadows.safetensors"


def packed_quant_config(model: nn.Module) -> QuantConfig | None:
    """The :class:`QuantConfig` a model loaded from a packed hfqd checkpoint was trained with, else `None`."""
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    if config is None:
        return None
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if data.get("quant_method") != "hfqd":
        return None
    if data.get("tensor_bits") and data.get("method") != "learned":
        raise NotImplementedError(
            "This packed model has different bit widths per tensor, which fine-tuning supports only for learned "
            "points; pass requantize=True (--requantize) to train it with one bit width."
        )
    if data.get("quant_config"):
        return QuantConfig.from_dict(data["quant_config"])
    return QuantConfig(bits=data["bits"], bucket_size=data["bucket_size"], rounding=data.get("rounding", "nearest"))


@torch.no_grad()
def load_shadows(model: nn.Module, folder: str) -> bool:
    """Copy full-precision shadows saved by `save_packed(save_shadows=True)` into a quantized ``model``.

    Returns whether a shadows file was found.
    """
    path = os.path.join(folder, SHADOWS_NAME)
    if not os.path.isfile(path):
        return False
    saved = safetensors.torch.load_file(path)
    entries = quantized_parameters(model)
    missing = [e.name for e in entries if e.name not in saved]
    if missing:
        raise ValueError(f"{path} lacks the shadows of {missing[:3]}; it does not belong to this model.")
    for entry in entries:
        entry.shadow.copy_(saved[entry.name].to(entry.shadow.dtype))
    return True


def prepare_packed_student(model: nn.Module, override: QuantConfig | None = None) -> bool:
    """Re-attach hfqd quantizers to a model loaded from a packed checkpoint; returns whether it was packed.

    The dequantized weights become the full-precision shadows, unless shadows were saved beside the packed
    weights, in which case training resumes from those. The saved settings stay in force unless ``override`` is
    given.
    """
    saved = packed_quant_config(model)
    if saved is None or is_quantized(model):
        return False
    config = override or saved
    hf_quantizer = getattr(model, "hf_quantizer", None)
    loaded_points = getattr(hf_quantizer, "loaded_points", {}) if override is None else {}
    quantize_(model, config, points_per_tensor={name: p.numel() for name, p in loaded_points.items()})
    with torch.no_grad():
        for entry in quantized_parameters(model):
            if entry.name in loaded_points:
                entry.quantizer.points.copy_(loaded_points[entry.name])
    expected = getattr(model.config.quantization_config, "quantized_tensors", None) or []
    got = sorted(e.name for e in quantized_parameters(model))
    if override is None and expected and sorted(expected) != got:
        raise ValueError(
            f"Re-quantizing the packed model selected {len(got)} tensors, but it was saved with {len(expected)}; "
            "the model does not match its quantization_config."
        )
    folder = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
    if folder and os.path.isdir(folder) and load_shadows(model, folder):
        logger.info(f"Fine-tuning resumes from the full-precision shadows saved in {folder}.")
    else:
        logger.info("Fine-tuning starts from the dequantized weights of the packed model.")
    return True
