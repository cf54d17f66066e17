"""Multi30k en->de: every method side by side on the same student and data, peer libraries included.

    pip install -e ".[bench]"
    python scripts/benchmark_translation.py --budget quick     # 2 CPU cores, under an hour
    accelerate launch scripts/benchmark_translation.py --budget full      # a GPU machine

Teacher: `--teacher PATH` (default: ../shared/models/multi30k-en-de-marian-7.7m; `scripts/train_teacher.py` makes
one). Student: a fresh Marian of `--student_d_model` width with the teacher's vocabulary, at least 4x fewer
parameters than the teacher. hfqd rows are those of the recipes (student, kd, seqkd, pm<b>, qat<b>, qd<b>, dq<b>);
peer rows come from `hfqd.bench.peers` (torchao and optimum-quanto QAT, with and without hfqd's loss).

Every model is scored with sacreBLEU (13a, cased, detokenized) and chrF on each `--test_splits` split, greedy and
with `--eval_beams`; quantized hfqd rows are scored after a round trip through their packed file and
`from_pretrained`. CPU decoding speed (sentences/s, greedy, tokenization included) at batch 1 and 32 is measured
for every row in the same run as the teacher's. Writes `{results}.json`, `.md` and `.png` (BLEU against size on
disk) with the command, commit, machine and date, and checks the targets of the comparison.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field

import sacrebleu
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, set_seed

from hfqd.bench import peers
from hfqd.bench.frontier import Frontier, FrontierArguments
from hfqd.bench.frontier_report import write_frontier_report
from hfqd.cli import parse_recipe_args
from hfqd.data import load_parallel_dir, tokenize_translation
from hfqd.distill import DistillationArguments, make_student_from_config
from hfqd.eval.plot import Panel, Point, scatter_panels
from hfqd.eval.report import ResultRow, markdown_table, targets_table, write_report
from hfqd.eval.translation import corpus_scores, decode_speed, tokenized_bleu, translate
from hfqd.hub import save_packed
from hfqd.runner.job import labels_only, teacher_row
from hfqd.runner.methods import order_methods, run_methods, train_model
from hfqd.quant import is_quantized, model_size
from hfqd.utils import command_line, end_processes, git_commit, run_header

logger = logging.getLogger("hfqd.benchmark_translation")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "scripts", "configs", "benchmark_translation")
SHARED = os.path.join(ROOT, "..", "shared")
SPEED_BATCHES = (1, 32)


@dataclass
class BenchmarkArguments:
    budget: str = field(default="quick", metadata={"help": "Name of the budget (the preset that was loaded)."})
    teacher: str = field(default=os.path.join(SHARED, "models", "multi30k-en-de-marian-7.7m"),
                         metadata={"help": "Teacher folder (from_pretrained), e.g. made by scripts/train_teacher.py."})
    dataset_dir: str = field(default=os.path.join(SHARED, "data", "multi30k"),
                             metadata={"help": "Folder of {split}.en / {split}.de files (Multi30k layout)."})
    train_split: str = field(default="train", metadata={"help": "Training file prefix."})
    test_splits: list[str] = field(default_factory=lambda: ["test2016", "test2017"],
                                   metadata={"help": "Test file prefixes; each is scored."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only this many training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Score only this many pairs per test set."})
    max_length: int = field(default=128, metadata={"help": "Longer sentences are truncated (and counted)."})
    student_d_model: int = field(default=128, metadata={"help": "Student width."})
    student_encoder_layers: int = field(default=2, metadata={"help": "Student encoder depth."})
    student_decoder_layers: int = field(default=1, metadata={"help": "Student decoder depth."})
    student_ffn_dim: int = field(default=512, metadata={"help": "Student FFN width."})
    student_attention_heads: int = field(default=4, metadata={"help": "Student attention heads."})
    warm_start_epochs: float = field(
        default=0.0,
        metadata={"help": "If > 0, every row starts from one full-precision student first trained this many epochs "
                          "on labels (the quick budget, where a from-scratch epoch per row is far too little); 0: "
                          "every row starts from the same random initialisation."},
    )
    warm_start_learning_rate: float = field(default=2e-3, metadata={"help": "Learning rate of the warm start."})
    warm_start_warmup_steps: int = field(default=300, metadata={"help": "Warm-up steps of the warm start."})
    warm_start_lr_scheduler_type: str = field(default="inverse_sqrt",
                                              metadata={"help": "Learning-rate schedule of the warm start."})
    min_student_ratio: float = field(default=4.0, metadata={"help": "Refuse students with fewer than teacher/N params."})
    methods: list[str] = field(
        default_factory=lambda: ["student", "kd", "seqkd", "pm4", "pm2", "qat4", "qat2", "qd4", "qd2", "dq2"],
        metadata={"help": "hfqd rows (see hfqd.runner.methods)."},
    )
    peers: list[str] = field(
        default_factory=lambda: ["torchao-qat4", "torchao-qat2", "quanto-qat4", "quanto-qat2", "quanto-qd4",
                                 "quanto-qd2", "diffq-qd"],
        metadata={"help": "Peer rows (see hfqd.bench.peers); `--peers none` skips them."},
    )
    diffq_penalty: float = field(default=1.0, metadata={"help": "diffq rows: weight of the model-size penalty "
                                                                "(per MiB) in the loss."})
    diffq_bits_learning_rate: float = field(default=1e-2, metadata={"help": "diffq rows: learning rate of the "
                                                                           "learned bit widths."})
    diffq_init_bits: float = field(default=4.0, metadata={"help": "diffq rows: initial bits (between 2 and 15)."})
    diffq_group_size: int = field(default=16, metadata={"help": "diffq rows: weights sharing one bit width."})
    tokenized_bleu: bool = field(default=True, metadata={"help": "Also score tokenized, lowercased BLEU (the "
                                                                 "variant of older Multi30k papers; needs sacremoses)."})
    eval_beams: int = field(default=4, metadata={"help": "Beam size scored beside greedy decoding."})
    eval_batch_size: int = field(default=64, metadata={"help": "Sentences per batch when scoring."})
    speed_sentences: int = field(default=256, metadata={"help": "Test sentences timed at batch 32."})
    speed_sentences_batch1: int = field(default=64, metadata={"help": "Test sentences timed at batch 1."})
    results: str = field(default="", metadata={"help": "Results path prefix (default: "
                                                       "benchmarks/results/translation_multi30k_{budget})."})
    plot: bool = field(default=True, metadata={"help": "Write the PNG plot (needs matplotlib, in the bench extra)."})
    frontier: bool = field(default=False, metadata={"help": "Run the BLEU/size/speed frontier of several student "
                                                            "shapes (hfqd.bench.frontier; the cpu budget) instead of "
                                                            "the one-shape method comparison."})


def metric_key(metric: str, split: str, beams: int) -> str:
    return f"{metric}_{split}_{'greedy' if beams == 1 else f'beam{beams}'}"


class Scorer:
    """Scores a model on every test set and times its decoding; one instance per run so all rows share settings."""

    def __init__(self, tokenizer, sources: dict[str, list[str]], references: dict[str, list[str]],
                 bench: BenchmarkArguments, device):
        self.tokenizer, self.sources, self.references, self.bench, self.device = (
            tokenizer, sources, references, bench, device)
        first = sources[bench.test_splits[0]]
        self.speed_sources = {1: first[: bench.speed_sentences_batch1], 32: first[: bench.speed_sentences]}

    def __call__(self, model) -> dict[str, float]:
        model = model.to(self.device).eval()
        metrics: dict[str, float] = {}
        for split in self.bench.test_splits:
            for beams in sorted({1, self.bench.eval_beams}):
                hyps = translate(model, self.tokenizer, self.sources[split], self.bench.eval_batch_size, beams,
                                 self.bench.max_length, self.bench.max_length)
                for name, value in corpus_scores(hyps, self.references[split]).items():
                    metrics[metric_key(name, split, beams)] = value
                if beams == self.bench.eval_beams and self.bench.tokenized_bleu:
                    metrics[metric_key("bleu_tok_lc", split, beams)] = tokenized_bleu(hyps, self.references[split], "de")
        for batch in SPEED_BATCHES:
            speed = decode_speed(model, self.tokenizer, self.speed_sources[batch], batch,
                                 max_new_tokens=self.bench.max_length)
            metrics[f"sent_per_s_b{batch}"] = speed.sentences_per_second
        return metrics

    def packed(self, model) -> dict[str, float]:
        """Score a quantized hfqd model as a user gets it: saved packed, loaded back with `from_pretrained`."""
        if not is_quantized(model):
            return self(model)
        with tempfile.TemporaryDirectory() as tmp:
            save_packed(model, tmp, tokenizer=self.tokenizer)
            return self(AutoModelForSeq2SeqLM.from_pretrained(tmp))


def make_student_factory(bench: BenchmarkArguments, teacher):
    def make_student():
        return make_student_from_config(
            teacher, seed=0, d_model=bench.student_d_model, encoder_layers=bench.student_encoder_layers,
            decoder_layers=bench.student_decoder_layers, encoder_ffn_dim=bench.student_ffn_dim,
            decoder_ffn_dim=bench.student_ffn_dim, encoder_attention_heads=bench.student_attention_heads,
            decoder_attention_heads=bench.student_attention_heads,
        )

    return make_student


def warm_start(make_student, tokenizer, train_set, args: DistillationArguments, bench: BenchmarkArguments):
    """Train one full-precision student on labels (no teacher, no quantization); returns a factory of copies of
    it, so that every row continues from the same weights, and the seconds it took."""
    logger.info(f"=== warm start: full-precision student, labels only, {bench.warm_start_epochs:g} epochs ===")
    warm_args = labels_only(
        args, os.path.join(args.output_dir, "warm-start"), num_train_epochs=bench.warm_start_epochs,
        learning_rate=bench.warm_start_learning_rate, warmup_steps=bench.warm_start_warmup_steps,
        lr_scheduler_type=bench.warm_start_lr_scheduler_type,
    )
    base, seconds = train_model(make_student(), None, tokenizer, train_set, warm_args)
    base = base.cpu().eval()
    return (lambda: copy.deepcopy(base)), seconds


def run_peers(names, make_student, teacher, tokenizer, train_set, args: DistillationArguments, scorer: Scorer,
              teacher_fp32_bits: int, save_dir: str, student_params: int, diffq: peers.DiffQSettings) -> list[ResultRow]:
    """Train, score and size each peer row with the same trainer, data and student as the hfqd rows."""
    rows = []
    group = args.bucket_size
    for spec in map(peers.parse_peer, names):
        logger.info(f"=== {spec.name}: {spec.description} ===")
        model = peers.prepare(make_student(), spec, group, diffq)
        run_args = dataclasses.replace(
            args, output_dir=os.path.join(args.output_dir, spec.name), bits=None,
            alpha=args.alpha if spec.distill else 0.0, distillation_mode="token" if spec.distill else "none",
        )
        model, seconds = train_model(model, teacher if spec.distill else None, tokenizer, train_set, run_args,
                                     trainer_class=peers.trainer_class(spec))
        if not args.should_save:
            continue
        peers.finalize(model, spec)
        size = peers.peer_size(model, spec, group)
        rows.append(ResultRow(
            method=spec.name, description=spec.description,
            bits=spec.bits if spec.bits is not None else round(peers.diffq_mean_bits(model), 2), params=student_params,
            size_mb=size.megabytes,
            compression=teacher_fp32_bits / size.bits, metrics=scorer(model), train_seconds=seconds,
            file_mb=peers.save_peer(model, spec, os.path.join(save_dir, spec.name)), library=spec.library,
        ))
    return rows


def add_relative_speed(rows: list[ResultRow]) -> None:
    teacher = next(r for r in rows if r.method == "teacher")
    for row in rows:
        for batch in SPEED_BATCHES:
            key = f"sent_per_s_b{batch}"
            if key in row.metrics:
                row.metrics[f"speed_b{batch}_vs_teacher"] = row.metrics[key] / teacher.metrics[key]


def check_targets(rows: list[ResultRow], key: str) -> list[dict]:
    """The comparison's targets, each with the measured numbers and whether it was met (`None`: a row is missing)."""
    by = {r.method: r for r in rows}

    def bleu(name):
        return by[name].metrics[key] if name in by else None

    def disk(name):
        row = by.get(name)
        return None if row is None else (row.file_mb or row.size_mb)

    targets = []
    if bleu("qd4") is not None and bleu("kd") is not None:
        gap, ratio = bleu("kd") - bleu("qd4"), disk("kd") / disk("qd4")
        targets.append({"target": "qd4 within 1.0 BLEU of kd, at >= 7x smaller on disk than kd",
                        "measured": f"{gap:+.2f} BLEU below kd, {ratio:.2f}x smaller", "met": gap <= 1.0 and ratio >= 7})
    if bleu("qd2") is not None and bleu("pm2") is not None:
        gain = bleu("qd2") - bleu("pm2")
        targets.append({"target": "qd2 beats pm2 by >= 3 BLEU", "measured": f"{gain:+.2f} BLEU", "met": gain >= 3})
    for bits in (4, 2):
        qd, qat = bleu(f"qd{bits}"), bleu(f"qat{bits}")
        if qd is not None and qat is not None:
            targets.append({"target": f"qd{bits} beats qat{bits} (no teacher)", "measured": f"{qd - qat:+.2f} BLEU",
                            "met": qd > qat})
    student = by.get("kd") or by.get("student")
    if student is not None and "speed_b32_vs_teacher" in student.metrics:
        speed = student.metrics["speed_b32_vs_teacher"]
        targets.append({"target": "student decodes >= 3x faster than the teacher at batch 32 (CPU)",
                        "measured": f"{speed:.2f}x", "met": speed >= 3})
    return targets


