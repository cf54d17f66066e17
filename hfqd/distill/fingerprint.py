"""Keys for the caches of the teacher's work (its top-k distributions, its translations): what the cached numbers
depend on, and nothing else.

A key follows content, not location: the same teacher or corpus reached through another folder (a copy, another
checkout, a worktree) finds its cache, while a changed weight or token id never reuses a stale one. `datasets`'
own fingerprint of a tokenized corpus is not enough here: it hashes the tokenizer object, whose folder path is part
of it, so the same corpus tokenized from another checkout rebuilt a cache (measured: 5 minutes on Multi30k, hours
at WMT size)."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import torch
from datasets import Dataset
from torch import nn


def teacher_fingerprint(teacher: nn.Module) -> str:
    """Hash of the teacher's config and weights (not of the folder it was loaded from)."""
    h = hashlib.sha256()
    config = getattr(teacher, "config", None)
    if config is not None:
        settings = json.loads(config.to_json_string(use_diff=False))
        settings.pop("_name_or_path", None)  # where it was loaded from, not what it computes
        h.update(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())  # 0-d tensors too
    return h.hexdigest()[:16]


def data_fingerprint(dataset: Dataset) -> str:
    """Hash of a dataset's rows as they are (its column names, types and values, after any `select`), so it covers
    the corpus, the tokenizer, the length limits and replaced labels alike."""
    table = dataset.with_format("arrow")[:]
    h = hashlib.sha256()
    for name in sorted(table.column_names):
        column = table.column(name).combine_chunks()
        h.update(f"{name}:{column.type}".encode())
        while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            h.update(column.value_lengths().fill_null(-1).to_numpy().tobytes())
            column = column.flatten()
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            h.update(column.fill_null(0).to_numpy().tobytes())
        else:  # text or nested records: their Python values
            h.update(json.dumps(column.to_pylist(), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


__all__ = ["data_fingerprint", "teacher_fingerprint"]
