"""One job, the same for every recipe: the teacher (given, or trained here on labels), its row, the method rows,
then the results files, model cards, CTranslate2 exports and the push.

A recipe supplies only what is specific to its task (a :class:`Task`: data, model builders, scoring, what the
card says) and calls :func:`run_job`; the benchmark and `scripts/train_teacher.py` use the same pieces
(:func:`labels_only`, :func:`train_teacher`, :func:`teacher_row`), so each step is written once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..distill import DistillationArguments
from ..eval.report import ResultRow, write_results
from ..export import export_ctranslate2
from ..hub.card import write_row_cards
from ..hub.push import PushError, push_folder
from ..quant import model_size
from .methods import MethodSpec, order_methods, run_methods, save_model_files, train_model
from .resume import job_inputs, load_saved_row, write_row_record

logger = logging.getLogger(__name__)


@dataclass
class JobArguments:
    """What every recipe's job takes from the command line besides the training arguments."""

    method: str | None = field(
        default=None,
        metadata={"help": "Shortcut for the main job: qd | dq | qd+dq at --bits, compared with kd and PM rows "
                          "(sets --methods and --push_method).", "choices": ["qd", "dq", "qd+dq"]},
    )
    methods: list[str] | None = field(
        default=None,
        metadata={"help": "Rows to train and score: student, kd, seqkd, pm<b>, qat<b>, qd<b>, dq<b>, qddq<b>, "
                          "initial, finetune (see hfqd.runner.methods)."},
    )
    dq_teacher: str = field(
        default="self",
        metadata={"help": "Teacher of dq<b> rows: self (the full-precision kd student, as the paper) or teacher.",
                  "choices": ["self", "teacher"]},
    )
    save_models: bool = field(
        default=True, metadata={"help": "Save the teacher and every student (packed when quantized) under output_dir."}
    )
    teacher_epochs: float = field(default=10.0, metadata={"help": "Epochs of a teacher trained here."})
    teacher_learning_rate: float = field(default=2e-3, metadata={"help": "Learning rate of a teacher trained here."})
    push_method: str | None = field(
        default=None, metadata={"help": "Row pushed with --push_to_hub (default: the first qd<b> row)."}
    )
    hub_dry_run: bool = field(
        default=False, metadata={"help": "With --push_to_hub: list what would be uploaded where, send nothing."}
    )
    resume: bool = field(
        default=False,
        metadata={"help": "Continue an interrupted job in the same --output_dir with the same command: rows already "
                          "saved are loaded instead of trained again, and the row that was training continues from "
                          "its last complete checkpoint (save_strategy steps or epoch)."},
    )


@dataclass
class Task:
    """What is specific to a recipe's task; :func:`run_job` does the rest."""

    name: str  # the model card's pipeline tag: translation, image-classification
    train_dataset: Any
    make_student: Callable[[], nn.Module]
    evaluate: Callable[[nn.Module], dict[str, float]]
    metric_names: list[str]
    processor: Any = None  # tokenizer or image processor, saved beside every model
    base_model: str = ""  # the teacher (or fine-tuned model) the cards credit
    datasets: list[str] = field(default_factory=list)
    note: str = ""  # the line above the card's results table
    language: list[str] | None = None
    parent_model: str | None = None  # a packed student being fine-tuned
    export_ctranslate2: str | None = None  # weight type of a CTranslate2 export of every saved row
    data_collator: Any = None


def labels_only(args: DistillationArguments, output_dir: str, **overrides) -> DistillationArguments:
    """Arguments for training a full-precision model on the labels alone (a teacher, a warm start): no teacher, no
    quantization, no cache, nothing pushed."""
    return dataclasses.replace(args, output_dir=output_dir, bits=None, alpha=0.0, distillation_mode="none",
                               teacher_cache_dir="", push_to_hub=False, **overrides)


def teacher_training_args(args: DistillationArguments, epochs: float, learning_rate: float) -> DistillationArguments:
    """How a teacher is trained here: on the labels, in `{output_dir}/teacher-run`."""
    return labels_only(args, os.path.join(args.output_dir, "teacher-run"), num_train_epochs=epochs, max_steps=-1,
                       learning_rate=learning_rate)


def train_teacher(teacher: nn.Module, task: Task, args: DistillationArguments, job: JobArguments
                  ) -> tuple[nn.Module, float]:
    """Train a teacher here (the offline demos) for `job.teacher_epochs`; returns it in eval mode and the seconds it
    took. With `job.resume`, the teacher an earlier run of the same job saved is loaded instead."""
    teacher_args = teacher_training_args(args, job.teacher_epochs, job.teacher_learning_rate)
    folder = os.path.join(args.output_dir, "teacher")
    saved = load_saved_row(folder, "teacher", teacher_args, job_inputs(task.train_dataset)) if job.resume else None
    if saved is None:
        saved = train_model(teacher, None, task.processor, task.train_dataset, teacher_args,
                            data_collator=task.data_collator, resume=job.resume)
    return saved[0].eval(), saved[1]


