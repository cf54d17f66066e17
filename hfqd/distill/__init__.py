"""Distillation: the loss, the Trainer subclass, its arguments, student builders."""

from .arguments import DistillationArguments
from .losses import DistillationLossOutput, distillation_loss
from .students import (
    check_same_outputs,
    check_same_tokenizer,
    check_same_vocabulary,
    make_marian,
    make_resnet,
    make_student_from_config,
    make_student_from_teacher,
    pick_layers,
)
from .trainer import QuantizedDistillationTrainer

__all__ = [
    "DistillationArguments",
    "DistillationLossOutput",
    "QuantizedDistillationTrainer",
    "check_same_outputs",
    "check_same_tokenizer",
    "check_same_vocabulary",
    "distillation_loss",
    "make_marian",
    "make_resnet",
    "make_student_from_config",
    "make_student_from_teacher",
    "pick_layers",
]
