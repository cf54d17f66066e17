"""Run by test_teacher_cache.py under `accelerate launch --multi_gpu --num_processes 2` (CPU, gloo): both processes
build one teacher cache in small shards; each records which shards it built."""

import json
import os
import sys

from transformers import DataCollatorForSeq2Seq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import hfqd.distill.shards as shards  # noqa: E402
from hfqd.distill.teacher_cache import build_teacher_cache  # noqa: E402
from hfqd.utils import end_processes  # noqa: E402
from tests.helpers import tiny_corpus, tiny_pair  # noqa: E402


def main(out_dir: str) -> None:
    from accelerate import PartialState

    state = PartialState(cpu=True, backend="gloo")  # as the Trainer sets it up on CPU; shared by build_in_shards
    _, tokenizer, data = tiny_corpus(120)
    teacher, _ = tiny_pair(len(tokenizer))
    built = []
    real_save = shards.Dataset.save_to_disk

    def recording_save(self, path, *args, **kwargs):
        built.append(len(self))
        return real_save(self, path, *args, **kwargs)

    shards.Dataset.save_to_disk = recording_save
    cache = build_teacher_cache(teacher, data.datasets["train"], DataCollatorForSeq2Seq(tokenizer, model=teacher),
                                os.path.join(out_dir, "cache"), top_k=4, temperature=1.0, shard_size=16)
    with open(os.path.join(out_dir, f"rank{state.process_index}.json"), "w") as f:
        json.dump({"built_rows": built, "rows": len(cache), "world": state.num_processes}, f)


if __name__ == "__main__":
    main(sys.argv[1])
    end_processes()
