"""The BLEU / size / speed frontier: students of several shapes, each trained to convergence, scored as deployed.

Used by `scripts/benchmark_translation.py --budget cpu` (and `full_frontier` on a GPU). Every row is a unit of work
with its own results file: a rerun skips rows whose file exists, so the budget can run in parts and each part's
results can be committed as it lands. Models a later row starts from (each shape's `kd` student) are kept under the
run's output folder and retrained if a fresh machine lacks them. A full-precision row whose time budget ended it
before early stopping did (a GPU lease) trains on in a later run, on any machine, from its saved weights
(`--continue_rows`): its learning-rate schedule continues where it stopped, until early stopping ends it.

Rows per shape: `kd` (full precision, token-level distillation from the cached teacher, early stopping on
validation BLEU), `qd4` / `qd2` (quantized distillation, starting from that `kd`), `pm4` / `pm2` (post-training
quantization of that `kd`); for one shape also `qat2` (no teacher), `dq2` / `dq2-sgd` (learned points, AdamW or the
paper's SGD), `kdseq` (`kd` on the teacher's beam-search translations, with its distributions under them) and
`qd<b>-scratch` / `qat<b>-scratch` (quantized training from the shape's start with kd's budget, against the rows
that start from kd, which already hold what the teacher taught). Every
row is scored on the test sets with transformers (beam 4) and after an int8 CTranslate2 export, and timed against
the teacher with both engines interleaved (:mod:`hfqd.bench.frontier_scoring`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, TrainerState
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import get_last_checkpoint

from ..data import load_parallel_dir, tokenize_translation
from ..distill import DistillationArguments, make_student_from_config, make_student_from_teacher
from ..distill.checkpoint import last_complete_checkpoint
from ..eval.translation import make_compute_metrics
from ..hub import prepare_packed_student, push_folder, save_packed
from ..quant import QuantConfig, is_quantized, quantize_
from ..utils import atomic_directory, atomic_write_text, git_commit, machine_description
from .curves import ROW_CURVE_KEY, validation_points
from .frontier_scoring import RowScorer
from .time_budget import (
    Deadline,
    ResumablePatience,
    StartingBest,
    TrainingClock,
    continued_inverse_sqrt,
    evaluations_since_best,
    torch_threads,
)

logger = logging.getLogger(__name__)

_SHAPE = re.compile(r"^d(?P<d>\d+)-(?P<enc>\d+)\+(?P<dec>\d+)(?P<copy>-copy)?$")


@dataclass(frozen=True)
class Shape:
    """A student shape: `d256-3+1` (fresh, from a config) or `d256-3+1-copy` (teacher layers copied)."""

    name: str
    d_model: int
    encoder_layers: int
    decoder_layers: int
    copy: bool

    @classmethod
    def parse(cls, name: str) -> "Shape":
        match = _SHAPE.match(name)
        if match is None:
            raise ValueError(f"Shape {name!r} is not of the form d<width>-<enc>+<dec>[-copy], e.g. d192-3+1.")
        return cls(name, int(match["d"]), int(match["enc"]), int(match["dec"]), bool(match["copy"]))

    def build(self, teacher):
        if self.copy:
            if self.d_model != teacher.config.d_model:
                raise ValueError(f"{self.name}: a copied student has the teacher's width {teacher.config.d_model}.")
            return make_student_from_teacher(teacher, self.encoder_layers, self.decoder_layers)
        heads = max(1, self.d_model // 64)
        return make_student_from_config(
            teacher, seed=0, d_model=self.d_model, encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers, encoder_ffn_dim=4 * self.d_model, decoder_ffn_dim=4 * self.d_model,
            encoder_attention_heads=heads, decoder_attention_heads=heads,
        )


@dataclass
class FrontierArguments:
    shapes: list[str] = field(default_factory=lambda: ["d256-3+1-copy", "d192-3+1", "d128-2+1"],
                              metadata={"help": "Student shapes (d<width>-<enc>+<dec>[-copy])."})
    rows: list[str] = field(default_factory=lambda: ["kd", "qd4", "qd2", "pm4", "pm2"],
                            metadata={"help": "Rows of every shape."})
    extra_rows: list[str] = field(default_factory=lambda: ["qat2", "dq2"],
                                  metadata={"help": "Rows of --extra_rows_shape only."})
    extra_rows_shape: str = field(default="d256-3+1-copy", metadata={"help": "Shape that gets --extra_rows."})
    validation_split: str = field(default="val", metadata={"help": "Model selection split (never a test split)."})
    validation_sentences: int = field(default=500, metadata={"help": "Validation sentences scored per epoch."})
    kd_epochs: float = field(default=12, metadata={"help": "Most epochs of a kd row (early stopping ends sooner)."})
    quant_epochs: float = field(default=4, metadata={"help": "Most epochs of a qd/qat/dq row."})
    patience: int = field(default=2, metadata={"help": "Validations without a better BLEU before stopping."})
    fresh_learning_rate: float = field(default=2e-3, metadata={"help": "Learning rate of fresh kd students."})
    copy_learning_rate: float = field(default=5e-4, metadata={"help": "Learning rate of layer-copied kd students."})
    quant_learning_rate: float = field(default=5e-4, metadata={"help": "Learning rate of rows starting from kd."})
    points_sgd_learning_rate: float = field(default=1e-5, metadata={"help": "Learning rate of the points in "
                                                                          "dq<b>-sgd rows (plain SGD)."})
    timed_sentences: int = field(default=256, metadata={"help": "Test sentences timed at batch 32."})
    speed_repeats: int = field(default=3, metadata={"help": "Interleaved timing rounds (median kept)."})
    threads: int = field(default=1, metadata={"help": "Threads of both engines when scoring and timing."})
    results_dir: str = field(default="", metadata={"help": "Per-row results (default benchmarks/results/"
                                                           "frontier_{budget})."})
    kd_minutes: float = field(default=0.0, metadata={"help": "End a kd row's training at the first validation after "
                                                             "this many minutes (0: no limit)."})
    quant_minutes: float = field(default=0.0, metadata={"help": "The same for rows trained from kd."})
    evaluations_per_epoch: int = field(default=1, metadata={"help": "Validation BLEU evaluations (each one a "
                                       "checkpoint) per epoch: on a slow machine, more of them let a time budget end "
                                       "a row well before the epoch does."})
    push_row: str = field(default="", metadata={"help": "After scoring, push this saved row (SHAPE/ROW, e.g. "
                          "d192-3+1/qd4: packed weights, model card, CTranslate2 export) to --hub_model_id."})
    hub_dry_run: bool = field(default=False, metadata={"help": "With --push_row: list the repository and every file "
                              "that would be uploaded, sending nothing."})
    train_only: bool = field(default=False, metadata={"help": "Train and save the trained rows without scoring "
                                                              "them (e.g. on a GPU machine); a later run without "
                                                              "this flag scores the saved models instead of "
                                                              "training them again."})
    continue_rows: list[str] = field(default_factory=list, metadata={"help": "Full-precision rows (kd, kdseq) "
                                     "whose saved model trains on in this run when its time budget, not early "
                                     "stopping, ended it (e.g. a GPU lease): same weights, the inverse_sqrt "
                                     "schedule continued from the saved model's step (keep the batch size), the "
                                     "epochs left, this run's minutes. A row whose results file exists is not "
                                     "continued."})

    def __post_init__(self):
        if self.patience < 1:
            raise ValueError(f"--patience {self.patience}: give the validations without a better BLEU before a row "
                             "stops, at least 1; to train every epoch, give more than the row has validations.")


ROW = re.compile(r"^(kd|kdseq|(qd|qat)(\d)(-scratch)?|pm(\d)|dq(\d)(-sgd)?)$")


def _bits(row: str) -> int:
    return int(re.search(r"\d", row).group(0))


def _starts_from_kd(row: str) -> bool:
    """Rows trained from their shape's kd student (quantization-aware fine-tuning), not from the shape's start."""
    return row not in ("kd", "kdseq") and not row.endswith("-scratch")


@dataclass
class Trained:
    """A trained row's model and how it was trained; saved beside the model so that a row trained on one machine
    (a GPU) is scored on another (the CPU whose speed the frontier reports)."""

    model: torch.nn.Module
    seconds: float | None
    best_validation_bleu: float | None
    epochs: float | None
    machine: str | None
    setup_seconds: float | None = None  # the teacher's work before training (cache, sequence-level targets)
    threads: int | None = None  # torch threads it trained with
    best_step: int | None = None  # optimizer step of the kept (best) model: where a continuation's schedule resumes
    stopped_by: str | None = None  # "early stopping", "time budget" or "epochs"
    continued_from: dict | None = None  # the record of the run this one continued (its own `continued_from` nested)
    validations: dict[float, float] = field(default_factory=dict)  # epoch -> validation BLEU: the curve, kept with
    # the row, since its run folder (the checkpoints) stays on the machine that trained it

    NAME = "hfqd_trained.json"
    NOT_TRAINED = {"train_seconds": None, "best_validation_bleu_greedy": None}

    def record(self) -> dict:
        return {"train_seconds": self.seconds, "setup_seconds": self.setup_seconds,
                "best_validation_bleu_greedy": self.best_validation_bleu, "train_epochs": self.epochs,
                "trained_on": self.machine, "train_threads": self.threads, "best_step": self.best_step,
                "stopped_by": self.stopped_by, "continued_from": self.continued_from,
                ROW_CURVE_KEY: {f"{epoch:g}": score for epoch, score in self.validations.items()}}

    def save(self, folder: str, tokenizer) -> None:
        """Weights (packed when quantized) and the record, written elsewhere and then put in place as one folder: a
        continued row replaces its earlier folder whole (its stale exports too), never half of it."""
        with atomic_directory(folder) as tmp:
            if is_quantized(self.model):
                save_packed(self.model, tmp, tokenizer=tokenizer)
            else:
                self.model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
            atomic_write_text(os.path.join(tmp, self.NAME), json.dumps(self.record(), indent=2))

    @classmethod
    def load(cls, folder: str, legacy: bool = False) -> "Trained | None":
        """The row saved in ``folder``, or `None`. ``legacy``: a kd folder saved before records existed (time
        unknown) counts too."""
        path = os.path.join(folder, cls.NAME)
        recorded = os.path.isfile(path)
        if not recorded and not (legacy and os.path.isfile(os.path.join(folder, "model.safetensors"))):
            return None
        record = json.loads(Path(path).read_text()) if recorded else {}
        model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
        prepare_packed_student(model)  # a packed row becomes the quantized model it was, outputs unchanged
        return cls(model, record.get("train_seconds"), record.get("best_validation_bleu_greedy"),
                   record.get("train_epochs"), record.get("trained_on"), record.get("setup_seconds"),
                   record.get("train_threads"), record.get("best_step"), record.get("stopped_by"),
                   record.get("continued_from"),
                   {float(epoch): score for epoch, score in (record.get(ROW_CURVE_KEY) or {}).items()})


class Frontier:
    """Runs and records the rows; see the module docstring."""

    def __init__(self, frontier: FrontierArguments, bench, args: DistillationArguments, root: str):
        self.f, self.bench, self.args, self.root = frontier, bench, args, root
        # CTranslate2 sets the process's OpenMP threads to its own count when it loads a model (1 for the timings):
        # training after a scored row must get the process's threads back, or it runs on one core.
        self.train_threads = torch.get_num_threads()
        self.results_dir = frontier.results_dir or os.path.join(root, "benchmarks", "results",
                                                                f"frontier_{bench.budget}")
        self.commit = git_commit(root)
        self.teacher = AutoModelForSeq2SeqLM.from_pretrained(bench.teacher).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(bench.teacher)
        splits = {"train": bench.train_split, "validation": frontier.validation_split,
                  **{s: s for s in bench.test_splits}}
        raw = load_parallel_dir(bench.dataset_dir, "en", "de", splits)
        limits = {"train": bench.max_train_samples, "validation": frontier.validation_sentences,
                  **{split: bench.max_eval_samples for split in bench.test_splits}}
        for split, limit in limits.items():
            if limit:
                raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
        self.data = tokenize_translation(raw, self.tokenizer, "en", "de", bench.max_length, bench.max_length)
        self.scorer = RowScorer(
            teacher=self.teacher, teacher_folder=bench.teacher,
            teacher_ct2=os.path.join(args.output_dir, "teacher", "ctranslate2-int8"),
            teacher_result=self.result_path("teacher", "teacher"), tokenizer=self.tokenizer, data=self.data,
            test_splits=bench.test_splits, dataset=bench.dataset_dir, beams=bench.eval_beams,
            max_length=bench.max_length, threads=frontier.threads, timed_sentences=frontier.timed_sentences,
            speed_repeats=frontier.speed_repeats, commit=self.commit,
        )
        self._continued: set[tuple[str, str]] = set()
        if set(frontier.continue_rows) - {"kd", "kdseq"}:
            raise ValueError(f"--continue_rows {frontier.continue_rows}: only full-precision rows (kd, kdseq) "
                             "continue; a saved quantized row keeps no full-precision shadow weights to train on.")
        if frontier.push_row:  # a bad push request fails before hours of training, not after
            if frontier.push_row.count("/") != 1 or not args.hub_model_id or frontier.train_only:
                raise ValueError(f"--push_row {frontier.push_row!r}: give SHAPE/ROW (e.g. d192-3+1/qd4) with "
                                 "--hub_model_id, in a run that scores (not --train_only).")

    # ---- running rows ----

    def plan(self) -> list[tuple[str, str]]:
        """(shape, row) pairs in an order where each row's starting point comes first."""
        work = [("teacher", "teacher")]
        for name in self.f.shapes:
            Shape.parse(name)
            rows = self.f.rows + (self.f.extra_rows if name == self.f.extra_rows_shape else [])
            for row in rows:
                if ROW.match(row) is None:
                    raise ValueError(f"Unknown frontier row {row!r}: kd, kdseq, qd<b>, qd<b>-scratch, pm<b>, "
                                     "qat<b>, qat<b>-scratch, dq<b>, dq<b>-sgd.")
            # kd first (the others start from it), then the post-training rows (minutes each), then the trained ones.
            order = sorted(dict.fromkeys(rows), key=lambda r: (r != "kd", not r.startswith("pm")))
            work += [(name, row) for row in order]
        return work

    def result_path(self, shape: str, row: str) -> str:
        return os.path.join(self.results_dir, "rows", f"{shape}__{row}.json")

    def run(self) -> None:
        for shape, row in self.plan():
            path = self.result_path(shape, row)
            if os.path.isfile(path):
                logger.info(f"{shape} {row}: results exist ({path}), skipped.")
                continue
            if self.f.train_only and (row == "teacher" or row.startswith("pm")):
                continue  # nothing to train
            logger.info(f"=== {shape} {row} ===")
            result = self.teacher_row() if row == "teacher" else self.student_row(Shape.parse(shape), row)
            if result is None:
                continue  # trained and saved, to be scored later
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_text(path, json.dumps(result, indent=2))
            logger.info(f"{shape} {row}: {json.dumps(result['metrics'])}")

    def push(self) -> str:
        """Upload ``--push_row``'s folder (scored, so its model card holds its metrics) to ``--hub_model_id``."""
        shape, _, row = self.f.push_row.partition("/")
        if not os.path.isfile(self.result_path(shape, row)):
            raise ValueError(f"--push_row {self.f.push_row}: no scored row {shape} {row} in {self.results_dir}; "
                             "name a row this budget has scored (SHAPE/ROW, e.g. d192-3+1/qd4).")
        folder = self._folder(shape, row)
        if not os.path.isfile(os.path.join(folder, "README.md")):
            raise FileNotFoundError(f"{folder} has no model card: only saved quantized rows can be pushed.")
        return push_folder(folder, self.args.hub_model_id, private=self.args.hub_private_repo,
                           token=self.args.hub_token, revision=self.args.hub_revision, dry_run=self.f.hub_dry_run)

    def _train_args(self, shape: Shape, row: str, run: str = "", **overrides) -> DistillationArguments:
        out = os.path.join(self.args.output_dir, shape.name, run or f"{row}-run")
        settings = dict(
            output_dir=out, **self._evaluation_schedule(), save_total_limit=2,
            load_best_model_at_end=True, metric_for_best_model="bleu", greater_is_better=True,
            predict_with_generate=True, generation_max_length=self.bench.max_length, generation_num_beams=1,
            push_to_hub=False,
            # patience comes back from the checkpoint's history (ResumablePatience); restored callbacks would be new
            # objects, not the ones `_train` reads when training ends
            restore_callback_states_from_checkpoint=False,
        )
        return dataclasses.replace(self.args, **{**settings, **overrides})

    def _evaluation_schedule(self) -> dict:
        """Evaluate and checkpoint at each epoch end, or ``evaluations_per_epoch`` times an epoch."""
        if self.f.evaluations_per_epoch <= 1:
            return dict(eval_strategy="epoch", save_strategy="epoch")
        batch = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        steps = math.ceil(math.ceil(len(self.data.datasets["train"]) / batch) / self.f.evaluations_per_epoch)
        return dict(eval_strategy="steps", eval_steps=steps, save_strategy="steps", save_steps=steps)

    def _train(self, model, shape: Shape, row: str, teacher, minutes: float = 0.0, run: str = "",
               best: float | None = None, **overrides) -> "Trained":
        """Train ``model`` as ``row`` in the folder ``{row}-run`` (``run``: another name). ``best``: the validation
        BLEU a checkpoint must beat (a continued row's); with none better the model comes back as it went in."""
        if model.generation_config.max_new_tokens is not None:  # the student's own limit (the teacher's) wins over
            overrides.setdefault("generation_max_length", None)  # a max_length beside it, with a warning each batch
        args = self._train_args(shape, row, run=run, **overrides)
        # A row interrupted by the end of a session continues from its last complete checkpoint on the same machine;
        # its training time is carried in the checkpoint.
        resume = last_complete_checkpoint(args.output_dir)
        clock = TrainingClock(resume)
        early = ResumablePatience(early_stopping_patience=self.f.patience)
        deadline = Deadline(60 * minutes, clock) if minutes else None
        saved = TrainerState.load_from_json(os.path.join(resume, TRAINER_STATE_NAME)) if resume else None
        if saved and (evaluations_since_best(saved, args.metric_for_best_model) >= self.f.patience
                      or deadline and deadline.passed()):
            # The run had stopped at its last checkpoint, out of patience or time, and the session ended before the
            # row was saved: keep its best and train no more.
            args = dataclasses.replace(args, max_steps=saved.global_step)
        callbacks = [early, clock, StartingBest(best), *([deadline] if deadline else [])]
        with torch_threads(self.train_threads):
            trainer = _trainer_with(model, teacher, self.tokenizer, self.data, args, *callbacks)
            trainer.train(resume_from_checkpoint=resume)
            threads = torch.get_num_threads()
        state = trainer.state
        stopped = "time budget" if deadline and deadline.reached else "early stopping" if early.ran_out else "epochs"
        return Trained(trainer.model.cpu().eval(), clock.seconds(), state.best_metric, state.epoch,
                       machine_description(), clock.setup_seconds, threads,
                       state.best_global_step or state.global_step, stopped,
                       validations=validation_points(state.log_history, "eval_bleu"))

    def _folder(self, shape: str, row: str) -> str:
        return os.path.join(self.args.output_dir, shape, row)

    def kd_model(self, shape: Shape) -> "Trained":
        """The shape's trained kd student (saved under the run's output folder; trained if missing)."""
        return self.trained(shape, "kd")

    def trained(self, shape: Shape, row: str) -> "Trained":
        """A trained row's model: loaded from its folder when a run (here or on another machine) saved it there,
        else trained and saved; continued first when ``--continue_rows`` asks and its time budget had ended it."""
        key, folder = (shape.name, row), self._folder(shape.name, row)
        trained = Trained.load(folder, legacy=row == "kd")  # a fresh copy each time: later rows change it in place
        if trained is not None:
            # Students decode as their teacher does. Folders saved before the trainer kept the student's own config
            # hold Seq2SeqTrainer's defaults (max_length=20 beside max_new_tokens): rows trained from them would
            # inherit them, and every `generate` would warn that both limits are set.
            trained.model.generation_config = copy.deepcopy(self.teacher.generation_config)
        if trained is None:
            trained = self._train_from_kd(shape, row) if _starts_from_kd(row) else self._train_from_start(shape, row)
            trained.save(folder, self.tokenizer)
        elif (row in self.f.continue_rows and key not in self._continued  # once a process: not again for each row
              and not os.path.isfile(self.result_path(*key))):
            self._continued.add(key)
            if trained.stopped_by in ("early stopping", "epochs"):
                logger.info(f"{shape.name} {row}: converged already ({trained.stopped_by}); not continued.")
            else:
                trained = self._continue(shape, row, trained)
                trained.save(folder, self.tokenizer)
        return trained

    def _start_settings(self, shape: Shape, row: str) -> dict:
        """How a row trained from the shape's start (`kd`, `kdseq`, `qd<b>-scratch`, `qat<b>-scratch`) trains:
        kd's budget."""
        settings = dict(teacher=self.teacher, minutes=self.f.kd_minutes, num_train_epochs=self.f.kd_epochs,
                        learning_rate=self.f.copy_learning_rate if shape.copy else self.f.fresh_learning_rate,
                        distillation_mode="sequence+token" if row == "kdseq" else "token",
                        bits=_bits(row) if row.endswith("-scratch") else None)
        if row.startswith("qat"):  # labels only: what QD's teacher adds, with no teacher in the start either
            settings.update(teacher=None, alpha=0.0, distillation_mode="none")
        return settings

    def _train_from_start(self, shape: Shape, row: str) -> "Trained":
        """A student of ``shape`` distilled from the teacher from its first step: token-level (`kd`), on the
        teacher's beam-search translations with its distributions under them (`kdseq`, Kim & Rush's combination),
        or quantized throughout (`qd<b>-scratch`, and `qat<b>-scratch` on labels alone: the comparisons for rows that
        start from kd), with kd's budget."""
        return self._train(shape.build(self.teacher), shape, row, **self._start_settings(shape, row))

    def _continue(self, shape: Shape, row: str, saved: "Trained") -> "Trained":
        """Train a saved full-precision row on from its weights: the epochs its budget has left, the schedule from
        the saved model's step, and only a better validation BLEU than the saved one replaces it."""
        settings = self._start_settings(shape, row)
        step = saved.best_step or self._recorded_best_step(shape, row)
        if self.args.lr_scheduler_type != "inverse_sqrt":
            raise ValueError(f"--continue_rows continues an inverse_sqrt learning-rate schedule, not "
                             f"{self.args.lr_scheduler_type!r}; train {shape.name} {row} again instead.")
        if row == "kd":
            shape_dir = os.path.join(self.args.output_dir, shape.name)
            stale = sorted(name for name in os.listdir(shape_dir)
                           if ROW.match(name.removesuffix("-run")) and _starts_from_kd(name.removesuffix("-run")))
            if stale:
                raise ValueError(f"{shape.name} kd is to be continued, but {stale} in {shape_dir} were trained from "
                                 "it as it is now and would be scored or resumed as if from the continued one; move "
                                 "them away, or continue in a fresh --output_dir holding only the kd folder.")
        left = settings["num_train_epochs"] - (saved.epochs or 0)
        if left <= 0:
            logger.info(f"{shape.name} {row}: its {settings['num_train_epochs']:g} epochs are used; not continued.")
            return saved
        lr, kwargs = continued_inverse_sqrt(settings["learning_rate"], self.args.warmup_steps, step)
        logger.info(f"{shape.name} {row}: continuing from step {step} (validation BLEU "
                    f"{saved.best_validation_bleu}), {left:g} epochs left, learning rate {lr:.3g}.")
        settings.update(num_train_epochs=left, learning_rate=lr, lr_scheduler_kwargs=kwargs)
        now = self._train(copy.deepcopy(saved.model), shape, row, run=f"{row}-run-from-step{step}",
                          best=saved.best_validation_bleu, **settings)
        improved = now.best_validation_bleu is not None and (saved.best_validation_bleu is None
                                                             or now.best_validation_bleu > saved.best_validation_bleu)
        machines = " then ".join(m.split(",")[0] for m in (saved.machine or "unrecorded", now.machine))
        before = saved.epochs or 0.0  # the continuation's epochs count on from the saved row's
        validations = {**saved.validations,
                       **{round(before + epoch, 2): bleu for epoch, bleu in now.validations.items()}}
        return Trained(now.model if improved else saved.model, (saved.seconds or 0.0) + now.seconds,
                       now.best_validation_bleu if improved else saved.best_validation_bleu,
                       before + now.epochs, machines, now.setup_seconds, now.threads,
                       step + now.best_step if improved else step, now.stopped_by, saved.record(), validations)

    def _recorded_best_step(self, shape: Shape, row: str) -> int:
        """The kept model's step for a row saved before records held it: from its run's last trainer state."""
        run = os.path.join(self.args.output_dir, shape.name, f"{row}-run")
        last = get_last_checkpoint(run) if os.path.isdir(run) else None
        state = os.path.join(last, "trainer_state.json") if last else ""
        best = json.loads(Path(state).read_text()).get("best_model_checkpoint") if os.path.isfile(state) else None
        if not best:
            raise ValueError(f"{shape.name} {row}: its record has no best_step and no {row}-run/checkpoint-*/"
                             "trainer_state.json names its best checkpoint, so the schedule cannot be continued; "
                             "copy the run's trainer states beside it or train the row again.")
        return int(best.rstrip("/").rsplit("-", 1)[1])

    def _train_from_kd(self, shape: Shape, row: str) -> "Trained":
        """A qd / qat / dq row: quantization-aware training that starts from the shape's kd student."""
        extra = dict(bits=_bits(row), num_train_epochs=self.f.quant_epochs, learning_rate=self.f.quant_learning_rate)
        if row.startswith("qat"):
            extra.update(alpha=0.0, distillation_mode="none")
        if row.endswith("-sgd"):  # the paper's optimizer for the points, beside AdamW
            extra.update(points_optimizer="sgd", points_learning_rate=self.f.points_sgd_learning_rate)
        if row.startswith("dq"):
            extra.update(quant_method="learned", allocate_bits=True, train_weights=False)
        teacher = None if row.startswith("qat") else self.teacher
        return self._train(self.kd_model(shape).model, shape, row, teacher, self.f.quant_minutes, **extra)

    def student_row(self, shape: Shape, row: str) -> dict | None:
        """A student row's results; `None` with ``--train_only`` (trained and saved, scored by a later run)."""
        if row.startswith("pm"):  # post-training quantization of kd: nothing to train
            model = quantize_(self.kd_model(shape).model, self._quant_config(_bits(row)))
            record = Trained(model, 0.0, None, 0.0, None).record()
            return self.scorer.score(model, self._folder(shape.name, row), shape.name, row, record, "kd")
        trained = self.trained(shape, row)
        if self.f.train_only:
            return None
        start_from = "kd" if _starts_from_kd(row) else "teacher layers" if shape.copy else "scratch"
        return self.scorer.score(trained.model, self._folder(shape.name, row), shape.name, row, trained.record(),
                                 start_from)

    def _quant_config(self, bits: int) -> QuantConfig:
        return dataclasses.replace(self.args.quant_config() or QuantConfig(bits=bits), bits=bits, method="uniform")

    def teacher_row(self) -> dict:
        return self.scorer.score(self.teacher, self._folder("teacher", "teacher"), "teacher", "teacher",
                                 Trained.NOT_TRAINED, "given")

def _trainer_with(model, teacher, tokenizer, data, args, *callbacks):
    from transformers import DataCollatorForSeq2Seq

    from ..distill import QuantizedDistillationTrainer

    trainer = QuantizedDistillationTrainer(
        model=model, teacher_model=teacher if (args.uses_teacher or args.uses_teacher_targets) else None,
        args=args, train_dataset=data.datasets["train"], eval_dataset=data.datasets["validation"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer, compute_metrics=make_compute_metrics(tokenizer), callbacks=list(callbacks),
    )
    return trainer


__all__ = ["Frontier", "FrontierArguments", "Shape"]
