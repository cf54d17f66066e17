"""Build a per-example Arrow dataset in shards: split across processes, written as it goes, resumable.

Teacher work over a whole corpus (its top-k distributions, its translations) takes hours at WMT scale. Each shard
is computed by one process, saved with `save_to_disk` to a temporary folder and renamed into place, so an
interrupted build loses at most the shards in progress, and a rerun computes only the missing ones.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Callable

from accelerate import PartialState
from datasets import Dataset, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

SHARD_PREFIX = "shard-"


def shard_path(root: str, index: int) -> str:
    return os.path.join(root, f"{SHARD_PREFIX}{index:05d}")


def _publish(tmp: str, path: str) -> None:
    """Rename a finished shard into place. If another run building the same cache (its key is its content, so the
    shard is the same) got there first, the rename finds a full folder: keep that one."""
    try:
        os.replace(tmp, path)
    except OSError:
        if not os.path.isdir(path):
            raise


def build_in_shards(
    root: str,
    n_examples: int,
    make_shard: Callable[[int, int], Dataset],
    shard_size: int,
    desc: str,
) -> Dataset:
    """The dataset whose rows ``[start, end)`` come from ``make_shard(start, end)``, built under ``root``.

    Under `accelerate launch` process `r` builds the shards `i` with `i % world_size == r` (each example once), then
    every process waits for the others and loads them all (memory-mapped, never held in RAM).
    """
    if shard_size < 1:
        raise ValueError(f"`shard_size` must be positive, got {shard_size}.")
    state = PartialState()
    os.makedirs(root, exist_ok=True)
    n_shards = max(1, -(-n_examples // shard_size))
    mine = [i for i in range(n_shards) if i % state.num_processes == state.process_index]
    todo = [i for i in mine if not os.path.isdir(shard_path(root, i))]
    if len(todo) < len(mine):
        logger.info(f"{desc}: resuming, {len(mine) - len(todo)} of this process's {len(mine)} shards are done.")
    for index in tqdm(todo, desc=desc, unit="shard", disable=not todo):
        start, end = index * shard_size, min(n_examples, (index + 1) * shard_size)
        shard = make_shard(start, end)
        if len(shard) != end - start:
            raise RuntimeError(f"Shard {index} has {len(shard)} rows for examples {start}-{end}.")
        tmp = tempfile.mkdtemp(dir=root, prefix=".tmp-")
        try:
            shard.save_to_disk(tmp)
            _publish(tmp, shard_path(root, index))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    state.wait_for_everyone()
    missing = [i for i in range(n_shards) if not os.path.isdir(shard_path(root, i))]
    if missing:
        raise RuntimeError(f"{root} lacks shards {missing[:5]} after the build; another process failed.")
    return concatenate_datasets([load_from_disk(shard_path(root, i)) for i in range(n_shards)])

