"""`from_pretrained` support for packed hfqd checkpoints, registered with transformers' quantizer registry.

After `import hfqd`, `AutoModelForSeq2SeqLM.from_pretrained(packed_dir)` (or any auto class) finds
`quantization_config.quant_method == "hfqd"` in config.json, and the quantizer below rebuilds each packed weight
while the checkpoint is read (dequantize at load). The result is an ordinary float model whose quantized weights
hold exactly the values the saved student computed with. Without `import hfqd`, transformers does not know the
method and refuses to load the checkpoint rather than load packed bytes as weights.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.core_model_loading import ConversionOps
from transformers.quantizers import HfQuantizer, register_quantization_config, register_quantizer
from transformers.quantizers.quantizers_utils import get_module_from_name
from transformers.utils.quantization_config import QuantizationConfigMixin

from .packed import MIN_SUFFIX, POINTS_SUFFIX, SCALE_SUFFIX, unpack_tensor

QUANT_METHOD = "hfqd"


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
        bits: int | None = 4,
        bucket_size: int | None = 256,
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
        if minimum is None or scale is None:
            return {"weight": weight}  # not a quantized tensor (e.g. a norm's weight)
        module, _ = get_module_from_name(model, full_layer_name)
        target = module.weight
        config = self.hf_quantizer.quantization_config
        points = first("weight" + POINTS_SUFFIX)
        if points is not None:
            # Kept so that fine-tuning restores the learned points instead of initialising new ones.
            self.hf_quantizer.loaded_points[full_layer_name] = points.detach().clone().float()
        value = unpack_tensor(
            weight, minimum, scale, tuple(target.shape), config.bits_of(full_layer_name), config.bucket_size,
            points=points, dtype=torch.float32,
        )
        return {"weight": value.to(target.dtype if target.dtype.is_floating_point else torch.float32)}


@register_quantizer(QUANT_METHOD)
class HfqdHfQuantizer(HfQuantizer):
    """Loads packed hfqd checkpoints (dequantize at load); the loaded model can be trained again (QAT)."""

    requires_calibration = True  # only pre-quantized checkpoints: quantize with hfqd.quantize_ instead
    serialized_names = {"weight": ["weight", "weight" + MIN_SUFFIX, "weight" + SCALE_SUFFIX, "weight" + POINTS_SUFFIX]}

    def __init__(self, quantization_config, **kwargs):
        super().__init__(quantization_config, **kwargs)
        self.loaded_points: dict[str, torch.Tensor] = {}

    def validate_environment(self, *args, **kwargs):
        return None


    def get_load_operations(self) -> dict:
        return {"deserialize": HfqdDeserialize}

    def is_serializable(self) -> bool:
        # Saving goes through hfqd.save_packed (the trainer's save_model), which writes codes, not floats.
        return False

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def is_qat_trainable(self) -> bool:
        return True
