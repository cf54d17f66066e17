"""hfqd: quantized distillation for Hugging Face models (Polino, Pascanu & Alistarh, ICLR 2018).

Importing hfqd also registers the "hfqd" quantization method with transformers, so that packed students load
with `from_pretrained`.
"""

from .distill import (
    DistillationArguments,
    QuantizedDistillationTrainer,
    distillation_loss,
    make_marian,
    make_resnet,
    make_student_from_config,
    make_student_from_teacher,
)
from .export import export_ctranslate2
from .hub import HfqdConfig, save_packed
from .quant import (
    QuantConfig,
    convert_,
    dequantize_,
    freeze_,
    huffman_size,
    is_quantized,
    model_size,
    quantize_,
    quantized_parameters,
)
from .version import __version__

__all__ = [
    # quantization
    "QuantConfig",
    "convert_",
    "dequantize_",
    "freeze_",
    "huffman_size",
    "is_quantized",
    "model_size",
    "quantize_",
    "quantized_parameters",
    # distillation
    "DistillationArguments",
    "QuantizedDistillationTrainer",
    "distillation_loss",
    "make_marian",
    "make_resnet",
    "make_student_from_config",
    "make_student_from_teacher",
    # packed checkpoints
    "HfqdConfig",
    "save_packed",
    # deployment
    "export_ctranslate2",
    "__version__",
]
