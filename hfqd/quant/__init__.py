"""Pure-PyTorch quantization core of hfqd (no transformers import)."""

from .api import (
    QuantizedParameter,
    dequantize_,
    freeze_,
    get_quant_config,
    is_quantized,
    iter_shadow_names,
    quant_state,
    quantize_,
    quantized_parameters,
    set_quant_step,
)
from .config import QuantConfig
from .functions import (
    QuantizedCodes,
    dequantize_codes,
    nearest_point_codes,
    quantize_to_points,
    to_buckets,
    uniform_codes,
    uniform_quantize,
)
from .quantizer import QuantState, UniformQuantizer
from .size import SizeReport, model_size
from .ste import StraightThrough, straight_through

__all__ = [
    "QuantConfig",
    "QuantState",
    "QuantizedCodes",
    "QuantizedParameter",
    "SizeReport",
    "StraightThrough",
    "UniformQuantizer",
    "dequantize_",
    "dequantize_codes",
    "freeze_",
    "get_quant_config",
    "is_quantized",
    "iter_shadow_names",
    "model_size",
    "nearest_point_codes",
    "quant_state",
    "quantize_",
    "quantize_to_points",
    "quantized_parameters",
    "set_quant_step",
    "straight_through",
    "to_buckets",
    "uniform_codes",
    "uniform_quantize",
]