def plot(rows: list[ResultRow], key: str, path: str, title: str) -> None:
    """BLEU against size on disk (packed file where saved, theoretical size otherwise), one marker per row."""
    markers = {"hfqd": "o", "torchao": "s", "optimum-quanto": "^"}
    points = [Point(r.file_mb or r.size_mb, r.metrics[key], r.method, markers.get(r.library, "D"),
                    f"{r.method} ({r.library})" if r.library != "hfqd" else r.method) for r in rows if key in r.metrics]
    scatter_panels(path, [Panel(points, "size on disk (MB, log scale; theoretical where no file)",
                                key.replace("_", " "), log_x=True, title=title, legend=True)], width=8, height=5.5)


def write_report_files(rows, targets, header, bench: BenchmarkArguments, prefix: str) -> str:
    split0, split1 = bench.test_splits[0], bench.test_splits[-1]
    beam = bench.eval_beams
    columns = [metric_key("bleu", s, b) for s in dict.fromkeys((split0, split1)) for b in (beam, 1)]
    columns += [metric_key("chrf", s, beam) for s in dict.fromkeys((split0, split1))]
    if bench.tokenized_bleu:
        columns += [metric_key("bleu_tok_lc", split0, beam)]
    columns += ["speed_b1_vs_teacher", "speed_b32_vs_teacher"]
    return write_report(prefix, header, [markdown_table(rows, columns, show_library=True), targets_table(targets)],
                        {"targets": targets, "rows": [dataclasses.asdict(r) for r in rows]})


