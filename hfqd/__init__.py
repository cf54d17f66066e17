"""hfqd: quantized distillation for Hugging Face models (Polino, Pascanu & Alistarh, ICLR 2018)."""

from .quant import (
    QuantConfig,
    dequantize_,
    freeze_,
    is_quantized,
    model_size,
    quantize_,
    quantized_parameters,
)
from .distill import (
    DistillationArguments,
    QuantizedDistillationTrainer,
    distillation_loss,
    make_student_from_config,
    make_student_from_teacher,
)
from .hub import HfqdConfig, save_packed  # registers the "hfqd" quantizer with transformers
from .version import __version__

__all__ = [
    "HfqdConfig",
    "save_packed",
    "DistillationArguments",
    "QuantizedDistillationTrainer",
    "distillation_loss",
    "make_student_from_config",
    "make_student_from_teacher",
    "QuantConfig",
    "__version__",
    "dequantize_",
    "freeze_",
    "is_quantized",
    "model_size",
    "quantize_",
    "quantized_parameters",
]
