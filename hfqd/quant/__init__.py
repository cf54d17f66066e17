"""Pure-PyTorch quantization core of hfqd (no transformers import)."""

from .allocation import Allocation, allocate_points, allocation_report
from .api import (
    materialized_state_dict,
    shadow_state_dict,
    QuantizedParameter,
    dequantize_,
    freeze_,
    get_quant_config,
    is_quantized,
    iter_shadow_names,
    learned_points,
    quant_state,
    quantize_,
    quantized_parameters,
    selected_parameters,
    set_quant_step,
    sort_points_,
)
from .config import QuantConfig
from .functions import (
    codes_from_values,
    shadow_for_codes,
    QuantizedCodes,
    dequantize_codes,
    nearest_point_codes,
    quantize_to_points,
    to_buckets,
    uniform_codes,
    uniform_quantize,
)
from .huffman import HuffmanSize, code_frequencies, entropy, huffman_code_lengths, huffman_size, mean_code_length
from .learned import LearnedQuantizer, initial_points
from .quantizer import QuantState, UniformQuantizer
from .size import SizeReport, model_size
from .ste import StraightThrough, straight_through

__all__ = [
    "Allocation",
    "HuffmanSize",
    "LearnedQuantizer",
    "allocate_points",
    "allocation_report",
    "code_frequencies",
    "codes_from_values",
    "shadow_for_codes",
    "entropy",
    "huffman_code_lengths",
    "huffman_size",
    "initial_points",
    "learned_points",
    "materialized_state_dict",
    "mean_code_length",
    "selected_parameters",
    "sort_points_",
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
    "shadow_state_dict",
    "straight_through",
    "to_buckets",
    "uniform_codes",
    "uniform_quantize",
]
