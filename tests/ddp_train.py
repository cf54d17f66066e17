"""Run by test_distributed.py under `accelerate launch --multi_gpu --num_processes 2` (CPU, gloo).

Trains a tiny quantized student (mode `qd`: 2-bit stochastic rounding; mode `dq`: learned 2-bit points with bit
allocation, as the dq2 row) and saves each rank's quantized weights, points and allocation, so the test can check
that both processes hold bit-identical quantized models.
"""

import os
import sys

import torch
from transformers import DataCollatorForSeq2Seq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hfqd import DistillationArguments, QuantizedDistillationTrainer  # noqa: E402
from hfqd.quant import quantized_parameters  # noqa: E402
from hfqd.utils import end_processes  # noqa: E402
from tests.helpers import tiny_corpus, tiny_pair  # noqa: E402


def main(out_dir: str, mode: str = "qd") -> None:
    _, tokenizer, data = tiny_corpus()
    teacher, student = tiny_pair(len(tokenizer))
    method = dict(rounding="stochastic") if mode == "qd" else dict(
        quant_method="learned", allocate_bits=True, allocation_batches=2, points_init="uniform")
    args = DistillationArguments(
        output_dir=os.path.join(out_dir, "run"), max_steps=4, per_device_train_batch_size=8, learning_rate=3e-3,
        report_to="none", save_strategy="no", use_cpu=True, bits=2, bucket_size=32, seed=0,
        disable_tqdm=True, ddp_backend="gloo", **method,
    )
    trainer = QuantizedDistillationTrainer(
        model=student, teacher_model=teacher, args=args, train_dataset=data.datasets["train"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=student), processing_class=tokenizer,
    )
    trainer.train()
    rank = trainer.args.process_index
    quantized = {e.name: e.quantizer.quantize(e.shadow) for e in quantized_parameters(trainer.model)}
    allocation = [(a.name, a.points) for a in trainer.allocation or []]
    torch.save({"world_size": trainer.args.world_size, "weights": quantized, "allocation": allocation},
               os.path.join(out_dir, f"rank{rank}.pt"))


if __name__ == "__main__":
    main(*sys.argv[1:])
    end_processes()
