"""Continuing an interrupted job (`--resume`): saved rows are loaded, the row that was training goes on.

A real job trains its rows one after another, each for hours (kd, then qd4 from the same data); without this a
crash in the last row would train every row again. A saved row is trusted only through its record
(`hfqd_row.json`, written after its model files) and only when the record's training settings, training data and
teacher are the job's: a folder left by a different job is refused, never silently reused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import transformers
from torch import nn
from transformers import AutoConfig, Seq2SeqTrainingArguments

from ..distill import DistillationArguments
from ..distill.fingerprint import data_fingerprint, teacher_fingerprint
from ..hub.attach import prepare_packed_student
from ..utils import atomic_write_text

logger = logging.getLogger(__name__)

ROW_RECORD = "hfqd_row.json"

# transformers' settings that change what a row learns; all of hfqd's own are compared, except those that only say
# where or in what batches the teacher's work is computed and kept.
_TRAINING_FIELDS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "seed", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2",
    "adam_epsilon", "max_grad_norm", "optim", "label_smoothing_factor",
)
_NOT_COMPARED = {"teacher_cache_dir", "teacher_cache_batch_size", "sequence_cache_dir", "sequence_batch_size",
                 "save_shadows"}


def job_inputs(train_dataset, teacher: nn.Module | None = None) -> dict[str, str | None]:
    """Fingerprints of what every row of a job learns from: its training data (as tokenized) and its teacher."""
    return {"training data": data_fingerprint(train_dataset),
            "teacher": teacher_fingerprint(teacher) if teacher is not None else None}


def row_settings(args: DistillationArguments, inputs: dict[str, str | None]) -> dict[str, Any]:
    """The training settings and inputs (:func:`job_inputs`) a saved row must share with the job that resumes it."""
    inherited = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    own = [f.name for f in dataclasses.fields(DistillationArguments) if f.name not in inherited]
    names = [*_TRAINING_FIELDS, *(name for name in own if name not in _NOT_COMPARED)]
    values = args.to_dict()  # enums as their values, as the Trainer logs them
    return json.loads(json.dumps({**{name: values[name] for name in names}, **inputs}, default=str))


def write_row_record(folder: str, name: str, train_seconds: float | None, args: DistillationArguments,
                     inputs: dict[str, str | None]) -> None:
    """Mark ``folder`` as the finished, saved row ``name`` (called after its model files are in place)."""
    record = {"row": name, "train_seconds": train_seconds, "settings": row_settings(args, inputs)}
    atomic_write_text(os.path.join(folder, ROW_RECORD), json.dumps(record, indent=2) + "\n")


def load_saved_row(folder: str, name: str, args: DistillationArguments, inputs: dict[str, str | None]
                   ) -> tuple[nn.Module, float | None] | None:
    """The saved model of row ``name`` and its training seconds, or `None` when the row did not finish.

    Raises:
        ValueError: the folder holds row ``name`` trained with other settings, data or teacher (another job's).
    """
    path = os.path.join(folder, ROW_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    want = row_settings(args, inputs)
    changed = sorted(key for key in set(want) | set(record["settings"]) if record["settings"].get(key) != want.get(key))
    if record.get("row") != name or changed:
        what = f"was saved as row {record.get('row')!r}" if record.get("row") != name else (
            "was trained with other settings or inputs: " + ", ".join(
                f"{key} {record['settings'].get(key)!r} (now {want.get(key)!r})" for key in changed[:5]))
        raise ValueError(
            f"--resume: {folder} {what}. Resume with the command that started the job, or give a new --output_dir."
        )
    config = AutoConfig.from_pretrained(folder)
    model = getattr(transformers, config.architectures[0]).from_pretrained(folder)
    prepare_packed_student(model)  # a packed row becomes the quantized model it was, outputs unchanged
    logger.info(f"--resume: row {name} loaded from {folder}, not trained again.")
    return model, record.get("train_seconds")
