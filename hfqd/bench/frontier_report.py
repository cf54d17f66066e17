"""The frontier's report: every row file present, the issue's targets judged on them, two plots."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

from ..eval.plot import Panel, Point, scatter_panels
from ..eval.report import table, targets_table, write_report

COLUMNS = [
    ("BLEU t16", "bleu_test2016_beam4"), ("BLEU t17", "bleu_test2017_beam4"),
    ("chrF t16", "chrf_test2016_beam4"), ("chrF t17", "chrf_test2017_beam4"),
    ("CT2 int8 BLEU t16", "ct2_int8_bleu_test2016_beam4"), ("CT2 int8 BLEU t17", "ct2_int8_bleu_test2017_beam4"),
    ("CT2 int8 speed vs teacher CT2 int8", "speed_ct2_vs_teacher_ct2"),
    ("same, batch 1", "speed_ct2_b1_vs_teacher_ct2_b1"),
    ("transformers speed vs teacher", "speed_hf_vs_teacher_hf"),
]
TEST_KEYS = ("bleu_test2016_beam4", "bleu_test2017_beam4")
ROW_BITS = re.compile(r"^qd(\d)$")  # the rows the QD targets are about


def collect(results_dir: str) -> list[dict]:
    """Every row's results file, teacher first."""
    paths = sorted(glob.glob(os.path.join(results_dir, "rows", "*.json")))
    rows = [json.loads(Path(path).read_text()) for path in paths]
    return sorted(rows, key=lambda r: (r["row"] != "teacher", r["shape"], r["row"]))