def teacher_row(teacher: nn.Module, metrics: dict[str, float], train_seconds: float | None = None,
                file_mb: float | None = None) -> ResultRow:
    """The teacher's line in a results table (the reference every ratio is taken against)."""
    size = model_size(teacher)
    return ResultRow(method="teacher", description="teacher, full precision", bits=None, params=size.params,
                     size_mb=size.megabytes, compression=1.0, metrics=metrics, train_seconds=train_seconds,
                     file_mb=file_mb, fp32_mb=size.fp32_bits / 8 / 1e6)


def plan_methods(job: JobArguments, args: DistillationArguments, has_teacher: bool) -> list[MethodSpec]:
    """The rows to run, checked before any work (bad names, a missing teacher, no repository to push to)."""
    if job.method is not None:
        if args.bits is None:
            raise SystemExit("--method needs a bit width: set --bits 1-8.")
        row = {"qd": "qd", "dq": "dq", "qd+dq": "qddq"}[job.method] + str(args.bits)
        job.methods, job.push_method = ["kd", f"pm{args.bits}", row], job.push_method or row
    elif not job.methods:
        job.methods = ["kd"] if args.bits is None else ["kd", f"pm{args.bits}", f"qd{args.bits}"]
    specs = order_methods(job.methods, args.alpha, has_teacher)
    if args.push_to_hub and not args.hub_model_id:
        raise SystemExit("--push_to_hub needs --hub_model_id NAME (e.g. me/opus-mt-en-de-4bit).")
    return specs


def run_job(task: Task, teacher: nn.Module | None, specs: list[MethodSpec], job: JobArguments,
            args: DistillationArguments, header: dict[str, Any], teacher_seconds: float | None = None
            ) -> list[ResultRow]:
    """Score (and save) the teacher, train and score every row, then write results, cards, exports and the push
    (the main process only). ``header`` is the results file's provenance (:func:`hfqd.utils.run_header`)."""
    rows = []
    if teacher is not None and args.should_save:
        folder, file_mb = os.path.join(args.output_dir, "teacher"), None
        if job.save_models:
            file_mb = save_model_files(teacher, folder, task.processor)
            if teacher_seconds is not None:  # trained here: a resumed job loads it instead of training it again
                write_row_record(folder, "teacher", teacher_seconds,
                                 teacher_training_args(args, job.teacher_epochs, job.teacher_learning_rate),
                                 job_inputs(task.train_dataset))
        rows.append(teacher_row(teacher, task.evaluate(teacher), teacher_seconds, file_mb))
    # Compression is measured against the teacher in fp32 (without a teacher, the student's own fp32 size).
    reference = teacher if teacher is not None else task.make_student()
    rows += run_methods(
        specs, task.make_student, teacher, task.processor, task.train_dataset, args, task.evaluate,
        model_size(reference).fp32_bits, is_main_process=args.should_save, display_order=job.methods,
        save_dir=args.output_dir if job.save_models else None, data_collator=task.data_collator,
        dq_teacher=job.dq_teacher, resume=job.resume,
    )
    if args.should_save:
        print("\n" + write_results(os.path.join(args.output_dir, "results"), rows, task.metric_names, header))
        if job.save_models:
            publish(rows, task, job, args, header["command"])
    return rows


def publish(rows: list[ResultRow], task: Task, job: JobArguments, args: DistillationArguments, command: str) -> None:
    """CTranslate2 exports (if asked), a model card beside every saved quantized row, and the push (if asked)."""
    if task.export_ctranslate2:
        for row in rows:
            folder = os.path.join(args.output_dir, row.method)
            if os.path.isfile(os.path.join(folder, "model.safetensors")):
                out = export_ctranslate2(folder, os.path.join(folder, f"ctranslate2-{task.export_ctranslate2}"),
                                         task.export_ctranslate2, force=True)
                logger.info(f"{row.method}: exported to {out}")
    write_row_cards(rows, args.output_dir, base_model=task.base_model, datasets=task.datasets, command=command,
                    task=task.name, metric_names=task.metric_names, note=task.note, language=task.language,
                    parent_model=task.parent_model, hub_model_id=args.hub_model_id)
    if args.push_to_hub:
        push_row(rows, job, args)


def push_row(rows: list[ResultRow], job: JobArguments, args: DistillationArguments) -> None:
    """Push the chosen row's saved folder (packed weights, tokenizer, card) to `--hub_model_id`."""
    names = [r.method for r in rows]
    method = job.push_method or next((name for name in names if name.startswith("qd")), None)
    if method is None or method not in names:
        raise SystemExit(f"Nothing to push: --push_method {method!r} is not one of the rows {names}.")
    try:
        url = push_folder(os.path.join(args.output_dir, method), args.hub_model_id,
                          private=args.hub_private_repo, token=args.hub_token, revision=args.hub_revision,
                          dry_run=job.hub_dry_run)
    except PushError as err:
        raise SystemExit(str(err)) from err
    print(url if job.hub_dry_run else f"Pushed {method} to {url}")
