"""Train a Marian translation teacher on parallel data and save it with its tokenizer (`save_pretrained`).

    python scripts/train_teacher.py --dataset_dir ../shared/data/multi30k --validation_split val \
        --test_split test2016 --d_model 256 --layers 3 --num_train_epochs 10 --output_dir cache/teacher-multi30k

    python scripts/train_teacher.py --synthetic_pairs 8000 --output_dir cache/teacher-synthetic

The tokenizer is a BPE trained on both sides of the training split unless `--tokenizer PATH` is given. The
script prints the teacher's BLEU/chrF on the test split and writes them to `{output_dir}/eval_results.json`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

from transformers import AutoTokenizer, set_seed

from hfqd.cli import parse_recipe_args
from hfqd.data import tokenize_translation, train_bpe_tokenizer
from hfqd.distill import DistillationArguments, make_marian
from hfqd.runner.job import labels_only
from hfqd.runner.methods import train_model
from hfqd.runner.translation import TranslationDataArguments as DataArguments
from hfqd.runner.translation import evaluate_translation, load_translation_data
from hfqd.utils import atomic_directory, end_processes

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "configs", "wmt_en_de")


@dataclass
class TeacherArguments:
    tokenizer: str | None = field(default=None, metadata={"help": "Existing tokenizer; default: train a BPE here."})
    vocab_size: int = field(default=8000, metadata={"help": "BPE vocabulary size when training the tokenizer."})
    d_model: int = field(default=256, metadata={"help": "Model width."})
    layers: int = field(default=3, metadata={"help": "Encoder and decoder layers."})
    ffn_dim: int = field(default=1024, metadata={"help": "Feed-forward width."})
    attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout."})
    eval_num_beams: int = field(default=4, metadata={"help": "Beams when scoring the test split."})


def main(teacher_args: TeacherArguments, data_args: DataArguments, args: DistillationArguments) -> dict:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    raw = load_translation_data(data_args, args.seed)
    if teacher_args.tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(teacher_args.tokenizer)
    else:
        langs = (data_args.source_lang, data_args.target_lang)
        tokenizer = train_bpe_tokenizer(
            (ex[lang] for ex in raw["train"]["translation"] for lang in langs), vocab_size=teacher_args.vocab_size
        )
    data = tokenize_translation(raw, tokenizer, data_args.source_lang, data_args.target_lang,
                                data_args.max_source_length, data_args.max_target_length)
    model = make_marian(tokenizer, teacher_args.d_model, teacher_args.layers, teacher_args.layers,
                        teacher_args.attention_heads, teacher_args.ffn_dim, teacher_args.dropout, seed=args.seed)
    final_dir = args.output_dir  # the teacher goes here; training checkpoints beside it
    args = labels_only(args, f"{args.output_dir.rstrip('/')}-training")
    model, seconds = train_model(model, None, tokenizer, data.datasets["train"], args)
    if not args.should_save:
        return {}
    scores, _ = evaluate_translation(model, tokenizer, data.sources["test"], data.references["test"],
                                     num_beams=teacher_args.eval_num_beams)
    results = {**scores, "test_split": data_args.test_split, "num_beams": teacher_args.eval_num_beams,
               "train_seconds": seconds, "params": sum(p.numel() for p in model.parameters())}
    with atomic_directory(final_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(os.path.join(tmp, "eval_results.json"), "w") as f:
            json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(*parse_recipe_args((TeacherArguments, DataArguments, DistillationArguments), CONFIG_DIR))
    end_processes()
