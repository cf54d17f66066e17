"""`QuantizedDistillationTrainer`: a Seq2SeqTrainer whose student is quantized in every forward pass."""

from __future__ import annotations

import copy
import logging
import os

import torch
from datasets import concatenate_datasets
from torch import nn
from transformers import PreTrainedModel, Seq2SeqTrainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..hub import prepare_packed_student, push_folder, save_packed
from ..quant import (
    Allocation,
    allocate_points,
    allocation_report,
    get_quant_config,
    is_quantized,
    learned_points,
    quantize_,
    selected_parameters,
    set_quant_step,
    shadow_state_dict,
    sort_points_,
)
from ..quant.size import unsaved_keys
from ..utils import atomic_write_text
from .arguments import TEACHER_DTYPES, DistillationArguments
from .checkpoint import (
    COMPLETE_MARKER,
    is_complete_checkpoint,
    last_complete_checkpoint,
    load_shadow_checkpoint,
    read_quant_config,
    save_quantization_state,
)
from .losses import distillation_loss
from .sequence import with_teacher_targets
from .teacher_cache import CACHE_COLUMNS, CachedTeacherCollator, build_teacher_cache, cached_k
from .students import check_same_outputs

logger = logging.getLogger(__name__)


class SortPointsCallback(TrainerCallback):
    """Re-sorts learned quantization points after every optimizer step."""

    def __init__(self, model: nn.Module):
        self.model = model

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        sort_points_(self.model, optimizer)


class PointsSGDCallback(TrainerCallback):
    """Plain SGD on the learned points, right after the Trainer's optimizer step (gradients are clipped with the
    rest of the model's and cleared by the Trainer's `zero_grad`); the points then get re-sorted as usual."""

    def __init__(self, points: list[nn.Parameter], lr: float):
        self.optimizer = torch.optim.SGD(points, lr=lr)

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.optimizer.step()


def own_param_group(optimizer: torch.optim.Optimizer, params: list, **options) -> None:
    """Move ``params`` out of the Trainer's groups into one group of their own (no weight decay unless
    ``options`` says otherwise): quantization points and bit widths need their own learning rate."""
    remove_params(optimizer, params)
    optimizer.add_param_group({"params": params, "weight_decay": 0.0, **options})


def remove_params(optimizer: torch.optim.Optimizer, params: list) -> None:
    """Take ``params`` out of every group of ``optimizer`` (a group left empty stays, with its learning rate)."""
    ids = {id(p) for p in params}
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if id(p) not in ids]


