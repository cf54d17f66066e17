"""Attach hfqd quantizers to a model loaded from a packed checkpoint (to train it again or save it again), with its
saved full-precision shadows where there are some."""

from __future__ import annotations

import logging
import os

import safetensors.torch
import torch
from torch import nn

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from .push import HUB_ERRORS
from ..quant import (
    QuantConfig,
    codes_from_values,
    is_quantized,
    quantize_,
    quantized_parameters,
    shadow_for_codes,
)

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
    per_module = (data.get("quant_config") or {}).get("module_bits")  # widths that re-quantizing reproduces
    if data.get("tensor_bits") and data.get("method") != "learned" and not per_module:
        raise NotImplementedError(
            "This packed model has different bit widths per tensor, which fine-tuning supports only for learned "
            "points; pass requantize=True (--requantize) to train it with one bit width."
        )
    if data.get("quant_config"):
        return QuantConfig.from_dict(data["quant_config"])
    return QuantConfig(bits=data["bits"], bucket_size=data["bucket_size"], rounding=data.get("rounding", "nearest"))


def find_shadows(source: str) -> str | None:
    """Path of the shadows file saved beside a packed model: in its folder, or in its Hub repository."""
    if not source:
        return None
    if os.path.isdir(source):
        path = os.path.join(source, SHADOWS_NAME)
        return path if os.path.isfile(path) else None
    try:
        path = hf_hub_download(source, SHADOWS_NAME)
    except (EntryNotFoundError, RepositoryNotFoundError, LocalEntryNotFoundError, OfflineModeIsEnabled):
        return None
    except HUB_ERRORS as err:
        logger.warning(f"Could not look for shadows in {source} ({err}); starting from the packed weights.")
        return None
    return path


@torch.no_grad()
def load_shadows(model: nn.Module, path: str) -> None:
    """Copy full-precision shadows saved by `save_packed(save_shadows=True)` into a quantized ``model``."""
    saved = safetensors.torch.load_file(path)
    entries = quantized_parameters(model)
    missing = [e.name for e in entries if e.name not in saved]
    if missing:
        raise ValueError(f"{path} lacks the shadows of {missing[:3]}; it does not belong to this model.")
    for entry in entries:
        entry.shadow.copy_(saved[entry.name].to(entry.shadow.dtype))


@torch.no_grad()
def _restore_exact_shadows(model: nn.Module, affine: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Shadows that quantize back to exactly the loaded weights (see :func:`hfqd.quant.shadow_for_codes`)."""
    for entry in quantized_parameters(model):
        if entry.name not in affine:
            continue
        minimum, scale = (t.to(entry.shadow.device) for t in affine[entry.name])
        quantizer = entry.quantizer
        loaded = entry.shadow.detach().clone()
        codes = codes_from_values(loaded, minimum, scale, quantizer.levels, quantizer.bucket_size,
                                  getattr(quantizer, "points", None))
        entry.shadow.copy_(shadow_for_codes(codes).to(entry.shadow.dtype))
        quantizer.clear_cache()
        if quantizer.rounding == "nearest" and not torch.equal(quantizer.quantize(entry.shadow), loaded):
            diff = float((quantizer.quantize(entry.shadow) - loaded).abs().max())
            logger.warning(f"{entry.name}: re-attached quantization differs from the loaded weights by up to {diff}.")


def _require_float32(model: nn.Module) -> None:
    """Re-attaching derives each bucket's range from the loaded weights, exact only in float32: in half precision
    the re-saved codes and scales would differ from the file's."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        found = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
        raise ValueError(
            f"This packed model was loaded in {found}: that serves inference, but fine-tuning it or saving it "
            "packed again needs the float32 weights it dequantizes to. Load it without `dtype` (or with "
            "`dtype=torch.float32`) for that."
        )


def prepare_packed_student(model: nn.Module, override: QuantConfig | None = None) -> bool:
    """Re-attach hfqd quantizers to a model loaded from a packed checkpoint; returns whether it was packed.

    Without ``override`` the saved settings stay in force and the model's outputs do not change: the shadows are
    chosen to quantize back to exactly the loaded weights, unless full-precision shadows were saved beside the
    packed weights (in its folder or Hub repository), in which case training resumes from those. The
    transformers quantizer that loaded the model is detached afterwards: the model is now an hfqd-quantized
    model, checkpointed by the Trainer and saved packed by :func:`hfqd.save_packed`.
    """
    saved = packed_quant_config(model)
    if saved is None or is_quantized(model):
        return False
    _require_float32(model)
    config = override or saved
    hf_quantizer = getattr(model, "hf_quantizer", None)
    loaded_points = getattr(hf_quantizer, "loaded_points", {}) if override is None else {}
    affine = getattr(hf_quantizer, "loaded_affine", {}) if override is None else {}
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
    source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
    shadows = find_shadows(source)
    if shadows is not None:
        load_shadows(model, shadows)
        logger.info(f"Fine-tuning resumes from the full-precision shadows saved in {shadows}.")
    else:
        _restore_exact_shadows(model, affine)
        logger.info("Fine-tuning starts from the packed model's weights.")
    if hf_quantizer is not None:
        hf_quantizer.remove_quantization_config(model)
    model._hfqd_packed_source = source
    return True
