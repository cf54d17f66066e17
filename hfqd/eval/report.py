"""Results tables: one row per method, written as markdown and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

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


def write_results(path_prefix: str, rows: list[ResultRow], metric_names: list[str], header: dict[str, Any]) -> str:
    """Write ``{prefix}.json`` and ``{prefix}.md``; returns the markdown."""
    table = markdown_table(rows, metric_names)
    meta = "\n".join(f"- {k}: {v}" for k, v in header.items())
    markdown = f"{meta}\n\n{table}\n"
    atomic_write_text(f"{path_prefix}.md", markdown)
    atomic_write_text(
        f"{path_prefix}.json", json.dumps({**header, "rows": [asdict(r) for r in rows]}, indent=2, default=str)
    )
    return markdown
