"""`DistillationArguments`: Seq2SeqTrainingArguments plus the distillation and quantization options."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import Seq2SeqTrainingArguments

from ..quant import QuantConfig

DISTILLATION_MODES = ("token", "sequence", "sequence+token", "none")
SEQUENCE_ENGINES = ("transformers", "ctranslate2")
TEACHER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FULL_PRECISION_BITS = 32


@dataclass
class DistillationArguments(Seq2SeqTrainingArguments):
    """Training arguments of :class:`~hfqd.QuantizedDistillationTrainer`.

    Args:
        temperature: softmax temperature T of the teacher term. The paper uses 1 for translation, 2 for images.
        alpha: weight of the teacher term; `1 - alpha` weighs the cross-entropy on the labels. 0 trains without a
            teacher (quantization-aware training when `bits` is set).
        distillation_mode: `"token"` (match the teacher's distribution at each target token), `"sequence+token"`
            (both: the teacher's translations as targets, and its distribution at each of their tokens; Kim & Rush's
            best combination), `"sequence"` (train
            on the teacher's own beam-search translations, generated once and cached) or `"none"` (labels only).
        bits: bits per quantized weight, 1 to 8; `None` (or 32 on the command line) trains in full precision.
        bucket_size: values per (min, scale) bucket; 0 on the command line means one bucket per tensor.
        rounding: `"nearest"` or `"stochastic"`.
        quant_method: `"uniform"` levels (quantized distillation) or `"learned"` points (differentiable
            quantization).
        points_init / points_learning_rate: initialisation and learning rate of learned points (their own optimizer
            group, without weight decay).
        points_optimizer: `"adamw"` (the points in their own group of the Trainer's optimizer) or `"sgd"` (plain
            SGD at a constant `points_learning_rate`, as the paper trains its points; stateless, so checkpoints need
            nothing more).
        train_weights: with learned points, also train the weights (joint); `False` trains the points only, from a
            trained full-precision student, as in the paper.
        allocate_bits / allocation_batches: before training, redistribute the points across tensors in proportion
            to their gradient norms, estimated on a few batches (learned points only).
        quant_include / quant_exclude: glob patterns on module names to quantize / keep in full precision.
        keep_first_last: keep the first and last quantizable layers in full precision.
        module_bits: `"PATTERN=BITS"` entries: modules whose names match get another width than `bits`
            (`QuantConfig.module_bits`).
        requantize: for a student loaded from a packed hfqd checkpoint, use these arguments' quantization settings
            instead of the saved ones.
        save_shadows: `save_model` also writes the full-precision shadow weights beside the packed ones, so a later
            fine-tuning resumes from them.
        teacher_dtype: dtype the teacher runs in.
        sequence_num_beams / sequence_max_length / sequence_batch_size: teacher decoding for `"sequence"` mode.
        sequence_engine: what beam-searches the teacher for those targets: `"transformers"`, or `"ctranslate2"` (a
            float32 export of the same teacher, several times faster on CPU; needs the deploy extra, a
            CTranslate2-convertible teacher and the trainer's `processing_class`).
        sequence_cache_dir: where teacher translations are cached (default: `<HF_HOME>/hfqd/sequence_kd`).
        teacher_cache_dir: folder of the teacher cache (the teacher's top-k distributions, computed once and reused
            by every epoch, row and run; see :mod:`hfqd.distill.teacher_cache`); empty: the live teacher runs at
            every step.
        teacher_top_k / teacher_cache_batch_size: tokens kept per position, and the teacher's batch size while
            building the cache.
    """

    temperature: float = field(default=1.0, metadata={"help": "Softmax temperature T of the teacher term."})
    alpha: float = field(default=0.7, metadata={"help": "Weight of the teacher term; 1-alpha weighs the label loss."})
    distillation_mode: str = field(
        default="token",
        metadata={"help": "token | sequence | sequence+token | none.", "choices": list(DISTILLATION_MODES)},
    )
    bits: int | None = field(
        default=4, metadata={"help": "Bits per quantized weight (1-8); 32 or None trains in full precision."}
    )
    bucket_size: int | None = field(
        default=256, metadata={"help": "Values per quantization bucket; 0 or None = one bucket per tensor."}
    )
    rounding: str = field(default="nearest", metadata={"help": "nearest | stochastic."})
    quant_method: str = field(
        default="uniform",
        metadata={"help": "uniform (quantized distillation) | learned (differentiable quantization points)."},
    )
    points_init: str = field(default="quantiles", metadata={"help": "Learned points init: quantiles | uniform."})
    points_learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of the learned points."})
    points_optimizer: str = field(
        default="adamw", metadata={"help": "Optimizer of learned points: adamw (own group) | sgd (as the paper).",
                                   "choices": ["adamw", "sgd"]},
    )
    train_weights: bool = field(
        default=True,
        metadata={"help": "Train the weights too (joint QD+DQ); false trains only the points (the paper's DQ)."},
    )
    allocate_bits: bool = field(
        default=False, metadata={"help": "Redistribute points across tensors by gradient norm before training."}
    )
    allocation_batches: int = field(default=5, metadata={"help": "Batches used to estimate gradient norms."})
    quant_include: list[str] = field(default_factory=list, metadata={"help": "Glob patterns of modules to quantize."})
    quant_exclude: list[str] = field(
        default_factory=list, metadata={"help": "Glob patterns of modules kept in full precision."}
    )
    keep_first_last: bool = field(
        default=False, metadata={"help": "Keep the first and last quantizable layers in full precision."}
    )
    module_bits: list[str] = field(
        default_factory=list,
        metadata={"help": "PATTERN=BITS: modules matching the glob get another width than --bits, e.g. "
                          "model.shared=3 (a Marian student's tied embedding and output layer)."},
    )
    requantize: bool = field(
        default=False,
        metadata={"help": "Quantize a packed hfqd student with these settings instead of the ones it was saved with."},
    )
    save_shadows: bool = field(
        default=False,
        metadata={"help": "Save full-precision shadow weights beside the packed ones (for later fine-tuning)."},
    )
    teacher_dtype: str = field(
        default="float32", metadata={"help": "Teacher dtype.", "choices": list(TEACHER_DTYPES)}
    )
    sequence_num_beams: int = field(default=4, metadata={"help": "Beams for sequence-level teacher targets."})
    sequence_max_length: int = field(default=128, metadata={"help": "Max new tokens of teacher targets."})
    sequence_batch_size: int = field(default=64, metadata={"help": "Batch size of teacher decoding."})
    sequence_engine: str = field(
        default="transformers",
        metadata={"help": "Engine of the teacher's beam search for sequence-level targets: transformers | "
                          "ctranslate2 (float32 export, faster on CPU).", "choices": list(SEQUENCE_ENGINES)},
    )
    sequence_cache_dir: str | None = field(default=None, metadata={"help": "Cache folder of teacher targets."})
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of the teacher cache (top-k teacher distributions computed once and reused); "
                          "empty: run the teacher at every step."},
    )
    teacher_top_k: int = field(default=16, metadata={"help": "Teacher tokens kept per position in the cache."})
    teacher_cache_batch_size: int = field(default=64, metadata={"help": "Teacher batch size building the cache."})

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1], got {self.alpha}.")
        if self.temperature <= 0:
            raise ValueError(f"`temperature` must be > 0, got {self.temperature}.")
        if self.distillation_mode not in DISTILLATION_MODES:
            raise ValueError(f"`distillation_mode` must be one of {DISTILLATION_MODES}, got {self.distillation_mode!r}.")
        if self.sequence_engine not in SEQUENCE_ENGINES:
            raise ValueError(f"`sequence_engine` must be one of {SEQUENCE_ENGINES}, got {self.sequence_engine!r}.")
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise ValueError(f"`teacher_dtype` must be one of {list(TEACHER_DTYPES)}, got {self.teacher_dtype!r}.")
        if self.bits == FULL_PRECISION_BITS:
            self.bits = None
        if self.bucket_size == 0:
            self.bucket_size = None
        if self.allocate_bits and self.quant_method != "learned":
            raise ValueError("`allocate_bits` redistributes learned points: set quant_method='learned'.")
        if not self.train_weights and self.quant_method != "learned":
            raise ValueError("`train_weights=False` trains only learned points: set quant_method='learned'.")
        if self.points_optimizer not in ("adamw", "sgd"):
            raise ValueError(f"`points_optimizer` must be 'adamw' or 'sgd', got {self.points_optimizer!r}.")
        if self.teacher_top_k < 1:
            raise ValueError(f"`teacher_top_k` must be at least 1, got {self.teacher_top_k}.")
        self.quant_config()  # validates bits, bucket size and rounding now, not after the data is prepared

    @property
    def uses_teacher(self) -> bool:
        """Whether the loss needs teacher logits at every step (or their cache)."""
        return self.distillation_mode in ("token", "sequence+token") and self.alpha > 0

    @property
    def uses_teacher_targets(self) -> bool:
        """Whether the labels are replaced by the teacher's translations."""
        return self.distillation_mode in ("sequence", "sequence+token")

    def quant_config(self) -> QuantConfig | None:
        """The :class:`QuantConfig` these arguments describe, or `None` for full precision."""
        if self.bits is None:
            return None
        return QuantConfig(
            bits=self.bits,
            bucket_size=self.bucket_size,
            rounding=self.rounding,
            seed=self.seed,
            include=tuple(self.quant_include),
            exclude=tuple(self.quant_exclude),
            keep_first_last=self.keep_first_last,
            method=self.quant_method,
            points_init=self.points_init,
            module_bits=tuple(self.module_bits),
        )