def _cell(value, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def frontier_table(rows: list[dict]) -> str:
    columns = ["shape", "row", "starts from", "params", "bits", "file (MB)", "vs teacher file"]
    columns += [name for name, _ in COLUMNS] + ["train (s)", "trained on"]
    cells = [[r["shape"], r["row"], r["start"], f"{r['params']:,}", _cell(r["bits"]), f"{r['file_mb']:.3f}",
              f"{r['vs_teacher_file']:.1f}x"] + [_cell(r["metrics"].get(key)) for _, key in COLUMNS]
             + [_cell(r["train_seconds"], "{:.0f}"), (r.get("trained_on") or "-").split(",")[0]] for r in rows]
    return table(columns, cells)


def _qd_rows(rows: list[dict], bits: int) -> list[dict]:
    """The ``bits``-bit QD students: quantized from their shape's kd (`qd<b>`) or from its start (`qd<b>-scratch`)."""
    return [r for r in rows if r["row"] in (f"qd{bits}", f"qd{bits}-scratch")]


def _best(rows: list[dict], teacher: dict) -> tuple[dict, float] | None:
    """The row closest to the teacher on its worse test set, with that gap."""
    scored = [(r, gap_to_teacher(r, teacher)) for r in rows]
    return min(scored, key=lambda item: item[1]) if scored else None


# (QD row, the row it should beat) at one shape: PM with the same bits, and QAT without a teacher from the same start
RIVALS = (("qd2", "pm2"), ("qd2", "qat2"), ("qd2-scratch", "qat2-scratch"))


# bits -> (at least this many times smaller than the teacher file, at most this many BLEU behind on each test set);
# 4-bit students must also decode at least twice as fast as the teacher in CT2 int8
TARGETS = {4: (10, 1.0), 2: (20, 2.5)}


def gap_to_teacher(row: dict, teacher: dict) -> float:
    """BLEU behind the teacher on the worse of the two test sets (negative: above it on both)."""
    return max(teacher[k] - row["metrics"][k] for k in TEST_KEYS)


def meets_target(row: dict, teacher: dict, bits: int) -> bool:
    """Whether one student row meets the issue's target for ``bits``-bit QD students."""
    size_x, gap = TARGETS[bits]
    fast = bits != 4 or row["metrics"]["speed_ct2_vs_teacher_ct2"] >= 2
    return gap_to_teacher(row, teacher) <= gap and fast and row["vs_teacher_file"] >= size_x


def frontier_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, judged on the rows present (a target with no candidate row is reported as such)."""
    teacher = next((r["metrics"] for r in rows if r["row"] == "teacher"), None)
    if teacher is None:
        return []
    out = []
    for bits, (size_x, gap) in TARGETS.items():
        best = _best(_qd_rows(rows, bits), teacher)
        measured = "no row yet" if best is None else (
            f"best {best[0]['shape']}: {best[1]:+.2f} BLEU below the teacher (worse test set), "
            f"{best[0]['vs_teacher_file']:.1f}x smaller, CT2 int8 "
            f"{best[0]['metrics']['speed_ct2_vs_teacher_ct2']:.2f}x the teacher's speed")
        target = (f"qd{bits}: >= {size_x}x smaller than the teacher file, within {gap} BLEU on both test sets"
                  + (", >= 2x the teacher's CT2 int8 speed" if bits == 4 else ""))
        out.append({"target": target, "measured": measured,
                    "met": any(meets_target(r, teacher, bits) for r in _qd_rows(rows, bits))})
    out += deploy_targets(rows, teacher)
    for shape in dict.fromkeys(r["shape"] for r in rows):
        by = {r["row"]: r["metrics"]["bleu_test2016_beam4"] for r in rows if r["shape"] == shape}
        for qd, other in RIVALS:
            if qd in by and other in by:
                out.append({"target": f"{shape}: {qd} beats {other}", "met": by[qd] > by[other],
                            "measured": f"{by[qd] - by[other]:+.2f} BLEU (test2016)"})
    return out


def deploy_targets(rows: list[dict], teacher: dict) -> list[dict]:
    """The CTranslate2 export's targets, judged on the qd4 row closest to the teacher: >= 2x the teacher's CT2 int8
    speed and >= 15x the teacher under transformers (batch 32, one thread); CT2 int8 BLEU within 0.3 of its own."""
    best = _best(_qd_rows(rows, 4), teacher)
    if best is None:
        return []
    row, m = best[0], best[0]["metrics"]
    drift = max(abs(m[f"ct2_int8_{k}"] - m[k]) for k in TEST_KEYS)
    return [
        {"target": "best qd4 in CT2 int8: >= 2x the teacher in CT2 int8 and >= 15x the teacher in transformers "
                   "(batch 32, 1 thread)",
         "measured": f"{row['shape']}: {m['speed_ct2_vs_teacher_ct2']:.2f}x and {m['speed_ct2_vs_teacher_hf']:.1f}x",
         "met": m["speed_ct2_vs_teacher_ct2"] >= 2 and m["speed_ct2_vs_teacher_hf"] >= 15},
        {"target": "best qd4: CT2 int8 BLEU within 0.3 of its transformers BLEU (beam 4, both test sets)",
         "measured": f"{row['shape']}: largest difference {drift:.2f}", "met": drift <= 0.3},
    ]


def write_frontier_report(results_dir: str, prefix: str, header: dict, plot: bool = True) -> str:
    """Markdown + JSON of every row present, the targets, and two plots (BLEU against size and CT2 speed)."""
    rows = collect(results_dir)
    targets = frontier_targets(rows)
    markdown = write_report(prefix, header, [frontier_table(rows), targets_table(targets)],
                            {"targets": targets, "rows": rows})
    if plot and rows:
        def points(x_of) -> list[Point]:
            return [Point(x_of(r), r["metrics"]["bleu_test2016_beam4"],
                          "teacher" if r["row"] == "teacher" else f"{r['shape']} {r['row']}",
                          "*" if r["row"] == "teacher" else "o") for r in rows]

        ylabel = "BLEU test2016, beam 4"
        scatter_panels(f"{prefix}.png", [
            Panel(points(lambda r: r["file_mb"]), "size on disk (MB, log)", ylabel, log_x=True),
            Panel(points(lambda r: r["metrics"]["speed_ct2_vs_teacher_ct2"]),
                  "CT2 int8 speed vs teacher, batch 32", ylabel),
        ])
    return markdown


# ---- students trained alike at several seeds ----


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _spread(rows: list[dict], key: str) -> str:
    """`mean (seed, seed, ...)`, or the one value."""
    values = [r["metrics"][key] for r in rows]
    each = ", ".join(f"{v:.2f}" for v in values)
    return each if len(values) == 1 else f"{_mean(values):.2f} ({each})"


def group_table(groups: dict[str, list[dict]], teacher: dict) -> str:
    """One line per group of rows (a student at several seeds): means, every seed's BLEU, gap to the teacher."""
    columns = ["student", "seeds", "starts from", "bits", "file (MB)", "vs teacher file", "BLEU t16", "BLEU t17",
               "behind teacher, worse test set (mean; worst seed)", "CT2 int8 BLEU t16 / t17",
               "CT2 int8 speed vs teacher CT2 int8", "transformers speed vs teacher", "epochs", "train (s)",
               "trained on"]

    def mean(rows: list[dict], key: str) -> str:
        return f"{_mean([r['metrics'][key] for r in rows]):.2f}"

    def each(rows: list[dict], key: str) -> str:
        return ", ".join(_cell(r[key], "{:.0f}") for r in rows)

    t = teacher["metrics"]
    cells = [["teacher", "-", teacher["start"], "-", f"{teacher['file_mb']:.2f}", "1.0x", mean([teacher], TEST_KEYS[0]),
              mean([teacher], TEST_KEYS[1]), "-", " / ".join(mean([teacher], "ct2_int8_" + k) for k in TEST_KEYS),
              mean([teacher], "speed_ct2_vs_teacher_ct2"), mean([teacher], "speed_hf_vs_teacher_hf"), "-", "-", "-"]]
    for name, rows in groups.items():
        first, gaps = rows[0], [gap_to_teacher(r, t) for r in rows]
        cells.append([
            name, str(len(rows)), first["start"], _cell(first["bits"]), f"{first['file_mb']:.2f}",
            f"{first['vs_teacher_file']:.1f}x", _spread(rows, TEST_KEYS[0]), _spread(rows, TEST_KEYS[1]),
            f"{gaps[0]:.2f}" if len(rows) == 1 else f"{_mean(gaps):.2f} (worst {max(gaps):.2f})",
            " / ".join(mean(rows, "ct2_int8_" + k) for k in TEST_KEYS), mean(rows, "speed_ct2_vs_teacher_ct2"),
            mean(rows, "speed_hf_vs_teacher_hf"), each(rows, "train_epochs"), each(rows, "train_seconds"),
            (first.get("trained_on") or "-").split(",")[0],
        ])
    return table(columns, cells)


def group_targets(groups: dict[str, list[dict]], teacher: dict) -> list[dict]:
    """The issue's QD targets judged seed by seed: a group meets one only if every seed does."""
    out = []
    for name, rows in groups.items():
        match = ROW_BITS.match(rows[0]["row"])
        if match is None or int(match[1]) not in TARGETS:
            continue
        bits = int(match[1])
        size_x, gap = TARGETS[bits]
        ok = [meets_target(r, teacher, bits) for r in rows]
        out.append({
            "target": f"{name}: >= {size_x}x smaller, within {gap} BLEU on both test sets"
                      + (", >= 2x the teacher's CT2 int8 speed" if bits == 4 else "") + ", every seed",
            "measured": f"{sum(ok)} of {len(ok)} seeds; worst {max(gap_to_teacher(r, teacher) for r in rows):.2f} "
                        f"BLEU behind, {rows[0]['vs_teacher_file']:.1f}x smaller, CT2 int8 "
                        f"{min(r['metrics']['speed_ct2_vs_teacher_ct2'] for r in rows):.2f}x or faster",
            "met": all(ok),
        })
    return out


def comparison_targets(groups: dict[str, list[dict]], pairs: list[tuple[str, str]]) -> list[dict]:
    """For each (A, B) pair of group names, whether A beats B: met when A's mean BLEU is higher on both test sets."""
    out = []
    for better, worse in pairs:
        missing = [name for name in (better, worse) if name not in groups]
        if missing:
            raise ValueError(f"No group named {missing[0]!r} to compare; groups: {', '.join(groups)}.")
        margins = [_mean([r["metrics"][k] for r in groups[better]]) - _mean([r["metrics"][k] for r in groups[worse]])
                   for k in TEST_KEYS]
        out.append({"target": f"{better} beats {worse} (mean BLEU, both test sets)",
                    "measured": " / ".join(f"{m:+.2f}" for m in margins) + " BLEU (test2016 / test2017)",
                    "met": all(m > 0 for m in margins)})
    return out


def write_group_report(prefix: str, header: dict, groups: dict[str, list[dict]], teacher: dict,
                       plot: bool = True, beats: list[tuple[str, str]] = ()) -> str:
    """Markdown + JSON of ``groups`` (name -> the rows of one student at its seeds) beside ``teacher``'s row, the
    targets judged seed by seed (and "A beats B" for each pair in ``beats``), and the two frontier plots at each
    group's mean."""
    if not groups:
        raise ValueError("No rows to report: give at least one group with a row file.")
    targets = group_targets(groups, teacher["metrics"]) + comparison_targets(groups, list(beats))
    markdown = write_report(prefix, header, [group_table(groups, teacher), targets_table(targets)],
                            {"targets": targets, "teacher": teacher, "groups": groups})
    if plot:
        def points(x_of) -> list[Point]:  # numbered: long group names would cover each other
            teacher_point = Point(x_of([teacher]), teacher["metrics"][TEST_KEYS[0]], "teacher", "*")
            return [teacher_point] + [
                Point(x_of(rows), _mean([r["metrics"][TEST_KEYS[0]] for r in rows]), str(i), legend=f"{i} {name}")
                for i, (name, rows) in enumerate(groups.items(), 1)]

        ylabel = "BLEU test2016, beam 4 (mean of seeds)"
        scatter_panels(f"{prefix}.png", [
            Panel(points(lambda rows: rows[0]["file_mb"]), "size on disk (MB, log)", ylabel, log_x=True),
            Panel(points(lambda rows: _mean([r["metrics"]["speed_ct2_vs_teacher_ct2"] for r in rows])),
                  "CT2 int8 speed vs teacher, batch 32", ylabel, legend=True, legend_loc="center right",
                  legend_columns=1),
        ], height=6.0)
    return markdown