def _evaluations(frontier: FrontierArguments) -> str:
    n = frontier.evaluations_per_epoch
    return "each epoch" if n <= 1 else f"{n} times an epoch"


def _budget(minutes: float) -> str:
    return f" or a {minutes:g}-minute budget (ended at the first validation past it)" if minutes else ""


def run_frontier(bench: BenchmarkArguments, frontier: FrontierArguments, args: DistillationArguments) -> str:
    """Every (shape, row) of the frontier whose results file is missing, then the report over all of them."""
    runner = Frontier(frontier, bench, args, ROOT)
    runner.run()
    if frontier.train_only:
        logger.info(f"Trained rows saved under {args.output_dir}; a run without --train_only scores them.")
        return ""
    header = run_header(command_line("scripts/benchmark_translation.py"), runner.commit, **{
        "budget": bench.budget,
        "data": f"{bench.dataset_dir}: train {bench.train_split}, model selection on {frontier.validation_split} "
                f"({frontier.validation_sentences} sentences, greedy BLEU {_evaluations(frontier)}), test "
                + ", ".join(bench.test_splits),
        "teacher": bench.teacher,
        "training": f"kd rows, and <row>-scratch rows (quantized from the shape's start; qat on labels alone): "
                    f"token-level KD from the cached teacher (top-{args.teacher_top_k}), at most "
                    f"{frontier.kd_epochs:g} epochs{_budget(frontier.kd_minutes)}, early stopping (patience "
                    f"{frontier.patience} validations) on validation BLEU, best validation kept; other qd/qat/dq rows "
                    f"start from their shape's kd, at most {frontier.quant_epochs:g} epochs"
                    f"{_budget(frontier.quant_minutes)}, same selection; pm rows quantize kd",
        "speed": f"greedy, batch 32, {frontier.timed_sentences} test sentences, {frontier.threads} thread(s) for both "
                 f"engines, sentences per CPU-second of the process (other load does not count), each row timed "
                 f"interleaved with the teacher ({frontier.speed_repeats} rounds, medians); wall-clock ratios in "
                 "the JSON",
        "note": "each row was measured when it finished (its own commit, machine and date are in its file); rows "
                "trained on another machine (--train_only there) record it, with their epochs and time, in "
                "'trained on' and their file",
    })
    prefix = os.path.join(runner.results_dir, "frontier")
    markdown = write_frontier_report(runner.results_dir, prefix, header, plot=bench.plot)
    print("\n" + markdown)
    if frontier.push_row:
        print(runner.push())
    return markdown


