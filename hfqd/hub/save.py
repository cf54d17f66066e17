"""`save_packed`: write a quantized model as a packed checkpoint that `from_pretrained` loads."""

from __future__ import annotations

import copy
import os

import safetensors.torch
from torch import nn

from ..quant import is_quantized, quantized_parameters
from .attach import SHADOWS_NAME, packed_quant_config, prepare_packed_student
from ..utils import replace_files
from .packed import WEIGHTS_NAME, file_metadata, packed_state_dict, quant_config_dict


def save_packed(model: nn.Module, output_dir: str, tokenizer=None, save_shadows: bool = False) -> dict:
    """Save a model quantized by :func:`hfqd.quantize_` as a packed checkpoint in ``output_dir``.

    Writes `model.safetensors` (codes bit-packed, per-bucket min/scale, other tensors as they are), `config.json`
    with `quantization_config`, `generation_config.json` and the tokenizer when given. Only these files are
    replaced, each by an atomic rename (config.json last), so the `checkpoint-*` folders of a Trainer's
    `output_dir` and anything else kept there survive, and an interrupted save leaves the previous files intact.
    With ``save_shadows``, the full-precision shadow weights go to `hfqd_shadows.safetensors` as well, so that a
    later fine-tuning resumes from them rather than from the dequantized values.

    A model loaded from a packed checkpoint (`from_pretrained` after `import hfqd`) is saved the same way: its
    quantizers are re-attached first, which leaves its outputs unchanged.

    Returns:
        The `quantization_config` dict written to config.json.

    Raises:
        NotADirectoryError: ``output_dir`` is a file.
    """
    if not is_quantized(model) and packed_quant_config(model) is not None:
        prepare_packed_student(model)  # loaded from a packed checkpoint: re-attach its quantizers (exact)
    if not is_quantized(model):
        raise ValueError("save_packed needs a model quantized by hfqd.quantize_; use save_pretrained for others.")
    if not hasattr(model, "config"):
        raise TypeError("save_packed needs a transformers PreTrainedModel (it writes config.json).")
    tensors, info = packed_state_dict(model)
    quantization_config = quant_config_dict(model, info)
    config = copy.deepcopy(model.config)
    config.quantization_config = quantization_config
    config.architectures = [type(model).__name__]
    config.dtype = model.dtype  # what the weights dequantize to, as save_pretrained records it: dtype="auto" loads it
    with replace_files(output_dir, remove=() if save_shadows else (SHADOWS_NAME,)) as tmp:
        config.save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None and model.can_generate():
            model.generation_config.save_pretrained(tmp)
        safetensors.torch.save_file(tensors, os.path.join(tmp, WEIGHTS_NAME), metadata=file_metadata(info))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if save_shadows:
            shadows = {e.name: e.shadow.detach().cpu().contiguous() for e in quantized_parameters(model)}
            safetensors.torch.save_file(shadows, os.path.join(tmp, SHADOWS_NAME), metadata={"format": "pt"})
    return quantization_config
