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
from hfqd.eval.report import ResultRow, write_results
from hfqd.export import QUANTIZATIONS, export_ctranslate2, supported_architectures
from hfqd.eval.translation import bleu_signature
from hfqd.hub.card import write_row_cards
from hfqd.hub.push import PushError, push_folder
from hfqd.runner.methods import order_methods, run_methods, save_model_files, train_model
from hfqd.runner.translation import TranslationDataArguments as DataArguments
from hfqd.runner.translation import evaluate_translation, load_translation_data
from hfqd.quant import model_size
from hfqd.utils import command_line, ensure_available, git_commit, run_header

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
    teacher_epochs: float = field(default=10.0, metadata={"help": "Epochs of a teacher trained here."})
    teacher_learning_rate: float = field(default=2e-3, metadata={"help": "Learning rate of a teacher trained here."})
    tokenizer_vocab_size: int = field(default=8000, metadata={"help": "BPE size when the tokenizer is trained here."})


@dataclass
class RecipeArguments:
    method: str | None = field(
        default=None,
        metadata={"help": "Shortcut for the main job: qd | dq | qd+dq at --bits, compared with kd and PM rows "
                          "(sets --methods).", "choices": ["qd", "dq", "qd+dq"]},
    )
    methods: list[str] | None = field(
        default=None,
        metadata={"help": "Rows to train and score: student, kd, seqkd, pm<b>, qat<b>, qd<b>, dq<b>, qddq<b> "
                          "(default: kd pm<bits> qd<bits>)."},
    )
    eval_num_beams: int = field(default=4, metadata={"help": "Beams when scoring test translations."})
    eval_batch_size: int = field(default=64, metadata={"help": "Sentences per batch when scoring."})
    eval_max_new_tokens: int = field(default=128, metadata={"help": "Longest generated translation."})
    push_method: str | None = field(
        default=None, metadata={"help": "Row pushed with --push_to_hub (default: the first qd<b> method)."}
    )
    dq_teacher: str = field(
        default="self",
        metadata={"help": "Teacher of dq<b> rows: self (the full-precision kd student, as the paper) or teacher."},
    )
    save_models: bool = field(
        default=True, metadata={"help": "Save the teacher and every student (packed when quantized) under output_dir."}
    )
    export_ctranslate2: str | None = field(
        default=None,
        metadata={"help": "Also export every saved row to CTranslate2 with this weight type (e.g. int8), in "
                          "<output_dir>/<row>/ctranslate2-<type>/; pushed with the row. Needs the deploy extra.",
                  "choices": list(QUANTIZATIONS)},
    )
    hub_dry_run: bool = field(
        default=False, metadata={"help": "With --push_to_hub: list what would be uploaded where, send nothing."}
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


def main(model_args: ModelArguments, data_args: DataArguments, recipe: RecipeArguments, args: DistillationArguments):
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    commit = git_commit(os.path.dirname(os.path.abspath(__file__)))  # the code that runs, recorded before it runs
    has_teacher = model_args.teacher != "none"
    if not has_teacher and not model_args.student:
        raise SystemExit("--teacher none needs --student PATH (the model to fine-tune).")
    if recipe.method is not None:
        if args.bits is None:
            raise SystemExit("--method needs a bit width: set --bits 1-8.")
        row = {"qd": "qd", "dq": "dq", "qd+dq": "qddq"}[recipe.method] + str(args.bits)
        recipe.methods = ["kd", f"pm{args.bits}", row]
        recipe.push_method = recipe.push_method or row
    elif recipe.methods is None:
        recipe.methods = ["kd"] if args.bits is None else ["kd", f"pm{args.bits}", f"qd{args.bits}"]
    specs = order_methods(recipe.methods, args.alpha, has_teacher)  # bad method names fail before any work
    if recipe.export_ctranslate2:
        try:
            supported_architectures()  # ctranslate2 missing: say so now, not after training
        except ImportError as err:
            raise SystemExit(str(err)) from None
    for name in (model_args.teacher, model_args.student):
        if name and name not in ("train", "none"):
            ensure_available(name, "model", OFFLINE_HINT)

    # ---- data, teacher, tokenizer ----
    raw = load_data(data_args, args.seed)
    if data_args.max_train_samples is not None:
        raw["train"] = raw["train"].select(range(min(data_args.max_train_samples, len(raw["train"]))))
    if data_args.max_eval_samples is not None:
        raw["test"] = raw["test"].select(range(min(data_args.max_eval_samples, len(raw["test"]))))
    teacher, tokenizer = load_teacher(model_args, data_args, raw, args.seed)
    if teacher is not None and model_args.student:
        # Every row trains and is scored with the teacher's token ids: a student with its own tokenizer must not slip
        # through just because its vocabulary has the same size.
        check_same_tokenizer(tokenizer, AutoTokenizer.from_pretrained(model_args.student))
    make_student = student_factory(model_args, teacher, args.seed)
    reference = teacher if teacher is not None else make_student()
    positions = getattr(reference.config, "max_position_embeddings", None)
    for name in ("max_source_length", "max_target_length"):
        if positions and getattr(data_args, name) > positions:
            logger.warning(f"--{name} {getattr(data_args, name)} exceeds the model's {positions} positions; using {positions}.")
            setattr(data_args, name, positions)
    data = tokenize_translation(
        raw, tokenizer, data_args.source_lang, data_args.target_lang,
        data_args.max_source_length, data_args.max_target_length,
    )
    train_set = data.datasets["train"]
    test_sources, test_refs = data.sources["test"], data.references["test"]

    def evaluate(model) -> dict[str, float]:
        scores, _ = evaluate_translation(
            model.to(args.device), tokenizer, test_sources, test_refs, recipe.eval_num_beams,
            recipe.eval_batch_size, recipe.eval_max_new_tokens, data_args.max_source_length,
        )
        return scores

    rows = []
    if teacher is not None:
        teacher_seconds = None
        if model_args.teacher == "train":
            teacher_args = dataclasses.replace(
                args, output_dir=os.path.join(args.output_dir, "teacher-run"), bits=None, alpha=0.0,
                distillation_mode="none", num_train_epochs=model_args.teacher_epochs, max_steps=-1,
                learning_rate=model_args.teacher_learning_rate, push_to_hub=False,
            )
            teacher, teacher_seconds = train_model(teacher, None, tokenizer, train_set, teacher_args)
        teacher.eval()
        if args.should_save:
            file_mb = save_model_files(teacher, os.path.join(args.output_dir, "teacher"), tokenizer) \
                if recipe.save_models else None
            size = model_size(teacher)
            rows.append(ResultRow(
                method="teacher", description="teacher, full precision", bits=None, params=size.params,
                size_mb=size.megabytes, compression=1.0, metrics=evaluate(teacher), train_seconds=teacher_seconds,
                file_mb=file_mb,
            ))

    # ---- students ----
    # Compression is measured against the teacher in fp32 (or, without a teacher, the student's own fp32 size).
    rows += run_methods(
        specs, make_student, teacher, tokenizer, train_set, args, evaluate, model_size(reference).fp32_bits,
        is_main_process=args.should_save, display_order=recipe.methods,
        save_dir=args.output_dir if recipe.save_models else None, dq_teacher=recipe.dq_teacher,
    )

    # ---- report ----
    if args.should_save:
        truncated = {k: dataclasses.asdict(v) for k, v in data.truncation.items() if v.sources or v.targets}
        header = run_header(
            command_line("recipes/wmt_en_de.py"), commit, **{
            "test set": f"{data_args.test_split} ({len(test_refs)} sentences), beams={recipe.eval_num_beams}",
            "metrics": f"sacreBLEU ({bleu_signature()}) and chrF",
            "compression": "vs the teacher in fp32" if has_teacher else "vs the student's architecture in fp32",
            "truncated": truncated or "none",
        })
        markdown = write_results(os.path.join(args.output_dir, "results"), rows, ["bleu", "chrf"], header)
        print("\n" + markdown)
        if recipe.save_models:
            if recipe.export_ctranslate2:
                export_rows(rows, args.output_dir, recipe.export_ctranslate2)
            write_cards(rows, model_args, data_args, args, header["command"])
            if args.push_to_hub:
                push_row(rows, recipe, args)
    return rows


def write_cards(rows: list[ResultRow], model_args: ModelArguments, data_args: DataArguments,
                args: DistillationArguments, command: str) -> None:
    """A model card (README.md) in the folder of every saved quantized student."""
    if model_args.teacher not in ("train", "none"):
        base = model_args.teacher
    else:
        base = model_args.student or "a teacher trained by this recipe"
    write_row_cards(
        rows, args.output_dir, base_model=base, datasets=[data_args.dataset_dir or data_args.dataset or "synthetic"],
        command=command, task="translation", metric_names=["bleu", "chrf"],
        note=f"Test set: {data_args.test_split}; sacreBLEU (13a, cased) and chrF.",
        language=[data_args.source_lang, data_args.target_lang], parent_model=model_args.student,
        hub_model_id=args.hub_model_id,
    )


def export_rows(rows: list[ResultRow], output_dir: str, quantization: str) -> None:
    """A CTranslate2 export of every saved row, beside its weights (model cards then show how to use it)."""
    for row in rows:
        folder = os.path.join(output_dir, row.method)
        if os.path.isfile(os.path.join(folder, "model.safetensors")):
            out = export_ctranslate2(folder, os.path.join(folder, f"ctranslate2-{quantization}"), quantization,
                                     force=True)
            logger.info(f"{row.method}: exported to {out}")


def push_row(rows: list[ResultRow], recipe: RecipeArguments, args: DistillationArguments) -> None:
    """Push the chosen row's saved folder (packed weights, tokenizer, card) to `--hub_model_id`."""
    quantized = [r.method for r in rows if r.method.startswith("qd")]
    method = recipe.push_method or (quantized[0] if quantized else None)
    if method is None or method not in [r.method for r in rows]:
        raise SystemExit(f"Nothing to push: --push_method {method!r} is not one of the rows {[r.method for r in rows]}.")
    if not args.hub_model_id:
        raise SystemExit("--push_to_hub needs --hub_model_id NAME (e.g. me/opus-mt-en-de-4bit).")
    try:
        url = push_folder(os.path.join(args.output_dir, method), args.hub_model_id,
                          private=args.hub_private_repo, token=args.hub_token, dry_run=recipe.hub_dry_run)
    except PushError as err:
        raise SystemExit(str(err)) from err
    print(url if recipe.hub_dry_run else f"Pushed {method} to {url}")


if __name__ == "__main__":
    main(*parse_recipe_args((ModelArguments, DataArguments, RecipeArguments, DistillationArguments), CONFIG_DIR))
