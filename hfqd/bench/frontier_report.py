"""The frontier's report: every row file present, the issue's targets judged on them, two plots."""

from __future__ import annotations

import glob
import json
import os
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


def _best(rows: list[dict], row: str, teacher: dict) -> tuple[dict, float] | None:
    """The row of that name closest to the teacher on its worse test set, with that gap."""
    scored = [(r, max(teacher[k] - r["metrics"][k] for k in TEST_KEYS)) for r in rows if r["row"] == row]
    return min(scored, key=lambda item: item[1]) if scored else None


def frontier_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, judged on the rows present (a target with no candidate row is reported as such)."""
    teacher = next((r["metrics"] for r in rows if r["row"] == "teacher"), None)
    if teacher is None:
        return []
    out = []
    for bits, size_x, gap in ((4, 10, 1.0), (2, 20, 2.5)):
        def ok(r: dict) -> bool:
            close = max(teacher[k] - r["metrics"][k] for k in TEST_KEYS) <= gap
            fast = bits != 4 or r["metrics"]["speed_ct2_vs_teacher_ct2"] >= 2
            return close and fast and r["vs_teacher_file"] >= size_x

        best = _best(rows, f"qd{bits}", teacher)
        measured = "no row yet" if best is None else (
            f"best {best[0]['shape']}: {best[1]:+.2f} BLEU below the teacher (worse test set), "
            f"{best[0]['vs_teacher_file']:.1f}x smaller, CT2 int8 "
            f"{best[0]['metrics']['speed_ct2_vs_teacher_ct2']:.2f}x the teacher's speed")
        target = (f"qd{bits}: >= {size_x}x smaller than the teacher file, within {gap} BLEU on both test sets"
                  + (", >= 2x the teacher's CT2 int8 speed" if bits == 4 else ""))
        out.append({"target": target, "measured": measured, "met": any(ok(r) for r in rows if r["row"] == f"qd{bits}")})
    out += deploy_targets(rows, teacher)
    for shape in dict.fromkeys(r["shape"] for r in rows if r["row"] == "qd2"):
        by = {r["row"]: r["metrics"]["bleu_test2016_beam4"] for r in rows if r["shape"] == shape}
        for other in ("pm2", "qat2"):
            if other in by:
                out.append({"target": f"{shape}: qd2 beats {other}", "met": by["qd2"] > by[other],
                            "measured": f"{by['qd2'] - by[other]:+.2f} BLEU (test2016)"})
    return out


def deploy_targets(rows: list[dict], teacher: dict) -> list[dict]:
    """The CTranslate2 export's targets, judged on the qd4 row closest to the teacher: >= 2x the teacher's CT2 int8
    speed and >= 15x the teacher under transformers (batch 32, one thread); CT2 int8 BLEU within 0.3 of its own."""
    best = _best(rows, "qd4", teacher)
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
