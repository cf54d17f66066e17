"""`from_pretrained` support for packed hfqd checkpoints, registered with transformers' quantizer registry.

After `import hfqd`, `AutoModelForSeq2SeqLM.from_pretrained(packed_dir)` (or any auto class) finds
`quantization_config.quant_method == "hfqd"` in config.json, and the quantizer below rebuilds each packed weight
while the checkpoint is read (dequantize at load). The result is an ordinary float model whose quantized weights
hold exactly the values the saved student computed with. Without `import hfqd`, transformers does not know the
method and refuses to load the checkpoint rather than load packed bytes as weights.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

import torch
from safetensors import safe_open
from transformers.core_model_loading import ConversionOps
from transformers.quantizers import HfQuantizer, register_quantization_config, register_quantizer
from transformers.quantizers.quantizers_utils import get_module_from_name
from transformers.utils.quantization_config import QuantizationConfigMixin

from .packed import (
    METADATA_KEY,
    MIN_SUFFIX,
    POINTS_SUFFIX,
    SCALE_SUFFIX,
    check_entries,
    tensor_checksum,
    unpack_tensor,
)

QUANT_METHOD = "hfqd"
_REQUIRED = object()  # bits and bucket_size have no default: a config without them is corrupt


@register_quantization_config(QUANT_METHOD)
class HfqdConfig(QuantizationConfigMixin):
    """`quantization_config` of a packed hfqd checkpoint.

    Args:
        bits: bits of most quantized tensors.
        bucket_size: values per (min, scale) bucket, `None` for one bucket per tensor.
        rounding: rounding used when the codes were made (`nearest` or `stochastic`).
        method: `uniform` (evenly spaced levels) or `learned` (per-tensor points).
        tensor_bits: bits of the tensors that differ from `bits`.
        quantized_tensors: names of the packed tensors.
        quant_config: the full :class:`hfqd.QuantConfig` used in training, so fine-tuning can keep it.
        hfqd_version: version of hfqd that wrote the checkpoint.
    """

    def __init__(
        self,
        bits: int | None = _REQUIRED,
        bucket_size: int | None = _REQUIRED,
        rounding: str = "nearest",
        method: str = "uniform",
        tensor_bits: dict[str, int] | None = None,
        quantized_tensors: list[str] | None = None,
        quant_config: dict | None = None,
        hfqd_version: str | None = None,
        **kwargs,
    ):
        self.quant_method = QUANT_METHOD
        self.bits = bits
        self.bucket_size = bucket_size
        self.rounding = rounding
        self.method = method
        self.tensor_bits = dict(tensor_bits or {})
        self.quantized_tensors = list(quantized_tensors or [])
        self.quant_config = quant_config
        self.hfqd_version = hfqd_version
        self.post_init()

    def post_init(self) -> None:
        missing = [name for name in ("bits", "bucket_size") if getattr(self, name) is _REQUIRED]
        if missing:
            raise ValueError(
                f"The hfqd quantization_config (config.json) lacks {missing}: the file was not written by hfqd or was "
                "edited. Re-save the model with hfqd.save_packed."
            )
        if self.method not in ("uniform", "learned"):
            raise ValueError(f"`method` must be 'uniform' or 'learned', got {self.method!r}.")
        for name, bits in {"default": self.bits, **self.tensor_bits}.items():
            if bits is not None and not 1 <= int(bits) <= 8:
                raise ValueError(f"Bits of {name} must be from 1 to 8, got {bits}.")

    def bits_of(self, name: str) -> int:
        bits = self.tensor_bits.get(name, self.bits)
        if bits is None:
            raise ValueError(f"The checkpoint does not say how many bits {name} has.")
        return int(bits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "quant_method": self.quant_method,
            "bits": self.bits,
            "bucket_size": self.bucket_size,
            "rounding": self.rounding,
            "method": self.method,
            "tensor_bits": dict(self.tensor_bits),
            "quantized_tensors": list(self.quantized_tensors),
            "quant_config": self.quant_config,
            "hfqd_version": self.hfqd_version,
        }


class HfqdDeserialize(ConversionOps):
    """Turns `weight` (packed codes) + `weight_qmin` + `weight_qscale` (+ `weight_qpoints`) into a float weight."""

    def __init__(self, hf_quantizer: "HfqdHfQuantizer"):
        self.hf_quantizer = hf_quantizer

    def __deepcopy__(self, memo):
        # transformers deep-copies converters per tensor; all copies must report to the one quantizer.
        return type(self)(self.hf_quantizer)

    def convert(self, input_dict, model=None, full_layer_name: str | None = None, **kwargs):
        def first(key):
            value = input_dict.get(key)
            return value[0] if isinstance(value, list) else value

        weight = first("weight")
        minimum, scale = first("weight" + MIN_SUFFIX), first("weight" + SCALE_SUFFIX)
        quantizer = self.hf_quantizer
        config = quantizer.quantization_config
        module, _ = get_module_from_name(model, full_layer_name)
        target = module.weight
        # transformers leaves the dtype of tensors passing through a quantizer's load op to that op: cast each to
        # the model's (e.g. `dtype=torch.bfloat16`), or a norm's weight would stay float32 beside bfloat16 inputs.
        dtype = target.dtype if target.dtype.is_floating_point else torch.float32
        if full_layer_name not in config.quantized_tensors:
            return {"weight": weight.to(dtype) if weight.is_floating_point() else weight}  # e.g. a norm's weight
        points = first("weight" + POINTS_SUFFIX)
        # The entries were validated before loading (`_check_file`); an error here is recorded and raised again.
        try:
            value = unpack_tensor(
                weight, minimum, scale, tuple(target.shape), config.bits_of(full_layer_name), config.bucket_size,
                points=points, dtype=torch.float32,
            )
        except (TypeError, ValueError) as err:
            quantizer.fail(f"{full_layer_name}: {err}")
        # Kept so that fine-tuning restores exactly this quantization (points, bucket ends) instead of recomputing it.
        quantizer.loaded_affine[full_layer_name] = (minimum.detach().clone().float(), scale.detach().clone().float())
        if points is not None:
            quantizer.loaded_points[full_layer_name] = points.detach().clone().float()
        return {"weight": value.to(dtype)}


@register_quantizer(QUANT_METHOD)
class HfqdHfQuantizer(HfQuantizer):
    """Loads packed hfqd checkpoints (dequantize at load); the loaded model can be trained again (QAT)."""

    requires_calibration = True  # only pre-quantized checkpoints: quantize with hfqd.quantize_ instead
    serialized_names = {"weight": ["weight", "weight" + MIN_SUFFIX, "weight" + SCALE_SUFFIX, "weight" + POINTS_SUFFIX]}

    def __init__(self, quantization_config, **kwargs):
        super().__init__(quantization_config, **kwargs)
        self.loaded_points: dict[str, torch.Tensor] = {}
        self.loaded_affine: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.file_info: dict[str, dict] = {}
        self.problems: list[str] = []
        self.weights_file: str = "the checkpoint"

    def validate_environment(self, *args, **kwargs):
        return None

    def fail(self, problem: str) -> NoReturn:
        """One error for every corrupt or mismatched checkpoint, naming the file and the tensor or field.

        transformers catches errors raised while a tensor is converted (and would fill it randomly), so each
        problem is also recorded and raised again once loading ends (`_process_model_after_weight_loading`).
        """
        self.problems.append(problem)
        raise ValueError(f"Cannot load the packed hfqd checkpoint {self.weights_file}: {problem}. Nothing was loaded.")

    def _process_model_after_weight_loading(self, model, **kwargs):
        if self.problems:
            raise ValueError(
                f"Cannot load the packed hfqd checkpoint {self.weights_file}: {self.problems[0]}"
                + (f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else "")
                + ". The model was not loaded."
            )
        return model

    def _process_model_before_weight_loading(self, model, checkpoint_files=None, **kwargs):
        """Check the file against config.json before any weight is read: every tensor the model needs is there,
        and each quantized tensor has the geometry its config gives (a wrong bucket size can yield the same
        number of buckets, so the counts alone prove nothing)."""
        if not checkpoint_files:
            return model
        if len(checkpoint_files) != 1:
            self.fail(f"expected one weights file, got {len(checkpoint_files)}")
        self.weights_file = checkpoint_files[0]
        try:
            with safe_open(self.weights_file, framework="pt") as f:
                names, metadata = set(f.keys()), f.metadata() or {}
        except Exception as err:  # safetensors raises its own error types for truncated or garbled files
            self.fail(f"the file cannot be read ({err}); it is truncated or not a safetensors file")
        if METADATA_KEY in metadata:
            self.file_info = json.loads(metadata[METADATA_KEY])
        config = self.quantization_config
        for name in config.quantized_tensors:
            for suffix in ("", MIN_SUFFIX, SCALE_SUFFIX) + ((POINTS_SUFFIX,) if config.method == "learned" else ()):
                if name + suffix not in names:
                    self.fail(f"the entry {name + suffix} is missing")
            info = self.file_info.get(name)
            if self.file_info and info is None:
                self.fail(f"{name} is listed in config.json but not in the file's metadata")
            if info is not None:
                shape = list(model.get_parameter(name).shape)
                for field, want in (("bits", config.bits_of(name)), ("bucket_size", config.bucket_size),
                                    ("shape", shape)):
                    if info.get(field) != want:
                        self.fail(f"{name} was saved with {field}={info.get(field)}, but the model and config.json "
                                  f"say {want}")
        self._check_complete(model, names)
        self._check_entries(model)
        return model

    def _check_entries(self, model) -> None:
        """Checksums, finite bucket parameters and codes within range, read from the file before any weight loads
        (transformers would turn an error raised during loading into a randomly initialised weight)."""
        config = self.quantization_config
        with safe_open(self.weights_file, framework="pt") as f:
            for name in config.quantized_tensors:
                entries = [f.get_tensor(name + suffix) for suffix in ("", MIN_SUFFIX, SCALE_SUFFIX)]
                points = f.get_tensor(name + POINTS_SUFFIX) if config.method == "learned" else None
                info = self.file_info.get(name)
                if info is not None and tensor_checksum(info, *entries, points) != info.get("sha256"):
                    self.fail(f"the bytes of {name} do not match their checksum (corrupted or edited)")
                try:
                    check_entries(*entries, model.get_parameter(name).numel(), config.bits_of(name),
                                  config.bucket_size, points)
                except ValueError as err:
                    self.fail(f"{name}: {err}")

    def _check_complete(self, model, names: set[str]) -> None:
        """Every tensor the model stores must be in the file (transformers would fill a missing one randomly)."""
        rebuilt = list(getattr(model, "_keys_to_ignore_on_load_missing", None) or [])
        rebuilt += list(getattr(model, "_keys_to_ignore_on_save", None) or [])
        tied = getattr(model, "all_tied_weights_keys", None) or {}
        for key in model.state_dict():
            if key in names or any(re.search(pattern, key) for pattern in rebuilt):
                continue
            partner = tied.get(key)
            if partner is not None and partner in names:
                continue
            if any(source == key and target in names for target, source in tied.items()):
                continue
            self.fail(f"the tensor {key} is missing")

    def get_load_operations(self) -> dict:
        return {"deserialize": HfqdDeserialize}

    def is_serializable(self) -> bool:
        # `save_pretrained` would write the dequantized floats under a config that says they are packed codes.
        raise ValueError(
            "A model loaded from a packed hfqd checkpoint is saved with `hfqd.save_packed(model, output_dir, "
            "tokenizer)`, which writes the packed format again (`trainer.save_model()` does the same)."
        )

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def is_qat_trainable(self) -> bool:
        return True