def main(bench: BenchmarkArguments, args: DistillationArguments,
         frontier: FrontierArguments | None = None) -> list[ResultRow]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    if bench.frontier:
        run_frontier(bench, frontier or FrontierArguments(), args)
        return []
    commit = git_commit(ROOT)
    if args.bucket_size is None:
        raise SystemExit("The comparison needs --bucket_size (peers use it as their group size).")
    specs = order_methods(bench.methods, args.alpha)  # bad names fail before any work
    bench.peers = [name for name in bench.peers if name != "none"]
    for name in bench.peers:
        peers.parse_peer(name)
    if not os.path.isdir(bench.teacher):
        raise SystemExit(f"Teacher folder {bench.teacher} not found: pass --teacher PATH, or make one with "
                         "scripts/train_teacher.py.")
    prefix = bench.results or os.path.join(ROOT, "benchmarks", "results", f"translation_multi30k_{bench.budget}")

    splits = {"train": bench.train_split, **{s: s for s in bench.test_splits}}
    raw = load_parallel_dir(bench.dataset_dir, "en", "de", splits)
    if bench.max_train_samples:
        raw["train"] = raw["train"].select(range(min(bench.max_train_samples, len(raw["train"]))))
    for split in bench.test_splits:
        if bench.max_eval_samples:
            raw[split] = raw[split].select(range(min(bench.max_eval_samples, len(raw[split]))))
    teacher = AutoModelForSeq2SeqLM.from_pretrained(bench.teacher).eval()
    tokenizer = AutoTokenizer.from_pretrained(bench.teacher)
    data = tokenize_translation(raw, tokenizer, "en", "de", bench.max_length, bench.max_length)
    train_set = data.datasets["train"]
    make_student = make_student_factory(bench, teacher)
    teacher_size, student_size = model_size(teacher), model_size(make_student())
    ratio = teacher_size.params / student_size.params
    if ratio < bench.min_student_ratio:
        raise SystemExit(f"The student has {student_size.params:,} parameters, only {ratio:.2f}x fewer than the "
                         f"teacher's {teacher_size.params:,}; make it smaller (--student_d_model, layers).")
    scorer = Scorer(tokenizer, data.sources, data.references, bench, args.device)
    save_dir = os.path.join(args.output_dir, "models")

    rows: list[ResultRow] = []
    if args.should_save:
        rows.append(teacher_row(teacher, scorer(teacher),
                                file_mb=os.path.getsize(os.path.join(bench.teacher, "model.safetensors")) / 1e6))
    warm_seconds = None
    if bench.warm_start_epochs > 0:
        make_student, warm_seconds = warm_start(make_student, tokenizer, train_set, args, bench)
    rows += run_methods(
        specs, make_student, teacher, tokenizer, train_set, args, scorer.packed, teacher_size.fp32_bits,
        is_main_process=args.should_save, display_order=bench.methods, save_dir=save_dir,
    )
    rows += run_peers(bench.peers, make_student, teacher, tokenizer, train_set, args, scorer,
                      teacher_size.fp32_bits, save_dir, student_size.params,
                      peers.DiffQSettings(bench.diffq_penalty, bench.diffq_bits_learning_rate, bench.diffq_init_bits,
                                          bench.diffq_group_size))
    if not args.should_save:
        return rows

    add_relative_speed(rows)
    key = metric_key("bleu", bench.test_splits[0], bench.eval_beams)
    targets = check_targets(rows, key)
    steps = f"{args.max_steps} steps" if args.max_steps > 0 else f"{args.num_train_epochs:g} epochs"
    if warm_seconds is not None:
        start = (f"every row starts from one fp student trained {bench.warm_start_epochs:g} epochs on labels "
                 f"(lr {bench.warm_start_learning_rate:g} {bench.warm_start_lr_scheduler_type}, {warm_seconds:.0f} s, "
                 "not in the rows' train times), then")
    else:
        start = "every row starts from the same random initialisation and trains"
    header = run_header(command_line("scripts/benchmark_translation.py"), commit, **{
        "budget": bench.budget,
        "data": f"{bench.dataset_dir} (train {len(train_set)} pairs; test sets "
                + ", ".join(f"{s} {len(data.references[s])}" for s in bench.test_splits) + ")",
        "teacher": f"{bench.teacher} ({teacher_size.params:,} parameters)",
        "student": f"fresh Marian d_model {bench.student_d_model}, {bench.student_encoder_layers}+"
                   f"{bench.student_decoder_layers} layers, FFN {bench.student_ffn_dim}, teacher's vocabulary "
                   f"({student_size.params:,} parameters, {ratio:.1f}x fewer than the teacher)",
        "training": f"{start} {steps} with its method: batch {args.per_device_train_batch_size}, lr {args.learning_rate:g} "
                    f"{getattr(args.lr_scheduler_type, 'value', args.lr_scheduler_type)}, AdamW betas ({args.adam_beta1:g}, {args.adam_beta2:g}), "
                    f"alpha {args.alpha:g}, T {args.temperature:g}; bucket/group size {args.bucket_size}; "
                    f"seqkd targets: teacher beam {args.sequence_num_beams}",
        "metrics": f"sacreBLEU {sacrebleu.__version__} (13a tokenization, cased, detokenized) and chrF; greedy and "
                   f"beam {bench.eval_beams}; hfqd quantized rows scored after save_packed + from_pretrained"
                   + ("; bleu_tok_lc = tokenized, lowercased BLEU as older Multi30k papers report it (Moses "
                      "pipeline of the official tok/ files, reproduced exactly by hfqd.eval.moses_tokenize)"
                      if bench.tokenized_bleu else ""),
        "sizes": "size = theoretical (codes + fp32 min and scale per bucket + fp32 rest); Huffman = level indices "
                 "Huffman-coded; file = weights file on disk (hfqd packed safetensors; quanto frozen state_dict; "
                 "none for torchao); vs teacher = teacher fp32 / size",
        "speed": f"greedy CPU decoding, sentences/s relative to the teacher in this run, batch 1 "
                 f"({bench.speed_sentences_batch1} sentences) and batch 32 ({bench.speed_sentences} sentences), "
                 f"{torch.get_num_threads()} threads; hfqd packed models load as fp32 weights",
    })
    markdown = write_report_files(rows, targets, header, bench, prefix)
    if bench.plot:
        plot(rows, key, f"{prefix}.png", f"Multi30k en-de ({bench.test_splits[0]}, beam {bench.eval_beams}), "
                                         f"{bench.budget} budget, {header['machine']}")
    print("\n" + markdown)
    return rows


def parse(argv: list[str] | None = None) -> tuple[BenchmarkArguments, DistillationArguments, FrontierArguments]:
    """`--budget NAME` loads scripts/configs/benchmark_translation/NAME.yaml; flags override it."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--budget", default="quick")
    known, rest = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    bench, args, frontier = parse_recipe_args((BenchmarkArguments, DistillationArguments, FrontierArguments),
                                              CONFIG_DIR, ["--preset", known.budget, *rest])
    bench.budget = known.budget
    return bench, args, frontier


if __name__ == "__main__":
    main(*parse())
    end_processes()
