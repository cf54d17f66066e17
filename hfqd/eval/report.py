"""Results files: every results file in the repo (recipes, benchmarks, scripts) is written by :func:`write_report`,
so each has the same provenance header and a markdown and a JSON twin."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from ..utils import atomic_write_text


@dataclass
class ResultRow:
    """One model's line in a comparison table.

    `size_mb` is the theoretical size (paper formula: codes + 2 floats per bucket + fp32 for the rest);
    `file_mb` the size of the saved weights file (packed safetensors for quantized models), when it was saved;
    `fp32_mb` the same model's size with every stored value in fp32 (what ratios and model cards compare with);
    `huffman_mb` the theoretical size with Huffman-coded level indices (quantized models); `bits` the mean bits per
    quantized weight (`None` for full precision; fractional after bit allocation).
    """

    method: str
    description: str
    bits: float | None
    params: int
    size_mb: float
    compression: float
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float | None = None
    file_mb: float | None = None
    huffman_mb: float | None = None
    fp32_mb: float | None = None
    library: str = "hfqd"
    extra: dict[str, Any] = field(default_factory=dict)


def markdown_table(rows: list[ResultRow], metric_names: list[str], show_library: bool = False) -> str:
    """A markdown table with the metrics in the given order (and the library of each row, for comparisons)."""
    header = ["method"] + (["library"] if show_library else [])
    header += ["description", "bits", "params", "size (MB)", "Huffman (MB)", "file (MB)", "vs teacher fp32"]
    header += metric_names + ["train (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [
            r.method,
            *([r.library] if show_library else []),
            r.description,
            "32" if r.bits is None else f"{r.bits:.2f}".rstrip("0").rstrip("."),
            f"{r.params:,}",
            f"{r.size_mb:.3f}",
            "-" if r.huffman_mb is None else f"{r.huffman_mb:.3f}",
            "-" if r.file_mb is None else f"{r.file_mb:.3f}",
            f"{r.compression:.1f}x",
            *[f"{r.metrics[m]:.2f}" if m in r.metrics else "-" for m in metric_names],
            "-" if r.train_seconds is None else f"{r.train_seconds:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table of already formatted cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: list[dict]) -> str:
    """The `## Targets` section of a benchmark: each target, what was measured, and whether it was met."""
    rows = [(t["target"], t["measured"], "yes" if t["met"] else "NO") for t in targets]
    return "## Targets\n\n" + table(["target", "measured", "met"], rows)


def write_report(path_prefix: str, header: dict[str, Any], sections: list[str], data: dict[str, Any]) -> str:
    """Write ``{prefix}.md`` (the header as a list, then each markdown section) and ``{prefix}.json`` (the header
    and ``data``), each atomically; returns the markdown.

    ``header`` comes from :func:`hfqd.utils.run_header` (command, commit, machine, date, then what the run was).
    """
    meta = "\n".join(f"- {k}: {v}" for k, v in header.items())
    markdown = "\n\n".join([meta, *[s for s in sections if s]]) + "\n"
    folder = os.path.dirname(path_prefix)
    if folder:
        os.makedirs(folder, exist_ok=True)
    atomic_write_text(f"{path_prefix}.md", markdown)
    atomic_write_text(f"{path_prefix}.json", json.dumps({**header, **data}, indent=2, default=str))
    return markdown


def write_results(path_prefix: str, rows: list[ResultRow], metric_names: list[str], header: dict[str, Any]) -> str:
    """A recipe's results: the rows as a table (:func:`write_report`); returns the markdown."""
    return write_report(path_prefix, header, [markdown_table(rows, metric_names)],
                        {"rows": [asdict(r) for r in rows]})
