"""Sequence-level distillation targets (Kim & Rush, 2016): the teacher's own beam-search translations.

Beam search over a whole training corpus is the one expensive step of sequence-level KD. It runs in transformers
by default, or in CTranslate2 (``sequence_engine="ctranslate2"``) on a float32 export of the same teacher: that
export reproduces transformers' greedy tokens exactly and its beam-4 BLEU within 0.03
(`benchmarks/results/ct2_export.md`), at several times the speed on CPU.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from typing import Callable

import torch
from datasets import Dataset, concatenate_datasets
from huggingface_hub.constants import HF_HOME
from torch import nn
from tqdm.auto import tqdm

from .fingerprint import data_fingerprint, teacher_fingerprint
from .shards import build_in_shards

logger = logging.getLogger(__name__)


def _strip(ids: list[int], pad_id: int, eos_id: int | None, start_id: int | None) -> list[int]:
    if ids and start_id is not None and ids[0] == start_id:
        ids = ids[1:]
    out = []
    for token in ids:
        if token == pad_id:
            continue
        out.append(token)
        if token == eos_id:
            break
    return out


@torch.no_grad()
def generate_targets(teacher: nn.Module, input_ids: list[list[int]], num_beams: int, max_new_tokens: int,
                     batch_size: int) -> list[list[int]]:
    """Beam-search the teacher over tokenized sources; returns label ids (no start token, ending in eos)."""
    config = teacher.config
    pad_id = config.pad_token_id
    device = next(teacher.parameters()).device
    order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))  # length-sorted batches pad less
    results: list[list[int] | None] = [None] * len(input_ids)
    teacher.eval()
    for start in tqdm(range(0, len(order), batch_size), desc="teacher translations", unit="batch", leave=False):
        idx = order[start : start + batch_size]
        width = max(len(input_ids[i]) for i in idx)
        batch = torch.full((len(idx), width), pad_id, dtype=torch.long)
        for row, i in enumerate(idx):
            batch[row, : len(input_ids[i])] = torch.tensor(input_ids[i])
        mask = (batch != pad_id).long()
        out = teacher.generate(
            input_ids=batch.to(device), attention_mask=mask.to(device), num_beams=num_beams,
            max_new_tokens=max_new_tokens, do_sample=False,
        )
        for row, i in enumerate(idx):
            results[i] = _strip(out[row].tolist(), pad_id, config.eos_token_id, config.decoder_start_token_id)
    return results  # type: ignore[return-value]


def generate_targets_ctranslate2(translator, tokenizer, input_ids: list[list[int]], num_beams: int,
                                 max_new_tokens: int, batch_size: int, patience: int = 2) -> list[list[int]]:
    """:func:`generate_targets` with a `ctranslate2.Translator`: the same label ids (no start token, ending in eos).

    CTranslate2 leaves the end token out of its hypotheses and out of its length limit, so one token less is asked
    and eos is appended: a translation cut at the limit ends where transformers forces eos. Like transformers, it
    may end at the first step (CTranslate2's default minimum length is 1). ``patience`` 2 lets the beam search run
    about as long as transformers' (its default 1 stops at the first ``num_beams`` finished hypotheses; measured in
    `scripts/benchmark_ct2_export.py`).
    """
    eos_id = tokenizer.eos_token_id
    order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
    results: list[list[int] | None] = [None] * len(input_ids)
    for start in tqdm(range(0, len(order), batch_size), desc="teacher translations", unit="batch", leave=False):
        idx = order[start : start + batch_size]
        batch = translator.translate_batch(
            [tokenizer.convert_ids_to_tokens(input_ids[i]) for i in idx], beam_size=num_beams,
            max_decoding_length=max_new_tokens - 1, min_decoding_length=0, max_batch_size=batch_size,
            patience=patience,
        )
        for i, result in zip(idx, batch):
            results[i] = tokenizer.convert_tokens_to_ids(result.hypotheses[0]) + [eos_id]
    return results  # type: ignore[return-value]


def _ctranslate2_decoder(teacher: nn.Module, tokenizer) -> Callable[..., list[list[int]]]:
    """A decoder running a float32 CTranslate2 export of ``teacher`` (exported once, on first use)."""
    if tokenizer is None:
        raise ValueError("sequence_engine='ctranslate2' needs the teacher's tokenizer: pass "
                         "`processing_class=tokenizer` to the trainer.")
    from ..export.ct2 import export_ctranslate2, require_ctranslate2

    translator = None

    def decode(input_ids, num_beams, max_new_tokens, batch_size):
        nonlocal translator
        if translator is None:
            ctranslate2, _ = require_ctranslate2()
            on_gpu = next(teacher.parameters()).device.type == "cuda" and ctranslate2.get_cuda_device_count() > 0
            with tempfile.TemporaryDirectory(prefix="hfqd-seqkd-") as tmp:
                folder = export_ctranslate2(teacher, os.path.join(tmp, "teacher"), quantization="float32",
                                            tokenizer=tokenizer)
                translator = ctranslate2.Translator(folder, device="cuda" if on_gpu else "cpu",
                                                    intra_threads=torch.get_num_threads())
        return generate_targets_ctranslate2(translator, tokenizer, input_ids, num_beams, max_new_tokens,
                                            batch_size)

    return decode


def with_teacher_targets(teacher: nn.Module, dataset: Dataset, args, shard_size: int = 4096,
                         tokenizer=None) -> Dataset:
    """``dataset`` with its `labels` replaced by the teacher's translations, cached on disk.

    The translations are generated in shards (split across processes under `accelerate launch`), each written as
    it finishes, so an interrupted run resumes where it stopped (see :mod:`hfqd.distill.shards`). The cache key
    covers the teacher (config and weights), the tokenized corpus (its token ids) and the decoding
    settings, so a changed teacher or corpus never reuses stale targets. ``tokenizer`` is needed with
    ``args.sequence_engine == "ctranslate2"`` only.
    """
    if "input_ids" not in dataset.column_names:
        raise ValueError("Sequence-level distillation needs a tokenized train dataset with an `input_ids` column.")
    settings = {
        "teacher": teacher_fingerprint(teacher),
        "data": data_fingerprint(dataset),
        "rows": len(dataset),
        "beams": args.sequence_num_beams,
        "max_new_tokens": args.sequence_max_length,
    }
    if args.sequence_engine != "transformers":  # transformers' targets keep the keys they were cached under
        settings["engine"] = args.sequence_engine
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:24]
    if args.sequence_engine == "ctranslate2":
        decode = _ctranslate2_decoder(teacher, tokenizer)
    else:
        decode = functools.partial(generate_targets, teacher)
    cache_root = args.sequence_cache_dir or os.path.join(HF_HOME, "hfqd", "sequence_kd")
    sources = dataset.select_columns(["input_ids"])

    def make_shard(start: int, end: int) -> Dataset:
        ids = [list(x) for x in sources[start:end]["input_ids"]]
        labels = decode(ids, args.sequence_num_beams, args.sequence_max_length, args.sequence_batch_size)
        return Dataset.from_dict({"labels": labels})

    targets = build_in_shards(os.path.join(cache_root, key), len(dataset), make_shard, shard_size,
                              desc="teacher translations")
    return concatenate_datasets([dataset.remove_columns("labels"), targets], axis=1)
