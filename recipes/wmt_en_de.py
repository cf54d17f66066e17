"""Quantized distillation of an English->German translation model.

Offline demo (synthetic corpus, tiny teacher trained here, a few minutes on 2 CPU cores):

    accelerate launch recipes/wmt_en_de.py --preset demo

The real job (needs the Hub): OPUS-MT teacher, WMT16, a 4-bit student made from the teacher:

    accelerate launch recipes/wmt_en_de.py --bits 4 --output_dir runs/opus-mt-en-de-4bit

Local parallel files (Multi30k layout) and a local teacher:

    accelerate launch recipes/wmt_en_de.py --dataset_dir ../shared/data/multi30k \
        --teacher ../shared/models/multi30k-en-de-marian-7.7m --output_dir runs/multi30k
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

from datasets import DatasetDict
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, set_seed

from hfqd.cli import parse_recipe_args
from hfqd.data import tokenize_translation, train_bpe_tokenizer
from hfqd.distill import (
    DistillationArguments,
    check_same_tokenizer,
    make_marian,
    make_student_from_config,
    make_student_from_teacher,
)
from hfqd.eval.translation import bleu_signature
from hfqd.export import QUANTIZATIONS, supported_architectures
from hfqd.runner.job import JobArguments, Task, plan_methods, run_job, train_teacher
from hfqd.runner.translation import TranslationDataArguments as DataArguments
from hfqd.runner.translation import evaluate_translation, fit_lengths, load_translation_data
from hfqd.utils import command_line, end_processes, ensure_available, git_commit, run_header

logger = logging.getLogger("hfqd.recipes.wmt_en_de")
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "wmt_en_de")
OFFLINE_HINT = (
    "Offline, run `accelerate launch recipes/wmt_en_de.py --preset demo`, or use local files with "
    "`--dataset_dir DIR --teacher PATH`."
)


@dataclass
class ModelArguments:
    teacher: str = field(
        default="Helsinki-NLP/opus-mt-en-de",
        metadata={"help": "Teacher: Hub id or folder; 'train' trains one on the data (demo); 'none' fine-tunes "
                          "--student on labels only."},
    )
    student: str | None = field(
        default=None, metadata={"help": "Student to start from (Hub id or folder), e.g. a packed hfqd model to fine-tune."}
    )
    student_encoder_layers: int | None = field(default=None, metadata={"help": "Student encoder depth."})
    student_decoder_layers: int | None = field(default=None, metadata={"help": "Student decoder depth."})
    student_d_model: int | None = field(
        default=None, metadata={"help": "Student width; when set, the student is a fresh model, not a copy."}
    )
    student_ffn_dim: int | None = field(default=None, metadata={"help": "Student FFN width (with student_d_model)."})
    student_attention_heads: int | None = field(default=None, metadata={"help": "Student heads (with d_model)."})
    teacher_d_model: int = field(default=256, metadata={"help": "Width of a teacher trained here."})
    teacher_layers: int = field(default=3, metadata={"help": "Encoder and decoder depth of a teacher trained here."})
    teacher_ffn_dim: int = field(default=1024, metadata={"help": "FFN width of a teacher trained here."})
    teacher_attention_heads: int = field(default=4, metadata={"help": "Heads of a teacher trained here."})
    tokenizer_vocab_size: int = field(default=8000, metadata={"help": "BPE size when the tokenizer is trained here."})


@dataclass
class RecipeArguments(JobArguments):
    eval_num_beams: int = field(default=4, metadata={"help": "Beams when scoring test translations."})
    eval_batch_size: int = field(default=64, metadata={"help": "Sentences per batch when scoring."})
    eval_max_new_tokens: int = field(default=128, metadata={"help": "Longest generated translation."})
    export_ctranslate2: str | None = field(
        default=None,
        metadata={"help": "Also export every saved row to CTranslate2 with this weight type (e.g. int8), in "
                          "<output_dir>/<row>/ctranslate2-<type>/; pushed with the row. Needs the deploy extra.",
                  "choices": list(QUANTIZATIONS)},
    )


def load_data(data: DataArguments, seed: int) -> DatasetDict:
    return load_translation_data(data, seed, OFFLINE_HINT)


def load_teacher(model_args: ModelArguments, data_args: DataArguments, raw: DatasetDict, seed: int):
    """(teacher or None, tokenizer): loaded, or built untrained over a tokenizer trained on the data."""
    if model_args.teacher == "train":
        langs = (data_args.source_lang, data_args.target_lang)
        tokenizer = train_bpe_tokenizer(
            [ex[lang] for ex in raw["train"]["translation"] for lang in langs], vocab_size=model_args.tokenizer_vocab_size
        )
        teacher = make_marian(
            tokenizer, model_args.teacher_d_model, model_args.teacher_layers, model_args.teacher_layers,
            model_args.teacher_attention_heads, model_args.teacher_ffn_dim, seed=seed,
        )
        return teacher, tokenizer
    if model_args.teacher == "none":
        return None, AutoTokenizer.from_pretrained(model_args.student)
    return AutoModelForSeq2SeqLM.from_pretrained(model_args.teacher), AutoTokenizer.from_pretrained(model_args.teacher)


def student_factory(model_args: ModelArguments, teacher, seed: int):
    """A function returning a fresh student: loaded (`--student`), copied from the teacher, or from a config."""

    def make_student():
        if model_args.student:
            return AutoModelForSeq2SeqLM.from_pretrained(model_args.student)
        enc = model_args.student_encoder_layers or max(1, teacher.config.encoder_layers // 2)
        dec = model_args.student_decoder_layers or max(1, teacher.config.decoder_layers // 2)
        if not model_args.student_d_model:
            return make_student_from_teacher(teacher, enc, dec)
        width, ffn = model_args.student_d_model, model_args.student_ffn_dim or 4 * model_args.student_d_model
        heads = model_args.student_attention_heads or teacher.config.encoder_attention_heads
        return make_student_from_config(
            teacher, seed=seed, d_model=width, encoder_layers=enc, decoder_layers=dec, encoder_ffn_dim=ffn,
            decoder_ffn_dim=ffn, encoder_attention_heads=heads, decoder_attention_heads=heads,
        )

    return make_student


def check(model_args: ModelArguments, recipe: RecipeArguments, args: DistillationArguments):
    """Everything that can be wrong with the command, before any work; returns the rows to run."""
    if model_args.teacher == "none" and not model_args.student:
        raise SystemExit("--teacher none needs --student PATH (the model to fine-tune).")
    specs = plan_methods(recipe, args, model_args.teacher != "none")
    if recipe.export_ctranslate2:
        try:
            supported_architectures()  # ctranslate2 missing: say so now, not after training
        except ImportError as err:
            raise SystemExit(str(err)) from None
    for name in (model_args.teacher, model_args.student):
        if name and name not in ("train", "none"):
            ensure_available(name, "model", OFFLINE_HINT)
    return specs


def main(model_args: ModelArguments, data_args: DataArguments, recipe: RecipeArguments, args: DistillationArguments):
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    commit = git_commit(os.path.dirname(os.path.abspath(__file__)))  # the code that runs, recorded before it runs
    specs = check(model_args, recipe, args)
    raw = load_data(data_args, args.seed)
    teacher, tokenizer = load_teacher(model_args, data_args, raw, args.seed)
    if teacher is not None and model_args.student:
        # Every row trains and is scored with the teacher's token ids: a student with its own tokenizer must not slip
        # through just because its vocabulary has the same size.
        check_same_tokenizer(tokenizer, AutoTokenizer.from_pretrained(model_args.student))
    make_student = student_factory(model_args, teacher, args.seed)
    fit_lengths(data_args, teacher if teacher is not None else make_student())
    data = tokenize_translation(raw, tokenizer, data_args.source_lang, data_args.target_lang,
                                data_args.max_source_length, data_args.max_target_length)
    test_sources, test_refs = data.sources["test"], data.references["test"]

    def evaluate(model) -> dict[str, float]:
        return evaluate_translation(
            model.to(args.device), tokenizer, test_sources, test_refs, recipe.eval_num_beams,
            recipe.eval_batch_size, recipe.eval_max_new_tokens, data_args.max_source_length,
        )[0]

    teacher_names = {"train": "a teacher trained by this recipe", "none": model_args.student}
    task = Task(
        "translation", data.datasets["train"], make_student, evaluate, ["bleu", "chrf"], tokenizer,
        base_model=teacher_names.get(model_args.teacher, model_args.teacher),
        datasets=[data_args.dataset_dir or data_args.dataset or "synthetic"],
        note=f"Test set: {data_args.test_split}; sacreBLEU (13a, cased) and chrF.",
        language=[data_args.source_lang, data_args.target_lang], parent_model=model_args.student,
        export_ctranslate2=recipe.export_ctranslate2,
    )
    teacher_seconds = None
    if model_args.teacher == "train":
        teacher, teacher_seconds = train_teacher(teacher, task, args, recipe)
    truncated = {k: dataclasses.asdict(v) for k, v in data.truncation.items() if v.sources or v.targets}
    header = run_header(command_line("recipes/wmt_en_de.py"), commit, **{
        "test set": f"{data_args.test_split} ({len(test_refs)} sentences), beams={recipe.eval_num_beams}",
        "metrics": f"sacreBLEU ({bleu_signature()}) and chrF",
        "compression": "vs the teacher in fp32" if teacher is not None else "vs the student's architecture in fp32",
        "truncated": truncated or "none",
    })
    return run_job(task, teacher.eval() if teacher is not None else None, specs, recipe, args, header,
                   teacher_seconds)


if __name__ == "__main__":
    main(*parse_recipe_args((ModelArguments, DataArguments, RecipeArguments, DistillationArguments), CONFIG_DIR))
    end_processes()
