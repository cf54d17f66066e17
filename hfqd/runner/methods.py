"""Methods compared by the recipes, and the loop that trains and scores each one on the same data.

Method names (a recipe's `--methods`):
    student    full-precision student trained on the labels only
    kd         full-precision student, token-level distillation
    seqkd      full-precision student trained on the teacher's beam-search translations
    pm{b}      post-training ("post-mortem") quantization of the `kd` student to b bits, no training
    qat{b}     quantization-aware training on labels only (no teacher), b bits
    qd{b}      quantized distillation, b bits
    dq{b}      differentiable quantization of the `kd` student: learned points only, bits allocated by gradient
               norm, the full-precision `kd` student as teacher (the paper's setting)
    qddq{b}    quantized distillation with learned points: weights and points trained together
    initial    the given student as it is (e.g. a packed model before fine-tuning), no training
    finetune   the given student trained further; a packed student keeps its quantization settings
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from typing import Callable

from torch import nn
from transformers import DataCollatorForSeq2Seq, default_data_collator

from ..distill import DistillationArguments, QuantizedDistillationTrainer
from ..distill.checkpoint import TrainingClock, last_complete_checkpoint
from ..eval.report import ResultRow
from ..hub import save_packed
from ..hub.attach import prepare_packed_student
from ..quant import QuantConfig, huffman_size, is_quantized, model_size, quantize_
from .resume import job_inputs, load_saved_row, write_row_record

logger = logging.getLogger(__name__)


_METHOD = re.compile(
    r"^(student|kd|seqkd|initial|finetune|pm(?P<pm>\d)|qat(?P<qat>\d)|qd(?P<qd>\d)|dq(?P<dq>\d)|qddq(?P<qddq>\d))$"
)


@dataclass(frozen=True)
class MethodSpec:
    """How to obtain one row's model."""

    name: str
    description: str
    bits: int | None
    alpha: float
    mode: str  # distillation_mode of the training run
    post_training: bool = False  # quantize the trained `kd` model, no training
    evaluate_only: bool = False  # score the student as given
    from_kd: bool = False  # start from a copy of the trained `kd` student
    quant_method: str = "uniform"
    train_weights: bool = True


def parse_method(name: str, alpha: float, has_teacher: bool = True) -> MethodSpec:
    """Turn a method name (see the module docstring) into a :class:`MethodSpec`."""
    match = _METHOD.match(name)
    if match is None:
        raise ValueError(
            f"Unknown method {name!r}; use student, kd, seqkd, pm<bits>, qat<bits>, qd<bits> (e.g. qd4), dq<bits>, "
            "qddq<bits>, initial or finetune."
        )
    if name == "initial":
        return MethodSpec(name, "given student, before training", None, 0.0, "none", evaluate_only=True)
    if name == "finetune":
        if has_teacher:
            return MethodSpec(name, "given student, fine-tuned with the teacher", None, alpha, "token")
        return MethodSpec(name, "given student, fine-tuned on labels", None, 0.0, "none")
    if not has_teacher and name != "student" and not name.startswith("qat"):
        raise ValueError(f"Method {name!r} needs a teacher; without one use student, qat<bits>, initial or finetune.")
    if name == "student":
        return MethodSpec(name, "full-precision student, labels only", None, 0.0, "none")
    if name == "kd":
        return MethodSpec(name, "full-precision student, distilled (token)", None, alpha, "token")
    if name == "seqkd":
        return MethodSpec(name, "full-precision student, distilled (sequence)", None, 0.0, "sequence")
    bits = int(match["pm"] or match["qat"] or match["qd"] or match["dq"] or match["qddq"])
    if not 1 <= bits <= 8:
        raise ValueError(f"Method {name!r}: bits must be from 1 to 8.")
    if match["dq"]:
        return MethodSpec(name, f"differentiable quantization of kd, {bits}-bit point budget", bits, alpha, "token",
                          from_kd=True, quant_method="learned", train_weights=False)
    if match["qddq"]:
        return MethodSpec(name, f"quantized distillation with learned points, {bits}-bit", bits, alpha, "token",
                          quant_method="learned")
    if match["pm"]:
        return MethodSpec(name, f"post-training quantization of kd, {bits}-bit", bits, alpha, "token", True)
    if match["qat"]:
        return MethodSpec(name, f"quantization-aware training, no teacher, {bits}-bit", bits, 0.0, "none")
    return MethodSpec(name, f"quantized distillation, {bits}-bit", bits, alpha, "token")


