"""One table of frontier students trained alike at several seeds, from the row files their runs wrote.

    python scripts/report_frontier_groups.py --output benchmarks/results/frontier_d192_converged \
        --teacher benchmarks/results/frontier_full_frontier_round5/rows/teacher__teacher.json \
        --group "kd=benchmarks/results/frontier_full_frontier_round5/rows/d192-3+1__kd.json" \
        --group "qd4=benchmarks/results/frontier_full_frontier_round6_qd4_seed*/rows/d192-3+1__qd4.json"

`scripts/benchmark_translation.py` writes one results folder per run, and a row file per (shape, row), so seeds of
one student land in separate folders. This gathers them: each `--group NAME=GLOB[,GLOB...]` is one student, its
rows the files the globs match (one per seed). The table gives each group's mean and every seed's BLEU, its gap to
the teacher, size and speed; the issue's QD targets are judged seed by seed (met only if every seed meets it), and
each `--beats "A>B"` on the groups' means; the plots put each group's mean beside the teacher. Nothing is trained
or scored here: every figure is the row files' own, and each row file keeps its command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from hfqd.bench.frontier_report import write_group_report
from hfqd.utils import command_line, git_commit, run_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_group(spec: str) -> tuple[str, list[str]]:
    """`NAME=GLOB[,GLOB...]` -> (name, the sorted row files matched); a clear error when nothing matches."""
    name, sep, patterns = spec.partition("=")
    if not sep or not name.strip() or not patterns.strip():
        raise ValueError(f"--group {spec!r}: expected NAME=GLOB[,GLOB...], for example \"qd4=runs/*/rows/*qd4.json\".")
    paths = sorted(path for pattern in patterns.split(",") for path in glob.glob(pattern.strip()))
    if not paths:
        raise ValueError(f"--group {name!r}: no row file matches {patterns!r}.")
    return name.strip(), paths


def parse_pair(spec: str) -> tuple[str, str]:
    """`A>B` -> (A, B), the group names stripped."""
    better, sep, worse = spec.partition(">")
    if not sep or not better.strip() or not worse.strip():
        raise ValueError(f"--beats {spec!r}: expected A>B, two group names, for example \"qd2>qat2\".")
    return better.strip(), worse.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", action="append", required=True, help="NAME=GLOB[,GLOB...] (repeat)")
    parser.add_argument("--teacher", required=True, help="the teacher's row file (teacher__teacher.json)")
    parser.add_argument("--output", required=True, help="path prefix of the .md, .json and .png written")
    parser.add_argument("--beats", action="append", default=[],
                        help="\"A>B\": judge whether group A beats group B (mean BLEU, both test sets); repeat")
    parser.add_argument("--note", default="", help="a line added to the header (where and how the rows ran)")
    opts = parser.parse_args()
    try:
        groups = dict(parse_group(spec) for spec in opts.group)
        beats = [parse_pair(spec) for spec in opts.beats]
    except ValueError as error:
        sys.exit(str(error))
    if not os.path.isfile(opts.teacher):
        sys.exit(f"--teacher {opts.teacher} does not exist; pass a results folder's rows/teacher__teacher.json.")
    rows = {name: [json.load(open(path)) for path in paths] for name, paths in groups.items()}
    teacher = json.load(open(opts.teacher))
    header = run_header(
        command_line("scripts/report_frontier_groups.py"), git_commit(ROOT),
        rows="; ".join(f"{name}: {', '.join(paths)}" for name, paths in groups.items()),
        note=opts.note or "figures copied from the row files; each row's command, commit, machine and date are in it",
    )
    try:
        print(write_group_report(opts.output, header, rows, teacher, beats=beats))
    except ValueError as error:  # a --beats name that is no group
        sys.exit(str(error))


if __name__ == "__main__":
    main()
