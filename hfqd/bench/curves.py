"""Validation BLEU epoch by epoch, read from a training run's last checkpoint.

A frontier row writes its results file only when it ends, and a row trained from scratch on 2 CPU cores runs over
several sessions (each resumes from the last checkpoint). Until it ends, its checkpoints are the record: the
`trainer_state.json` of the last one holds every validation so far, and `hfqd_train_seconds.txt` the training time.
Rows compared at equal epochs (quantized training with and without a teacher) are read side by side here.
A run's folder goes with its machine, but its report is committed: a curve can also be read back from the JSON of
an earlier report, or from a finished row's results file (which records its validations), so a run continued or redone
on a fresh machine is still compared with one that finished before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..distill.checkpoint import last_complete_checkpoint
from ..eval.report import table, write_report
from .time_budget import TrainingClock


@dataclass
class Curve:
    """One run's validation scores: ``points`` maps the epoch to the metric at that validation."""

    name: str
    run_dir: str
    checkpoint: str
    points: dict[float, float] = field(default_factory=dict)
    train_seconds: float | None = None
    recorded_in: str | None = None  # the report it was read back from, when its run folder is gone

    @property
    def source(self) -> str:
        """Where the points come from: the checkpoint, and the report that recorded it if read back."""
        return f"{self.checkpoint} (recorded in {self.recorded_in})" if self.recorded_in else self.checkpoint

    @property
    def best(self) -> tuple[float, float]:
        """(epoch, score) of the best validation so far."""
        return max(self.points.items(), key=lambda item: item[1])


ROW_CURVE_KEY = "validation_bleu_by_epoch"  # where a row's results file keeps its validations (`Trained.record`)


def validation_points(log_history: list[dict], metric: str = "eval_bleu") -> dict[float, float]:
    """Epoch -> ``metric`` at each validation of a `Trainer` log history (epochs rounded as the logs show them)."""
    return {round(entry["epoch"], 2): entry[metric] for entry in log_history if metric in entry}


def _recorded_points(recorded: dict[str, float]) -> dict[float, float]:
    """Epoch -> score from a JSON record, whose keys are the epochs written as strings."""
    return {round(float(epoch), 2): score for epoch, score in recorded.items()}


def read_curve(name: str, run_dir: str, metric: str = "eval_bleu") -> Curve:
    """The validations in ``run_dir``'s last complete checkpoint (a clear error when there is none yet)."""
    checkpoint = last_complete_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{name}: no complete checkpoint in {run_dir} yet; a run saves one at each "
                                "validation, so wait for its first, or check the path (the row's '<row>-run' folder).")
    state = json.loads(Path(checkpoint, "trainer_state.json").read_text())
    points = validation_points(state["log_history"], metric)
    if not points:
        raise ValueError(f"{name}: {checkpoint}/trainer_state.json logs no {metric!r}; "
                         "name a metric the run validates on (eval_bleu, eval_chrf, eval_loss).")
    clock = Path(checkpoint, TrainingClock.NAME)
    seconds = float(clock.read_text()) if clock.is_file() else None
    return Curve(name, run_dir, checkpoint, points, seconds)


def read_reported_curve(name: str, report: str, metric: str = "eval_bleu") -> Curve:
    """The curve called ``name`` in an earlier report's JSON (written by `write_curve_report`), as it was recorded."""
    data = json.loads(Path(report).read_text())
    recorded = str(data.get("metric", "")).split(" ", 1)[0]
    if recorded != metric:
        raise ValueError(f"{name}: {report} records {recorded or 'no metric'!r}, not {metric!r}; "
                         "compare curves of one metric (--metric).")
    found = {curve["name"]: curve for curve in data.get("curves", [])}
    if name not in found:
        raise ValueError(f"{name}: {report} has no curve of that name (it has {', '.join(found) or 'none'}); "
                         "the name before '=' picks the curve.")
    curve = found[name]
    points = _recorded_points(curve["points"])
    return Curve(name, curve["run_dir"], curve["checkpoint"], points, curve["train_seconds"], recorded_in=report)