def order_methods(names: list[str], alpha: float, has_teacher: bool = True) -> list[MethodSpec]:
    """Parse and order methods so that `kd` is trained before the post-training rows that start from it."""
    specs = [parse_method(n, alpha, has_teacher) for n in names]
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"Duplicate methods in {names}.")
    if any(s.post_training or s.from_kd for s in specs) and not any(s.name == "kd" for s in specs):
        specs.insert(0, parse_method("kd", alpha))
    return sorted(specs, key=lambda s: (s.post_training or s.from_kd, s.name != "kd"))


def train_model(
    model: nn.Module,
    teacher: nn.Module | None,
    tokenizer,
    train_dataset,
    args: DistillationArguments,
    eval_dataset=None,
    data_collator=None,
    trainer_class: type[QuantizedDistillationTrainer] = QuantizedDistillationTrainer,
    resume: bool = False,
) -> tuple[nn.Module, float]:
    """Train ``model`` with :class:`QuantizedDistillationTrainer` (or a subclass); returns the model and the
    wall-clock seconds.

    ``tokenizer`` is the processing class (a tokenizer, or an image processor for classifiers); the collator
    defaults to `DataCollatorForSeq2Seq` for encoder-decoder models and the default collator otherwise. With
    ``resume``, training continues from the last complete checkpoint in `args.output_dir`, if there is one, and
    the seconds include those spent before it.
    """
    if data_collator is None:
        if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
            data_collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
        else:
            data_collator = default_data_collator
    latest = last_complete_checkpoint(args.output_dir)
    checkpoint = latest if resume else None
    if latest is not None and not resume:
        logger.warning(f"{args.output_dir} holds checkpoints of an earlier run; --resume would continue from them.")
    clock = TrainingClock(checkpoint)
    trainer = trainer_class(
        model=model,
        teacher_model=teacher if (args.uses_teacher or args.uses_teacher_targets) else None,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    if checkpoint is not None:
        logger.info(f"--resume: {os.path.basename(args.output_dir)} continues from {checkpoint}.")
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer.model, clock.seconds() + clock.setup_seconds


def save_model_files(model: nn.Module, output_dir: str, processor=None, save_shadows: bool = False) -> float:
    """Save ``model`` (packed when quantized, with its shadows if asked) with its tokenizer or image processor;
    returns the weights file size in MB."""
    if is_quantized(model):
        save_packed(model, output_dir, tokenizer=processor, save_shadows=save_shadows)
    else:
        model.save_pretrained(output_dir)
        if processor is not None:
            processor.save_pretrained(output_dir)
    return os.path.getsize(os.path.join(output_dir, "model.safetensors")) / 1e6


def _row_args(spec: MethodSpec, base_args: DistillationArguments) -> DistillationArguments:
    """The training arguments of a trained row, in its own folder under `output_dir`."""
    return dataclasses.replace(
        base_args,
        output_dir=os.path.join(base_args.output_dir, spec.name),
        bits=spec.bits,
        alpha=spec.alpha,
        distillation_mode=spec.mode,
        quant_method=spec.quant_method,
        train_weights=spec.train_weights,
        allocate_bits=spec.from_kd,
        push_to_hub=False,  # the recipe pushes the chosen packed model itself, once, at the end
    )


def _row_model(spec: MethodSpec, make_student, teacher, tokenizer, train_dataset, base_args: DistillationArguments,
               trained: dict[str, nn.Module], data_collator, dq_teacher: str, resume: bool = False,
               save_dir: str | None = None, inputs: dict | None = None) -> tuple[nn.Module, float | None]:
    """One row's model and its training seconds (`None` when it was not trained); trained models are kept in
    ``trained`` for the rows that start from them. With ``resume``, a row saved in ``save_dir`` by the same job is
    loaded instead of trained, and a row interrupted in training continues from its last complete checkpoint."""
    if spec.evaluate_only:
        model = make_student()
        prepare_packed_student(model)  # a packed student is counted at its stored bit widths
        return model, None
    if spec.post_training:
        # The same selection and rounding as the trained rows, so PM and QD differ only in training.
        model = copy.deepcopy(trained["kd"])
        quantize_(model, dataclasses.replace(base_args.quant_config() or QuantConfig(bits=spec.bits),
                                             bits=spec.bits, method="uniform"))
        return model, None
    args = _row_args(spec, base_args)
    saved = load_saved_row(os.path.join(save_dir, spec.name), spec.name, args, inputs) if resume and save_dir \
        else None
    if saved is not None:
        trained[spec.name] = saved[0]
        return saved
    if spec.from_kd:
        # The paper's DQ: learn the points of the trained full-precision student, with that student as its own
        # teacher.
        start = copy.deepcopy(trained["kd"])
        row_teacher = copy.deepcopy(trained["kd"]) if dq_teacher == "self" else teacher
    else:
        start, row_teacher = make_student(), teacher
    model, seconds = train_model(start, row_teacher, tokenizer, train_dataset, args, data_collator=data_collator,
                                 resume=resume)
    trained[spec.name] = model
    return model, seconds


def run_methods(
    specs: list[MethodSpec],
    make_student: Callable[[], nn.Module],
    teacher: nn.Module,
    tokenizer,
    train_dataset,
    base_args: DistillationArguments,
    evaluate: Callable[[nn.Module], dict[str, float]],
    teacher_fp32_bits: int,
    is_main_process: bool = True,
    display_order: list[str] | None = None,
    save_dir: str | None = None,
    data_collator=None,
    dq_teacher: str = "self",
    resume: bool = False,
) -> list[ResultRow]:
    """Train and evaluate every method; returns one :class:`ResultRow` per method (main process only).

    With ``save_dir``, each model is saved to ``{save_dir}/{method}`` (packed when quantized) and its file size
    reported. ``dq_teacher`` is the teacher of `dq` rows: `"self"` (the full-precision `kd` student, as in the
    paper's code) or `"teacher"`. ``resume`` continues an interrupted run (:mod:`hfqd.runner.resume`).
    """
    if dq_teacher not in ("self", "teacher"):
        raise ValueError(f"`dq_teacher` must be 'self' or 'teacher', got {dq_teacher!r}.")
    rows: list[ResultRow] = []
    trained: dict[str, nn.Module] = {}
    inputs = job_inputs(train_dataset, teacher) if save_dir else None  # what a saved row's record must match
    for index, spec in enumerate(specs, start=1):
        logger.info(f"=== row {index} of {len(specs)}: {spec.name} ({spec.description}) ===")
        model, seconds = _row_model(spec, make_student, teacher, tokenizer, train_dataset, base_args, trained,
                                    data_collator, dq_teacher, resume, save_dir, inputs)
        if is_main_process:
            size = model_size(model)
            huffman = huffman_size(model).megabytes if is_quantized(model) else None
            metrics = evaluate(model)
            file_mb = None
            if save_dir:
                folder = os.path.join(save_dir, spec.name)
                file_mb = save_model_files(model, folder, tokenizer,
                                           save_shadows=base_args.save_shadows and not spec.post_training)
                if not (spec.post_training or spec.evaluate_only):
                    write_row_record(folder, spec.name, seconds, _row_args(spec, base_args), inputs)
            rows.append(
                ResultRow(
                    method=spec.name,
                    description=spec.description,
                    bits=size.code_bits_per_weight,  # learned rows: the mean after bit allocation
                    params=size.params,
                    size_mb=size.megabytes,
                    compression=teacher_fp32_bits / size.bits,
                    metrics=metrics,
                    train_seconds=seconds,
                    file_mb=file_mb,
                    huffman_mb=huffman,
                    fp32_mb=size.fp32_bits / 8 / 1e6,
                )
            )
            scores = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if isinstance(v, float))
            took = "" if seconds is None else f", trained in {seconds:.0f} s"
            print(f"[{index}/{len(specs)}] {spec.name}: {scores}; {size.megabytes:.3f} MB{took}", flush=True)
    # Report in the order the methods were given; a `kd` row only implied by a `pm` row comes first.
    rank = {name: i for i, name in enumerate(display_order or [s.name for s in specs])}
    return sorted(rows, key=lambda r: rank.get(r.method, -1))
