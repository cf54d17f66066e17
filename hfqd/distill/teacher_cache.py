"""Teacher once: the teacher's top-k distribution at every target position, computed once and reused.

With token-level distillation under fixed target prefixes (gold labels, or the teacher's own translations for
sequence-level KD) and the teacher in eval mode, the teacher's distribution at each position is a fixed function of
the example. Stored once, it serves every epoch, every row and every run, so distillation costs about what
training on labels costs.

Per example and target position the cache keeps the teacher's top-k token ids, their log-probabilities at the
training temperature, and the probability mass of all other tokens ("rest"); :func:`~hfqd.distill.losses.
distillation_loss` takes the KL divergence over those k + 1 buckets. It is a `datasets` Arrow dataset, memory-mapped,
built in resumable shards (across processes under `accelerate launch`), under a key that covers everything the
numbers depend on: a changed teacher, corpus, tokenization, k, temperature or teacher dtype builds a new cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset
from torch import nn

from .fingerprint import data_fingerprint, teacher_fingerprint
from ..eval.deploy import folder_bytes
from .shards import build_in_shards

logger = logging.getLogger(__name__)

IDS, LOGPROBS, REST = "teacher_topk_ids", "teacher_topk_logprobs", "teacher_rest_mass"
CACHE_COLUMNS = (IDS, LOGPROBS, REST)
COMPLETE_NAME = "cache.json"


def cache_key(teacher: nn.Module, dataset: Dataset, top_k: int, temperature: float, teacher_dtype: str) -> str:
    """Hash of what the cached numbers depend on. The dataset's content covers the corpus, the tokenizer, the
    maximum lengths and the sequence-KD targets (see :mod:`hfqd.distill.fingerprint`)."""
    payload = {
        "teacher": teacher_fingerprint(teacher),
        "data": data_fingerprint(dataset),
        "rows": len(dataset),
        "top_k": top_k,
        "temperature": temperature,
        "teacher_dtype": teacher_dtype,
        "format": 1,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def estimated_bytes(dataset: Dataset, top_k: int, vocab_size: int) -> int:
    """Size on disk of a cache: per target token, k ids and k log-probabilities plus the rest mass."""
    tokens = int(sum(len(x) for x in dataset.with_format("numpy")["labels"]))
    id_bytes = 2 if vocab_size <= 2**16 else 4
    return tokens * (top_k * (id_bytes + 4) + 4)


@torch.no_grad()
def teacher_topk(teacher: nn.Module, batch: dict, top_k: int, temperature: float):
    """Top-k ids, their log-probabilities at ``temperature`` and the log of the rest mass, `[B, L, k]` / `[B, L]`.

    The teacher reads the gold prefixes (`decoder_input_ids`, made from `labels` when a collator did not add them);
    the labels themselves are not passed, which spares the teacher its own loss over the whole vocabulary.
    """
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "decoder_input_ids" not in inputs:
        inputs["decoder_input_ids"] = teacher.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
    logits = teacher(**inputs).logits.float()
    log_p = torch.log_softmax(logits / temperature, dim=-1)
    values, ids = log_p.topk(min(top_k, log_p.shape[-1]), dim=-1)
    log_rest = torch.logsumexp(log_p.scatter(-1, ids, float("-inf")), dim=-1)
    return ids, values, log_rest


def _shard_table(ids, values, log_rest, lengths, id_type) -> pa.Table:
    """One row per example: flat lists of its `length x k` ids and log-probabilities, and `length` rest masses."""
    k = ids.shape[-1]
    flat_ids = np.concatenate([ids[i, :n].reshape(-1) for i, n in enumerate(lengths)]).astype(id_type)
    flat_values = np.concatenate([values[i, :n].reshape(-1) for i, n in enumerate(lengths)]).astype(np.float32)
    flat_rest = np.concatenate([np.exp(log_rest[i, :n]) for i, n in enumerate(lengths)]).astype(np.float32)
    token_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.table({
        IDS: pa.ListArray.from_arrays(pa.array(token_offsets * k), pa.array(flat_ids)),
        LOGPROBS: pa.ListArray.from_arrays(pa.array(token_offsets * k), pa.array(flat_values)),
        REST: pa.ListArray.from_arrays(pa.array(token_offsets), pa.array(flat_rest)),
    })


def build_teacher_cache(
    teacher: nn.Module,
    dataset: Dataset,
    collator,
    cache_dir: str,
    top_k: int,
    temperature: float,
    teacher_dtype: str = "float32",
    batch_size: int = 64,
    shard_size: int = 4096,
) -> Dataset:
    """The cache of ``teacher`` on ``dataset`` (tokenized, with `labels`), built if needed; one row per example.

    Raises:
        ValueError: a classifier teacher (see :class:`~hfqd.QuantizedDistillationTrainer`), or no `labels`.
        OSError: the estimated size exceeds the free disk space (checked before any work).
    """
    if not getattr(getattr(teacher, "config", None), "is_encoder_decoder", False):
        raise ValueError(
            "The teacher cache stores per-token distributions of a translation teacher under fixed target prefixes. "
            "For image classifiers the recipe's random crops and flips give the teacher a different input every "
            "epoch, so cached outputs would be wrong: train without --teacher_cache_dir."
        )
    if "labels" not in dataset.column_names:
        raise ValueError("The teacher cache needs a tokenized train dataset with `labels`.")
    if top_k < 1:
        raise ValueError(f"`teacher_top_k` must be at least 1, got {top_k}.")
    vocab = teacher.get_output_embeddings().weight.shape[0]
    root = os.path.join(cache_dir, cache_key(teacher, dataset, top_k, temperature, teacher_dtype))
    if not os.path.isfile(os.path.join(root, COMPLETE_NAME)):
        _check_disk(dataset, top_k, vocab, cache_dir)
    id_type = np.uint16 if vocab <= 2**16 else np.int32
    device = next(teacher.parameters()).device
    columns = [c for c in dataset.column_names if c in ("input_ids", "attention_mask", "labels")]
    teacher.eval()

    def make_shard(start: int, end: int) -> Dataset:
        tables = []
        for first in range(start, end, batch_size):
            rows = dataset.select(range(first, min(end, first + batch_size))).select_columns(columns)
            features = [dict(row) for row in rows]
            lengths = [len(f["labels"]) for f in features]
            batch = {k: v.to(device) for k, v in collator(features).items()}
            ids, values, log_rest = (t.cpu().numpy() for t in teacher_topk(teacher, batch, top_k, temperature))
            tables.append(_shard_table(ids, values, log_rest, lengths, id_type))
        return Dataset(pa.concat_tables(tables))

    cache = build_in_shards(root, len(dataset), make_shard, shard_size, desc=f"teacher cache (top-{top_k})")
    size = folder_bytes(root)
    if not os.path.isfile(os.path.join(root, COMPLETE_NAME)):
        info = {"rows": len(cache), "top_k": top_k, "temperature": temperature, "bytes": size}
        tmp = os.path.join(root, f"{COMPLETE_NAME}.tmp-{os.getpid()}")  # every process may write it; same content
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(root, COMPLETE_NAME))
    logger.info(f"Teacher cache {root}: {len(cache)} examples, {size / 1e6:.1f} MB on disk.")
    return cache


def _check_disk(dataset: Dataset, top_k: int, vocab: int, cache_dir: str) -> None:
    os.makedirs(cache_dir, exist_ok=True)
    need, free = estimated_bytes(dataset, top_k, vocab), shutil.disk_usage(cache_dir).free
    logger.info(f"Building a teacher cache of about {need / 1e6:.1f} MB in {cache_dir}.")
    if need > free:
        raise OSError(
            f"The teacher cache needs about {need / 1e9:.2f} GB but {cache_dir} has {free / 1e9:.2f} GB free. "
            "Free space, choose another --teacher_cache_dir, or lower --teacher_top_k."
        )


def cached_k(cache: Dataset) -> int:
    """The number of stored tokens per position (``top_k``, or the vocabulary size if that is smaller)."""
    first = cache[0]
    return len(first[IDS]) // len(first[REST])


def pad_cached(features: list[dict], length: int, k: int) -> dict[str, torch.Tensor]:
    """Batch tensors `[B, length, k]` (ids, log-probabilities) and `[B, length]` (rest mass) from cached rows;
    positions past an example's labels are padding (masked by the labels in the loss)."""
    ids = torch.zeros(len(features), length, k, dtype=torch.long)
    logprobs = torch.zeros(len(features), length, k)
    rest = torch.zeros(len(features), length)
    for i, f in enumerate(features):
        n = len(f[REST])
        ids[i, :n] = torch.as_tensor(np.asarray(f[IDS], dtype=np.int64)).view(n, k)
        logprobs[i, :n] = torch.as_tensor(np.asarray(f[LOGPROBS], dtype=np.float32)).view(n, k)
        rest[i, :n] = torch.as_tensor(np.asarray(f[REST], dtype=np.float32))
    return {IDS: ids, LOGPROBS: logprobs, REST: rest}


class CachedTeacherCollator:
    """Wraps a collator: the cached teacher columns are padded to the batch's label length beside its output
    (batches without them, from an evaluation set, go to the wrapped collator as they are)."""

    def __init__(self, collator, k: int):
        self.collator, self.k = collator, k

    def __call__(self, features: list[dict]) -> dict:
        if CACHE_COLUMNS[0] not in features[0]:  # an evaluation set: the live teacher scores it
            return self.collator(features)
        cached = [{c: f.pop(c) for c in CACHE_COLUMNS} for f in features]
        batch = self.collator(features)
        batch.update(pad_cached(cached, batch["labels"].shape[1], self.k))
        return batch
