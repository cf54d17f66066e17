"""Training within a fixed slot of machine time: a clock that survives resumption, a deadline that ends training at
an evaluation, and a thread count that scoring borrows and gives back.

The frontier's budgets are wall-clock slots (a CPU session, a GPU lease), not epoch counts: each row trains until
its slot is used, keeping its best evaluation."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import TrainerCallback

from ..utils import atomic_write_text

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


class TrainingClock(TrainerCallback):
    """Wall-clock training seconds, written into every checkpoint so that a resumed row reports its whole time.

    It starts with training, so that the teacher's one-off work before it (building the teacher cache or the
    sequence-level targets, or loading them) neither counts nor eats into a row's time budget; that work is
    measured apart (`setup_seconds`)."""

    NAME = "hfqd_train_seconds.txt"

    def __init__(self, resume_from: str | None):
        path = os.path.join(resume_from, self.NAME) if resume_from else ""
        self.before = float(Path(path).read_text()) if path and os.path.isfile(path) else 0.0
        self.created = time.perf_counter()
        self.start: float | None = None
        self.setup_seconds = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()
        self.setup_seconds = self.start - self.created

    def seconds(self) -> float:
        return self.before + (time.perf_counter() - self.start if self.start is not None else 0.0)

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            atomic_write_text(os.path.join(folder, self.NAME), repr(self.seconds()))


class Deadline(TrainerCallback):
    """Ends training at the first evaluation past a time budget (that evaluation still counts and the best one is
    kept), so that a row fits a fixed slot of machine time."""

    def __init__(self, seconds: float, clock: TrainingClock):
        self.limit, self.clock = seconds, clock

    def on_evaluate(self, args, state, control, **kwargs):
        if self.clock.seconds() >= self.limit:
            logger.info(f"Training time budget of {self.limit / 60:g} min reached at epoch {state.epoch:.3g}.")
            control.should_training_stop = True


__all__ = ["Deadline", "TrainingClock", "torch_threads"]
