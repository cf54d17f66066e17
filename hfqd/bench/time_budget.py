"""Training within a fixed slot of machine time: an early-stopping patience that survives resumption (beside the
clock of `hfqd.distill.checkpoint`), a deadline that ends training at an evaluation, a learning-rate schedule that a
later slot continues, and a thread count that scoring borrows and gives back.

The frontier's budgets are wall-clock slots (a CPU session, a GPU lease), not epoch counts: each row trains until
its slot is used, keeping its best evaluation; a row whose slot ended before early stopping did can train on in the
next slot, on another machine, from its saved weights alone."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainerState

from ..distill.checkpoint import TrainingClock

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` threads inside the block and give the previous count back after it.

    Timings compare engines at one thread count, and loading a CTranslate2 model sets the process's OpenMP threads
    to its own count: both must not leak into the training that follows."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def continued_inverse_sqrt(learning_rate: float, warmup_steps: int, step: int) -> tuple[float, dict]:
    """The peak learning rate and `lr_scheduler_kwargs` with which a fresh `inverse_sqrt` schedule continues one that
    stopped at ``step``.

    The original schedule gives ``learning_rate * sqrt(warmup_steps / s)`` at step ``s`` past its warmup. The new one
    warms the optimizer's fresh moments up over ``warmup_steps`` again (a trained model should not take full-size
    first Adam steps), then gives exactly what the original would have given at ``step + s``."""
    if warmup_steps <= 0:
        raise ValueError("Continuing an inverse_sqrt schedule needs warmup_steps > 0 (its time scale).")
    timescale = step + warmup_steps
    return learning_rate * math.sqrt(warmup_steps / timescale), {"timescale": timescale}


class Deadline(TrainerCallback):
    """Ends training at the first evaluation past a time budget (that evaluation still counts and the best one is
    kept), so that a row fits a fixed slot of machine time."""

    def __init__(self, seconds: float, clock: TrainingClock):
        self.limit, self.clock = seconds, clock
        self.reached = False

    def passed(self) -> bool:
        return self.clock.seconds() >= self.limit

    def on_train_begin(self, args, state, control, **kwargs):
        self.reached = self.passed()  # a resumed run whose last checkpoint had used its slot

    def on_evaluate(self, args, state, control, **kwargs):
        if self.passed():
            self.reached = True
            logger.info(f"Training time budget of {self.limit / 60:g} min reached at epoch {state.epoch:.3g}.")
            control.should_training_stop = True


class StartingBest(TrainerCallback):
    """Makes a continued row beat the validation score its saved model already has before a checkpoint counts as
    better (early stopping counts from it too); with no better evaluation, `best_model_checkpoint` stays `None`."""

    def __init__(self, best: float | None):
        self.best = best

    def on_train_begin(self, args, state, control, **kwargs):
        if self.best is not None and (state.best_metric is None or state.best_metric < self.best):
            state.best_metric = self.best


def evaluations_since_best(state: TrainerState, metric: str) -> int:
    """The evaluations in ``state.log_history`` after the one that set ``state.best_metric`` (all of them when the
    best came from elsewhere, as a continued row's does): early stopping's patience counter, rebuilt from what
    every checkpoint keeps."""
    key = metric if metric.startswith("eval_") else f"eval_{metric}"
    values = [entry[key] for entry in state.log_history if key in entry]
    if state.best_metric not in values:
        return len(values)
    return len(values) - 1 - values.index(state.best_metric)  # a later tie did not improve on it


class ResumablePatience(EarlyStoppingCallback):
    """Early stopping whose patience survives a resume.

    `Trainer` restores callbacks from a checkpoint only when asked to (`restore_callback_states_from_checkpoint`),
    and then as new objects; left as it is, a row resumed two evaluations after its best waits `patience` more,
    training past where an uninterrupted run stops. The counter is rebuilt from the resumed log history instead."""

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.early_stopping_patience_counter = evaluations_since_best(state, args.metric_for_best_model)
        # A checkpoint written with another early-stopping callback has no entry under this one's name, and
        # `Trainer` looks it up when it saves the next checkpoint.
        state.stateful_callbacks.setdefault(type(self).__name__, self.state())

    @property
    def ran_out(self) -> bool:
        return self.early_stopping_patience_counter >= self.early_stopping_patience


__all__ = ["Deadline", "ResumablePatience", "StartingBest", "TrainingClock", "continued_inverse_sqrt",
           "evaluations_since_best", "torch_threads"]