def read_row_curve(name: str, path: str, metric: str = "eval_bleu") -> Curve:
    """The validations a frontier row's results file recorded when its training ended (BLEU only)."""
    row = json.loads(Path(path).read_text())
    if ROW_CURVE_KEY not in row:
        raise ValueError(f"{name}: {path} is neither a curves report nor a row results file with {ROW_CURVE_KEY!r} "
                         "(rows record their validations since this field came in); read the curve from the run "
                         "folder or from a report written while it existed.")
    if metric != "eval_bleu":
        raise ValueError(f"{name}: a row results file records eval_bleu, not {metric!r}; compare curves of one metric.")
    points = _recorded_points(row[ROW_CURVE_KEY] or {})
    if not points:
        raise ValueError(f"{name}: {path} records no validations (a row that was not trained, such as pm or teacher).")
    kept = f"the kept model, step {row.get('best_step')}"
    return Curve(name, f"{row.get('shape')}/{row.get('row')}", kept, points, row.get("train_seconds"), recorded_in=path)


def load_curve(spec: str, metric: str = "eval_bleu") -> Curve:
    """`NAME=RUN_DIR` reads the run's last checkpoint; `NAME=REPORT.json` reads the curve back from a report, or
    from a row's results file."""
    name, source = run_dir_of(spec)
    if not os.path.isfile(source):
        return read_curve(name, source, metric)
    is_report = "curves" in json.loads(Path(source).read_text())
    return (read_reported_curve if is_report else read_row_curve)(name, source, metric)


def curve_table(curves: list[Curve]) -> str:
    """Epochs down, runs across; a blank where a run had not validated at that epoch. Then each run's best so far,
    validations, the epochs (of those every run reached) at which it scored above all others, and training minutes."""
    epochs = sorted({epoch for curve in curves for epoch in curve.points})

    def cell(curve: Curve, epoch: float) -> str:
        return f"{curve.points[epoch]:.2f}" if epoch in curve.points else ""

    by_epoch = table(["epoch", *[c.name for c in curves]],
                     [[f"{epoch:g}", *[cell(c, epoch) for c in curves]] for epoch in epochs])
    shared = [epoch for epoch in epochs if all(epoch in c.points for c in curves)]
    ahead = {c.name: 0 for c in curves}
    for epoch in shared:
        scores = sorted((c.points[epoch], c.name) for c in curves)
        if len(scores) > 1 and scores[-1][0] > scores[-2][0]:  # a tie leads nobody
            ahead[scores[-1][1]] += 1
    summary = table(["run", "best so far (epoch)", "validations", "ahead of the others", "training minutes",
                     "last checkpoint"], [
        [c.name, f"{c.best[1]:.2f} ({c.best[0]:g})", len(c.points), f"{ahead[c.name]} of {len(shared)} epochs",
         f"{c.train_seconds / 60:.0f}" if c.train_seconds is not None else "", c.source] for c in curves])
    return by_epoch + "\n\n" + summary


def write_curve_report(prefix: str, header: dict, curves: list[Curve]) -> str:
    """``{prefix}.md`` and ``{prefix}.json``: the curves side by side."""
    if not curves:
        raise ValueError("No runs to report: give at least one NAME=RUN_DIR.")
    data = {"curves": [{"name": c.name, "run_dir": c.run_dir, "checkpoint": c.checkpoint,
                        "recorded_in": c.recorded_in,
                        "points": {f"{epoch:g}": score for epoch, score in c.points.items()},
                        "train_seconds": c.train_seconds} for c in curves]}
    return write_report(prefix, header, [curve_table(curves)], data)


def run_dir_of(spec: str) -> tuple[str, str]:
    """`NAME=RUN_DIR` (or `NAME=REPORT.json`) -> (name, path)."""
    name, sep, run_dir = spec.partition("=")
    if not sep or not name.strip() or not run_dir.strip():
        raise ValueError(f"--run {spec!r}: expected NAME=RUN_DIR, for example "
                         "\"qd2-scratch=runs/ff/d192-3+1/qd2-scratch-run\".")
    path = run_dir.strip()
    if not os.path.isdir(path) and not (path.endswith(".json") and os.path.isfile(path)):
        raise FileNotFoundError(f"--run {name.strip()}: {path} is neither a run folder nor a curves report or a "
                                "row results file (.json).")
    return name.strip(), path
