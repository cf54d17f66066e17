"""Validation BLEU by epoch of runs side by side, from their last checkpoints (rows still training, or trained).

    python scripts/report_validation_curves.py --output benchmarks/results/scratch_curves_d192_cpu \
        --run "qd2-scratch=runs/ff_cpu15_qd2-scratch_emb3/d192-3+1/qd2-scratch-run" \
        --run "qat2-scratch=runs/ff_cpu15_qat2-scratch_emb3/d192-3+1/qat2-scratch-run"

`--run NAME=REPORT.json` reads the curve NAME back from an earlier report instead, for a run whose folder was lost
with its machine (runs/ is not committed); `--run NAME=ROW.json` reads it from a finished row's results file
(`rows/SHAPE__ROW.json`), which records its validations.

A row's results file (test BLEU, size, speed) comes only when it ends; a row that trains over several sessions is
compared here before that, at equal epochs, on the validation split its model selection uses. Nothing is trained or
scored: every figure is the checkpoint's own `trainer_state.json`.
"""

from __future__ import annotations

import argparse
import os
import sys

from hfqd.bench.curves import load_curve, write_curve_report
from hfqd.utils import command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True,
                        help="NAME=RUN_DIR, a row's '<row>-run' folder; NAME=REPORT.json, the curve NAME "
                             "of an earlier report; or NAME=ROW.json, a row's results file (repeat)")
    parser.add_argument("--output", required=True, help="path prefix of the .md and .json written")
    parser.add_argument("--metric", default="eval_bleu", help="the logged validation metric (default eval_bleu)")
    parser.add_argument("--note", default="", help="a line added to the header (where and how the runs train)")
    opts = parser.parse_args()
    try:
        curves = [load_curve(spec, opts.metric) for spec in opts.run]
    except (ValueError, FileNotFoundError) as error:
        sys.exit(str(error))
    header = run_header(command_line("scripts/report_validation_curves.py"), git_commit(ROOT),
                        metric=f"{opts.metric} on the validation split, greedy, as the runs' model selection uses",
                        **({"note": opts.note} if opts.note else {}))
    print(write_curve_report(opts.output, header, curves))


if __name__ == "__main__":
    main()