class QuantizedDistillationTrainer(Seq2SeqTrainer):
    """Quantized distillation (Polino et al., 2018) inside a `transformers` Trainer.

    The student's selected weights are quantized in every forward pass (see :func:`hfqd.quantize_`); the optimizer
    updates their full-precision shadows through the straight-through gradient. The loss mixes the teacher's soft
    targets with the labels (:func:`hfqd.distill.losses.distillation_loss`).

    Args:
        model: the student. It is quantized with ``args.quant_config()`` unless it is quantized already or
            ``args.bits`` is `None` (full-precision distillation).
        teacher_model: the teacher; required when ``args.distillation_mode`` uses it (token-level with
            ``alpha > 0``, or sequence-level targets). It is moved to the student's device, put in eval mode and
            frozen. With ``args.teacher_cache_dir`` its distributions are computed once (or found cached) and it is
            not run during training.
        args: :class:`~hfqd.DistillationArguments`.
        **kwargs: everything `Seq2SeqTrainer` accepts (datasets, collator, tokenizer as `processing_class`, ...).
    """

    def __init__(
        self,
        model: PreTrainedModel | nn.Module | None = None,
        teacher_model: PreTrainedModel | nn.Module | None = None,
        args: DistillationArguments | None = None,
        **kwargs,
    ):
        if not isinstance(args, DistillationArguments):
            raise TypeError("`args` must be DistillationArguments (it carries alpha, temperature and bits).")
        if model is None:
            raise ValueError("`model` (the student) is required.")
        needs_teacher = args.uses_teacher or args.uses_teacher_targets
        if needs_teacher and teacher_model is None:
            raise ValueError(
                f"distillation_mode={args.distillation_mode!r} with alpha={args.alpha} needs `teacher_model`. "
                "Pass a teacher, or set alpha=0 / distillation_mode='none' to train on labels only."
            )
        if teacher_model is not None and args.uses_teacher:
            check_same_outputs(teacher_model, model)
        super().__init__(model=model, args=args, **kwargs)
        # compute_loss normalises by `num_items_in_batch`; make the Trainer count it whatever the model's signature.
        self.model_accepts_loss_kwargs = True
        self.teacher_model = None
        if teacher_model is not None:
            teacher_model = teacher_model.to(device=self.args.device, dtype=TEACHER_DTYPES[args.teacher_dtype])
            teacher_model.eval().requires_grad_(False)
            self.teacher_model = teacher_model
        self.allocation: list[Allocation] | None = None
        self._quantize_student()
        if args.uses_teacher_targets and self.train_dataset is not None:
            with self.args.main_process_first(desc="teacher translations"):
                self.train_dataset = with_teacher_targets(self.teacher_model, self.train_dataset, args,
                                                          tokenizer=self.processing_class)
        if args.teacher_cache_dir and args.uses_teacher and self.train_dataset is not None:
            self._use_teacher_cache()

    def _use_teacher_cache(self) -> None:
        """Attach the cached teacher distributions to the training set (built first if needed)."""
        cache = build_teacher_cache(
            self.teacher_model, self.train_dataset, self.data_collator, self.args.teacher_cache_dir,
            self.args.teacher_top_k, self.args.temperature, self.args.teacher_dtype,
            batch_size=self.args.teacher_cache_batch_size,
        )
        self.train_dataset = concatenate_datasets([self.train_dataset, cache], axis=1)
        self.data_collator = CachedTeacherCollator(self.data_collator, cached_k(cache))

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if self.args.teacher_cache_dir:  # the cached teacher columns reach compute_loss, not the model
            self._signature_columns = list(dict.fromkeys([*self._signature_columns, *CACHE_COLUMNS]))

    # ---- quantization ---------------------------------------------------------------------------------------------

    def _quantize_student(self) -> None:
        """Quantize the student as the arguments say (or as its packed checkpoint says), once, before training."""
        args, model = self.args, self.model
        config = args.quant_config()
        if prepare_packed_student(model, override=config if args.requantize else None):
            logger.info(f"Training a packed hfqd student with {get_quant_config(model)}.")
        elif config is not None and not is_quantized(model):
            points = None
            if args.allocate_bits:
                self.allocation = allocate_points(
                    self.estimate_gradient_norms(selected_parameters(model, config), args.allocation_batches),
                    {name: 2**config.bits for name in selected_parameters(model, config)},
                )
                points = {a.name: a.points for a in self.allocation}
                logger.info("Points per tensor, by gradient norm:\n" + allocation_report(self.allocation))
            quantize_(model, config, points_per_tensor=points)
        elif config is None and is_quantized(model):
            logger.info("The student is already quantized; training it with its own quantization settings.")
        # What the model rebuilds on load instead of storing (Marian's fixed sinusoidal positions, which
        # `from_pretrained` leaves trainable) must not train: the saved student would differ from the trained one.
        skip = unsaved_keys(model)
        for name, param in model.named_parameters():
            if name in skip and param.requires_grad:
                param.requires_grad_(False)
                logger.info(f"Not training {name}: the model rebuilds it on load instead of saving it.")
        points = learned_points(model)
        if not args.train_weights:
            if not points:
                raise ValueError("train_weights=False leaves nothing to train: the student has no learned points.")
            model.requires_grad_(False)
            for p in points:
                p.requires_grad_(True)
        if points:
            self.add_callback(SortPointsCallback(model))

    def estimate_gradient_norms(self, params: dict[str, torch.Tensor], batches: int) -> dict[str, float]:
        """Norm of each tensor's loss gradient, accumulated over ``batches`` training batches and averaged.

        This is the paper's sensitivity estimate for bit allocation (it averages 5 minibatches).
        """
        model = self.model
        model.train()
        model.zero_grad(set_to_none=True)
        seen = 0
        for batch in self.get_train_dataloader():
            if seen >= batches:
                break
            self.compute_loss(model, self._prepare_inputs(batch)).backward()
            seen += 1
        if seen == 0:
            raise ValueError("The training set is empty: cannot estimate gradient norms for bit allocation.")
        norms = torch.stack([
            p.grad.norm() / seen if p.grad is not None else torch.zeros((), device=p.device) for p in params.values()
        ])
        # Each process saw its own shard: average, so that every rank allocates the same points (same shapes).
        norms = self.accelerator.reduce(norms, reduction="mean")
        model.zero_grad(set_to_none=True)
        self._reset_distill_logs()
        return dict(zip(params, norms.tolist()))

    def create_optimizer(self, model=None):
        """The Trainer's optimizer, with learned points in their own group (own learning rate, no weight decay)."""
        optimizer = super().create_optimizer(model)
        points = learned_points(self.model)
        if points and not any(group.get("hfqd_points") for group in optimizer.param_groups):
            if self.args.points_optimizer == "sgd":
                remove_params(optimizer, points)  # a group left empty keeps its schedule
                self.pop_callback(PointsSGDCallback)
                self.add_callback(PointsSGDCallback(points, self.args.points_learning_rate))
            else:
                own_param_group(optimizer, points, lr=self.args.points_learning_rate, hfqd_points=True)
        return optimizer

    # ---- loss -------------------------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        # Labels are only needed by an encoder-decoder model that must build its decoder inputs from them; otherwise
        # dropping them spares the model its own loss computation.
        unwrapped = self.accelerator.unwrap_model(model)
        needs_labels = getattr(unwrapped.config, "is_encoder_decoder", False) and "decoder_input_ids" not in inputs
        student_inputs = {k: v for k, v in inputs.items() if needs_labels or k != "labels"}
        cached = [student_inputs.pop(c) for c in CACHE_COLUMNS] if CACHE_COLUMNS[0] in student_inputs else None
        outputs = model(**student_inputs)
        teacher_logits = None
        use_teacher = self.args.uses_teacher and (self.teacher_model is not None or cached is not None)
        if use_teacher and cached is None:
            with torch.no_grad():
                teacher_logits = self.teacher_model(**student_inputs).logits
        result = distillation_loss(
            outputs.logits,
            teacher_logits,
            labels,
            temperature=self.args.temperature,
            alpha=self.args.alpha if use_teacher else 0.0,
            num_items_in_batch=num_items_in_batch,
            teacher_topk=cached,
        )
        loss = result.loss
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(
                f"The distillation loss is {loss.item()} at step {self.state.global_step} (kd={result.kd.item()}, "
                f"ce={result.ce.item()}). Lower the learning rate, enable gradient clipping (max_grad_norm) or "
                "use more bits."
            )
        # Normalised over the whole accumulated batch when the Trainer gives its size; a per-batch mean otherwise.
        self.loss_is_scaled_for_ga = num_items_in_batch is not None
        if (
            num_items_in_batch is not None
            and self.args.average_tokens_across_devices
            and self.accelerator.num_processes > 1
        ):
            # `num_items_in_batch` counts every process's tokens while DDP averages gradients: undo the average.
            loss = loss * self.accelerator.num_processes
        if model.training:
            # Undo the normaliser (which spans every accumulation step and process) to log per-token means.
            tokens = (labels != -100).sum()
            norm = tokens if num_items_in_batch is None else num_items_in_batch
            acc = self._distill_logs
            acc += torch.stack([result.kd * norm, result.ce * norm, tokens.float()]).detach().float().to(acc.device)
        return (loss, outputs) if return_outputs else loss

    @property
    def _distill_logs(self) -> torch.Tensor:
        """Running sums since the last log: KD term, CE term, target tokens (this process)."""
        if not hasattr(self, "_distill_log_acc"):
            self._reset_distill_logs()
        return self._distill_log_acc

    def _reset_distill_logs(self) -> None:
        self._distill_log_acc = torch.zeros(3, device=self.args.device)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            kd, ce, tokens = self.accelerator.reduce(self._distill_logs.clone(), reduction="sum").tolist()
            if tokens:
                if self.args.uses_teacher:
                    logs["kd_loss"] = round(kd / tokens, 4)
                logs["ce_loss"] = round(ce / tokens, 4)
            self._reset_distill_logs()
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        # Seq2SeqTrainer writes every unset generation default (max_length=20, top_k=50, ...) into the model's own
        # generation_config after generating. The student would be saved with them, and each later `generate` with
        # `max_new_tokens` would warn that both limits are set: keep the config the student came with.
        kept = copy.deepcopy(self.model.generation_config)
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            kept._from_model_config = self.model.generation_config._from_model_config  # the parent's own flag
            self.model.generation_config = kept

    def training_step(self, model, inputs, num_items_in_batch=None):
        # Seeds stochastic rounding by the global step, identically on every process and after a resume.
        set_quant_step(self.model, self.state.global_step)
        return super().training_step(model, inputs, num_items_in_batch)

    # ---- saving ----

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the student: packed low-bit weights when it is quantized (see :func:`hfqd.save_packed`).

        Checkpoints written during training (`_internal_call`) keep the full-precision shadows instead, so that
        training can resume exactly.
        """
        if _internal_call or not is_quantized(self.model):
            return super().save_model(output_dir, _internal_call)

        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.args.should_save:
            save_packed(self.accelerator.unwrap_model(self.model), output_dir, tokenizer=self.processing_class,
                        save_shadows=self.args.save_shadows)
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision, _folder=output_dir)

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True, token=None,
                    revision=None, _folder: str | None = None, **kwargs):
        """Push the packed student, never the full-precision shadows.

        transformers' own `push_to_hub` saves with `save_model(_internal_call=True)`, which writes a training
        checkpoint (fp32 shadows, no `quantization_config`) over `output_dir` and uploads that. A quantized
        student is saved packed instead (into ``output_dir``, or the folder `save_model` just wrote) and that
        folder is uploaded in one commit.
        """
        if not is_quantized(self.model):
            return super().push_to_hub(commit_message, blocking, token, revision, **kwargs)
        folder = _folder or self.args.output_dir
        if _folder is None and self.args.should_save:
            save_packed(self.accelerator.unwrap_model(self.model), folder, tokenizer=self.processing_class,
                        save_shadows=self.args.save_shadows)
        if not self.is_world_process_zero():
            return None
        repo_id = self.args.hub_model_id or os.path.basename(os.path.abspath(self.args.output_dir))
        return push_folder(folder, repo_id, private=self.args.hub_private_repo, token=token or self.args.hub_token,
                           commit_message=commit_message or "Upload hfqd packed model", revision=revision)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # Checkpoints hold fp32 shadows: uploading them would replace the packed model on the Hub.
        if is_quantized(self.model):
            logger.info("Quantized student: checkpoints are not pushed; the packed model is pushed by save_model.")
            return
        super()._push_from_checkpoint(checkpoint_folder)

    # ---- checkpoints --------------------------------------------------------------------------------------------

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, then a marker that says it is complete (see :meth:`train`)."""
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            atomic_write_text(os.path.join(folder, COMPLETE_MARKER), str(self.state.global_step))

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """`Trainer.train`, resuming only from complete checkpoints.

        A process killed while writing `checkpoint-N` leaves a folder without the completion marker; with
        ``resume_from_checkpoint=True`` the latest complete checkpoint is used instead, and an incomplete one
        given by path is refused with a message naming the one to use.
        """
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No complete checkpoint in {self.args.output_dir} to resume from.")
        elif isinstance(resume_from_checkpoint, str) and not is_complete_checkpoint(resume_from_checkpoint):
            latest = last_complete_checkpoint(os.path.dirname(os.path.abspath(resume_from_checkpoint)))
            raise ValueError(
                f"{resume_from_checkpoint} is not a complete checkpoint (its save was interrupted, or it was not "
                f"written by QuantizedDistillationTrainer). Resume from {latest or 'an earlier checkpoint'}."
            )
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not is_quantized(self.model):
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        weights, _ = shadow_state_dict(self.model)
        super()._save(output_dir, state_dict=weights)
        if self.args.should_save:
            save_quantization_state(self.model, output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        model = self.model if model is None else model
        saved = read_quant_config(resume_from_checkpoint) if is_quantized(model) else None
        if saved is not None:
            if saved != get_quant_config(model):
                logger.warning(f"The checkpoint was trained with {saved}, the model is quantized with "
                               f"{get_quant_config(model)}.")
            load_shadow_checkpoint(model, resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if is_quantized(self.model) and best and read_quant_config(best) is not None:
            logger.info(f"Loading best model from {best} (score: {self.state.best_metric}).")
            load_shadow_checkpoint(self.model, best)
            return
        super()._load_best_model()
