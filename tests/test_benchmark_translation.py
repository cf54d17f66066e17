"""The Multi30k comparison script (scripts/benchmark_translation.py), run end to end on tiny generated data."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from hfqd.bench.curves import Curve, load_curve, read_curve, run_dir_of, write_curve_report
from hfqd.bench.frontier import ROW

from .conftest import tiny_marian
from .helpers import tiny_corpus

ROOT = Path(__file__).parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("benchmark_translation", ROOT / "scripts" / "benchmark_translation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny teacher folder and Multi30k-style parallel files (train, test2016, test2017)."""
    root = tmp_path_factory.mktemp("bench")
    raw, tokenizer, _ = tiny_corpus(240)
    pairs = [(ex["en"], ex["de"]) for ex in raw["train"]["translation"]]
    data = root / "data"
    data.mkdir()
    splits = {"train": pairs[:200], "val": pairs[180:200], "test2016": pairs[200:220], "test2017": pairs[220:240]}
    for split, chunk in splits.items():
        (data / f"{split}.en").write_text("\n".join(e for e, _ in chunk) + "\n")
        (data / f"{split}.de").write_text("\n".join(d for _, d in chunk) + "\n")
    teacher = tiny_marian(seed=1, vocab_size=len(tokenizer), d_model=64, layers=2)
    teacher.save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    return root


def _argv(root, out, *extra):
    return [
        "--teacher", str(root / "teacher"), "--dataset_dir", str(root / "data"), "--output_dir", str(out / "runs"),
        "--results", str(out / "results"), "--student_d_model", "16", "--student_ffn_dim", "32",
        "--student_attention_heads", "2", "--student_encoder_layers", "1", "--student_decoder_layers", "1",
        "--bucket_size", "16", "--max_steps", "2", "--per_device_train_batch_size", "16", "--max_length", "12",
        "--eval_batch_size", "8", "--speed_sentences", "4", "--speed_sentences_batch1", "2", "--use_cpu", "true",
        "--logging_steps", "1", *extra,
    ]


def test_budgets_parse_and_flags_override_them():
    script = _script()
    quick, args, _ = script.parse(["--budget", "quick", "--learning_rate", "0.01"])
    assert quick.budget == "quick" and quick.warm_start_epochs > 0 and args.learning_rate == 0.01
    full, args, _ = script.parse(["--budget=full"])
    assert full.budget == "full" and args.num_train_epochs > 1 and args.sequence_num_beams == 4
    assert args.bucket_size == 128
    for budget in ("cpu", "full_frontier"):
        bench, args, frontier = script.parse(["--budget", budget])
        assert bench.frontier and frontier.shapes and args.teacher_cache_dir
        assert all(ROW.match(row) for row in frontier.rows + frontier.extra_rows)
    with pytest.raises(SystemExit, match="Presets"):
        script.parse(["--budget", "huge"])
    with pytest.raises(ValueError, match="--patience 0"):
        script.parse(["--budget", "cpu", "--patience", "0"])


def test_refuses_a_student_that_is_not_small_enough(workspace, tmp_path):
    script = _script()
    argv = _argv(workspace, tmp_path, "--peers", "none", "--student_d_model", "64", "--student_ffn_dim", "128",
                 "--student_encoder_layers", "2", "--student_decoder_layers", "2")
    with pytest.raises(SystemExit, match="fewer than the"):
        script.main(*script.parse(argv))


@pytest.mark.slow
def test_every_row_is_scored_sized_and_timed(workspace, tmp_path):
    script = _script()
    peer_rows = [name for name, module in (("torchao-qat4", "torchao"), ("quanto-qd2", "optimum.quanto"),
                                           ("diffq-qd", "diffq")) if _installed(module)]
    plot, moses = _installed("matplotlib"), _installed("sacremoses")
    argv = _argv(workspace, tmp_path, "--warm_start_epochs", "1", "--methods", "student", "kd", "pm4", "qat2", "qd2",
                 "--plot", str(plot).lower(), "--tokenized_bleu", str(moses).lower(), "--peers", *(peer_rows or ["none"]))
    script.main(*script.parse(argv))

    result = json.loads((tmp_path / "results.json").read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["teacher", "student", "kd", "pm4", "qat2", "qd2", *peer_rows]
    for row in rows.values():
        for split in ("test2016", "test2017"):
            for decoding in ("greedy", "beam4"):
                assert 0 <= row["metrics"][f"bleu_{split}_{decoding}"] <= 100
                assert 0 <= row["metrics"][f"chrf_{split}_{decoding}"] <= 100
        assert row["metrics"]["sent_per_s_b1"] > 0 and row["metrics"]["sent_per_s_b32"] > 0
        assert ("bleu_tok_lc_test2016_beam4" in row["metrics"]) == moses
    assert rows["teacher"]["metrics"]["speed_b32_vs_teacher"] == 1.0
    # Quantized hfqd rows are saved packed: smaller on disk than the full-precision student.
    assert rows["qd2"]["file_mb"] < rows["kd"]["file_mb"] and rows["qd2"]["bits"] == 2
    assert rows["qd2"]["compression"] > rows["kd"]["compression"]
    for name in peer_rows:
        assert rows[name]["library"] != "hfqd" and rows[name]["train_seconds"] > 0
    targets = {t["target"]: t for t in result["targets"]}
    assert not any(t.startswith("qd2 beats pm2") for t in targets)  # no pm2 row: that target is not judged
    assert all(isinstance(t["met"], bool) for t in targets.values())
    assert any(t.startswith("qd2 beats qat2") for t in targets)
    assert "one fp student trained 1 epochs on labels" in result["training"]
    for key in ("command", "commit", "machine", "date", "budget"):
        assert result[key]
    markdown = (tmp_path / "results.md").read_text()
    assert "## Targets" in markdown and "| qd2 | hfqd |" in markdown
    assert (tmp_path / "results.png").exists() == plot
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.slow
def test_frontier_rows_land_one_file_each_and_a_rerun_skips_them(workspace, tmp_path):
    pytest.importorskip("ctranslate2")
    script = _script()
    results = tmp_path / "frontier"
    argv = [
        "--budget", "cpu", "--teacher", str(workspace / "teacher"), "--dataset_dir", str(workspace / "data"),
        "--output_dir", str(tmp_path / "runs"), "--results_dir", str(results), "--shapes", "d64-1+1-copy",
        "--rows", "kd", "qd2", "pm2", "kdseq", "--extra_rows_shape", "none",
        "--sequence_cache_dir", str(tmp_path / "seqkd"), "--sequence_max_length", "12", "--kd_epochs", "1",
        "--quant_epochs", "1", "--validation_sentences", "10", "--timed_sentences", "8", "--speed_repeats", "1",
        "--max_length", "12",
        "--teacher_cache_dir", str(tmp_path / "cache"), "--per_device_train_batch_size", "32", "--bucket_size", "16",
        "--warmup_steps", "2", "--use_cpu", "true", "--plot", str(_installed("matplotlib")).lower(),
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # scoring loads one-thread CTranslate2 models between rows; training keeps these 2
    try:
        script.main(*script.parse(argv))
    finally:
        torch.set_num_threads(threads)

    files = sorted((results / "rows").glob("*.json"))
    assert [f.stem for f in files] == ["d64-1+1-copy__kd", "d64-1+1-copy__kdseq", "d64-1+1-copy__pm2",
                                       "d64-1+1-copy__qd2", "teacher__teacher"]
    rows = {f.stem.split("__")[1]: json.loads(f.read_text()) for f in files}
    for row in rows.values():
        m = row["metrics"]
        for split in ("test2016", "test2017"):
            assert 0 <= m[f"bleu_{split}_beam4"] <= 100 and 0 <= m[f"ct2_int8_bleu_{split}_beam4"] <= 100
        assert m["speed_ct2_vs_teacher_ct2"] > 0 and m["speed_ct2_b1_vs_teacher_ct2_b1"] > 0
        assert m["ct2_peak_rss_mb"] > 0
        assert row["commit"] and row["date"]
    assert rows["qd2"]["start"] == rows["pm2"]["start"] == "kd"
    assert rows["kd"]["start"] == rows["kdseq"]["start"] == "teacher layers"
    assert any((tmp_path / "seqkd").iterdir())  # kdseq trained on the teacher's translations
    assert rows["kdseq"]["setup_seconds"] > 0 and rows["pm2"]["setup_seconds"] is None
    assert [rows[r]["train_threads"] for r in ("kd", "qd2", "kdseq")] == [2, 2, 2]
    assert rows["qd2"]["file_mb"] < rows["kd"]["file_mb"] and rows["qd2"]["bits"] == 2
    assert rows["qd2"]["best_validation_bleu_greedy"] is not None and rows["pm2"]["train_seconds"] == 0
    for row in ("qd2", "pm2"):  # quantized rows are saved packed with a model card
        card = (tmp_path / "runs" / "d64-1+1-copy" / row / "README.md").read_text()
        bleu = f"{rows[row]['metrics']['bleu_test2016_beam4']:.2f}"
        assert "quantization" in card and "ctranslate2" in card and bleu in card
    report = json.loads((results / "frontier.json").read_text())
    assert len(report["rows"]) == 5 and any(t["target"].endswith("qd2 beats pm2") for t in report["targets"])
    assert "## Targets" in (results / "frontier.md").read_text()

    # A rerun finds every row's file and trains nothing.
    stamps = [f.stat().st_mtime_ns for f in files]
    script.main(*script.parse(argv))
    assert [f.stat().st_mtime_ns for f in sorted((results / "rows").glob("*.json"))] == stamps

    # A row whose results and model are gone resumes from its last complete checkpoint, with its time carried over.
    clocks = sorted((tmp_path / "runs" / "d64-1+1-copy" / "kd-run").glob("checkpoint-*/hfqd_train_seconds.txt"),
                    key=lambda path: int(path.parent.name.split("-")[1]))
    last = float(clocks[-1].read_text())
    assert 0 < last <= rows["kd"]["train_seconds"]
    (results / "rows" / "d64-1+1-copy__kd.json").unlink()
    shutil.rmtree(tmp_path / "runs" / "d64-1+1-copy" / "kd")
    script.main(*script.parse(argv))
    again = json.loads((results / "rows" / "d64-1+1-copy__kd.json").read_text())
    assert again["train_seconds"] >= last
    assert again["metrics"]["bleu_test2016_beam4"] == pytest.approx(rows["kd"]["metrics"]["bleu_test2016_beam4"])

    # A run whose last checkpoint had run out of patience (the session ended before its row was saved) keeps its
    # best and trains no further on resume, even with epochs left. Here its history is made to say so: the best is
    # the first of the last `patience` + 1 evaluations (two, the budget's patience).
    run = tmp_path / "runs" / "d64-1+1-copy" / "kd-run"
    last = max(run.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    state = json.loads((last / "trainer_state.json").read_text())
    evaluations = [entry for entry in state["log_history"] if "eval_bleu" in entry]
    best = evaluations[-3]["eval_bleu"]
    evaluations[-2]["eval_bleu"] = evaluations[-1]["eval_bleu"] = best - 1.0
    state.update(best_metric=best, best_model_checkpoint=str(last))
    (last / "trainer_state.json").write_text(json.dumps(state))
    (results / "rows" / "d64-1+1-copy__kd.json").unlink()
    shutil.rmtree(tmp_path / "runs" / "d64-1+1-copy" / "kd")
    script.main(*script.parse([*argv, "--kd_epochs", "3"]))
    ended = json.loads((results / "rows" / "d64-1+1-copy__kd.json").read_text())
    assert max(run.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1])) == last
    assert ended["stopped_by"] == "early stopping" and ended["train_epochs"] == pytest.approx(state["epoch"])


@pytest.mark.slow
def test_frontier_rows_trained_elsewhere_are_scored_without_training_again(workspace, tmp_path, capsys):
    """`--train_only` (a GPU machine) saves trained rows with their record; a later run (the CPU) only scores them.
    A time budget ends training at the first evaluation past it (here two evaluations an epoch)."""
    pytest.importorskip("ctranslate2")
    script = _script()
    results, runs = tmp_path / "frontier", tmp_path / "runs"
    argv = [
        "--budget", "cpu", "--teacher", str(workspace / "teacher"), "--dataset_dir", str(workspace / "data"),
        "--output_dir", str(runs), "--results_dir", str(results), "--shapes", "d64-1+1-copy",
        "--rows", "kd", "qd2", "pm2", "qd2-scratch", "qat2-scratch", "--extra_rows_shape", "none", "--kd_epochs", "3",
        "--kd_minutes", "1e-6", "--evaluations_per_epoch", "2",
        "--quant_epochs", "1", "--validation_sentences", "10", "--timed_sentences", "8", "--speed_repeats", "1",
        "--max_length", "12", "--teacher_cache_dir", str(tmp_path / "cache"), "--per_device_train_batch_size", "32",
        "--bucket_size", "16", "--warmup_steps", "2", "--use_cpu", "true", "--plot", "false", "--logging_steps", "1",
    ]
    script.main(*script.parse(argv + ["--train_only", "true"]))
    assert not (results / "rows").exists()  # nothing scored, not even the teacher
    kd_record = json.loads((runs / "d64-1+1-copy" / "kd" / "hfqd_trained.json").read_text())
    assert 0 < kd_record["train_epochs"] < 1 and kd_record["train_seconds"] > 0  # stopped at the first evaluation
    assert kd_record["trained_on"]
    packed = json.loads((runs / "d64-1+1-copy" / "qd2" / "config.json").read_text())
    assert packed["quantization_config"]["bits"] == 2
    assert not (runs / "d64-1+1-copy" / "pm2").exists()

    assert kd_record["stopped_by"] == "time budget" and kd_record["best_step"] > 0
    # the row keeps its validations, since its run folder (the checkpoints) stays on the machine that trained it
    assert max(kd_record["validation_bleu_by_epoch"].values()) == pytest.approx(kd_record["best_validation_bleu_greedy"])

    # The time-boxed kd trains on (another lease, another machine) from its saved folder alone, to its epochs' end.
    shutil.rmtree(runs / "d64-1+1-copy" / "kd-run")  # its trainer states stay behind on the machine it came from
    with pytest.raises(ValueError, match="only full-precision rows"):
        script.main(*script.parse(argv + ["--train_only", "true", "--continue_rows", "qd2"]))
    more = argv + ["--train_only", "true", "--continue_rows", "kd", "--kd_minutes", "0", "--rows", "kd"]
    with pytest.raises(ValueError, match=r"\['qd2', 'qd2-run'\] .* were trained from it"):
        script.main(*script.parse(more))  # rows from the kd as it was would pass for rows from the continued one
    for stale in ("qd2", "qd2-run"):
        shutil.rmtree(runs / "d64-1+1-copy" / stale)
    script.main(*script.parse(more))
    continued = json.loads((runs / "d64-1+1-copy" / "kd" / "hfqd_trained.json").read_text())
    assert continued["continued_from"] == kd_record and continued["stopped_by"] in ("epochs", "early stopping")
    assert continued["train_epochs"] > kd_record["train_epochs"] and continued["train_epochs"] <= 3 + 1e-6
    assert continued["train_seconds"] > kd_record["train_seconds"]
    assert continued["best_validation_bleu_greedy"] >= kd_record["best_validation_bleu_greedy"]
    assert continued["trained_on"].count(" then ") == 1
    assert (runs / "d64-1+1-copy" / f"kd-run-from-step{kd_record['best_step']}").is_dir()
    # the continuation's validations follow the saved row's, their epochs counted on from its
    curve = {float(epoch): bleu for epoch, bleu in continued["validation_bleu_by_epoch"].items()}
    assert kd_record["validation_bleu_by_epoch"].items() <= continued["validation_bleu_by_epoch"].items()
    assert len(curve) > len(kd_record["validation_bleu_by_epoch"])
    assert max(curve) == pytest.approx(continued["train_epochs"], abs=0.01)
    assert max(curve.values()) == pytest.approx(continued["best_validation_bleu_greedy"])
    script.main(*script.parse(more))  # converged now: loaded, not trained again
    assert json.loads((runs / "d64-1+1-copy" / "kd" / "hfqd_trained.json").read_text()) == continued
    # a kd saved before the trainer kept its generation config: Seq2SeqTrainer's defaults beside max_new_tokens
    kd_generation = runs / "d64-1+1-copy" / "kd" / "generation_config.json"
    kd_generation.write_text(json.dumps({**json.loads(kd_generation.read_text()), "max_length": 20, "top_k": 50}))
    script.main(*script.parse(argv + ["--train_only", "true"]))  # qd2 again, from the continued kd
    qd2_generation = json.loads((runs / "d64-1+1-copy" / "qd2" / "generation_config.json").read_text())
    teacher_generation = json.loads((workspace / "teacher" / "generation_config.json").read_text())
    def settings(config: dict) -> dict:
        return {k: v for k, v in config.items() if k != "transformers_version" and not k.startswith("_")}

    assert settings(qd2_generation) == settings(teacher_generation)  # the teacher's, without the kd's defaults

    checkpoints = sorted(p.name for p in runs.rglob("checkpoint-*"))
    script.main(*script.parse(argv))
    assert sorted(p.name for p in runs.rglob("checkpoint-*")) == checkpoints  # no training in the scoring run
    rows = {f.stem.split("__")[1]: json.loads(f.read_text()) for f in (results / "rows").glob("*.json")}
    assert sorted(rows) == ["kd", "pm2", "qat2-scratch", "qd2", "qd2-scratch", "teacher"]
    for scratch in ("qd2-scratch", "qat2-scratch"):
        assert rows[scratch]["start"] == "teacher layers" and rows[scratch]["bits"] == 2
        assert rows[scratch]["train_epochs"] == kd_record["train_epochs"]  # kd's time budget

    def logged(row: str) -> set:
        states = (runs / "d64-1+1-copy" / f"{row}-run").glob("checkpoint-*/trainer_state.json")
        return {key for state in states for entry in json.loads(state.read_text())["log_history"] for key in entry}

    assert "kd_loss" in logged("qd2-scratch") and "kd_loss" not in logged("qat2-scratch")  # labels only
    # Rows still training are compared by their checkpoints' validations: the same as the finished rows' records.
    curves = [read_curve(row, str(runs / "d64-1+1-copy" / f"{row}-run")) for row in ("qd2-scratch", "qat2-scratch")]
    for curve in curves:
        assert curve.best[1] == pytest.approx(rows[curve.name]["best_validation_bleu_greedy"])
        assert 0 < curve.train_seconds <= rows[curve.name]["train_seconds"]
        # the finished row's results file gives the same curve back once its run folder is gone
        kept = load_curve(f"{curve.name}={results / 'rows' / f'd64-1+1-copy__{curve.name}.json'}")
        assert kept.points == curve.points and kept.train_seconds == rows[curve.name]["train_seconds"]
    report = write_curve_report(str(tmp_path / "curves"), {"command": "test"}, curves)
    assert "| epoch | qd2-scratch | qat2-scratch |" in report and (tmp_path / "curves.json").is_file()
    assert rows["kd"]["train_seconds"] == continued["train_seconds"]
    assert rows["qd2"]["bits"] == 2 and rows["qd2"]["start"] == "kd" and rows["qd2"]["trained_on"]
    assert rows["teacher"]["train_seconds"] is None and rows["pm2"]["train_seconds"] == 0
    card = (runs / "d64-1+1-copy" / "qd2" / "README.md").read_text()
    assert f"Trained on {rows['qd2']['trained_on']}: 1 epoch in" in card  # no budget for rows from kd here

    # The scored row, its card and its CTranslate2 export, listed for the Hub without a network.
    capsys.readouterr()
    script.main(*script.parse(argv + ["--push_row", "d64-1+1-copy/qd2", "--hub_model_id", "me/qd2-student",
                                      "--hub_dry_run", "true"]))
    listing = capsys.readouterr().out
    assert "to me/qd2-student:" in listing
    for name in ("model.safetensors", "README.md", "config.json", "ctranslate2-int8/model.bin"):
        assert f"  {name}\n" in listing
    for bad in (["--push_row", "d64-1+1-copy/kd", "--hub_model_id", "me/x"],  # fp32 kd: saved without a card
                ["--push_row", "d64-1+1-copy/qd3", "--hub_model_id", "me/x"],  # never scored
                ["--push_row", "d64-1+1-copy/qd2"]):  # no repository
        with pytest.raises((ValueError, FileNotFoundError), match="push_row|model card"):
            script.main(*script.parse(argv + bad + ["--hub_dry_run", "true"]))


def test_scoring_gives_the_threads_back(tmp_path):
    """Loading a CTranslate2 model sets the process's OpenMP threads to the translator's count; the frontier loads
    its translators inside its timing thread count, whose exit restores the threads training runs with."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from hfqd import export_ctranslate2
    from hfqd.bench.time_budget import torch_threads

    from .helpers import tiny_corpus, tiny_pair

    _, tokenizer, _ = tiny_corpus(50)
    model, _ = tiny_pair(len(tokenizer))
    folder = export_ctranslate2(model, str(tmp_path / "ct2"), "int8", tokenizer)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch_threads(1):
            translator = ctranslate2.Translator(folder, intra_threads=1)
            translator.translate_batch([tokenizer.convert_ids_to_tokens(tokenizer("A dog .")["input_ids"])],
                                       max_decoding_length=8)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_training_clock_leaves_the_teachers_work_out(tmp_path):
    """The teacher's work before training (its cache, its translations) neither counts as training nor uses up a
    row's time budget; it is measured apart."""
    import time

    from hfqd.bench.time_budget import Deadline, TrainingClock
    from transformers import TrainerControl, TrainerState

    clock = TrainingClock(None)
    deadline = Deadline(0.5, clock)
    time.sleep(0.6)  # the teacher's work
    clock.on_train_begin(None, None, None)
    control = TrainerControl()
    deadline.on_evaluate(None, TrainerState(epoch=0.25), control)
    assert not control.should_training_stop and clock.seconds() < 0.5 and clock.setup_seconds >= 0.6
    time.sleep(0.5)
    deadline.on_evaluate(None, TrainerState(epoch=0.5), control)
    assert control.should_training_stop

    # Resumed from a checkpoint written after its budget was used, the run counts as stopped by it from the start.
    (tmp_path / TrainingClock.NAME).write_text("0.7")
    resumed = Deadline(0.5, TrainingClock(str(tmp_path)))
    resumed.on_train_begin(None, None, None)
    assert resumed.passed() and resumed.reached


def test_early_stopping_patience_is_rebuilt_from_the_resumed_history():
    """A run resumed after evaluations that did not beat its best keeps counting from them, as if never stopped."""
    from hfqd.bench.time_budget import ResumablePatience, evaluations_since_best
    from transformers import Seq2SeqTrainingArguments, TrainerControl, TrainerState

    def state(values, best):
        return TrainerState(log_history=[{"loss": 1.0}] + [{"eval_bleu": v} for v in values], best_metric=best)

    assert evaluations_since_best(state([], None), "bleu") == 0
    assert evaluations_since_best(state([10.0, 12.5, 11.0, 12.5], 12.5), "eval_bleu") == 2  # a tie is no gain
    assert evaluations_since_best(state([10.0, 12.5], 12.5), "bleu") == 0
    assert evaluations_since_best(state([10.0, 11.0], 30.0), "bleu") == 2  # a continued row's best, from before

    args = Seq2SeqTrainingArguments("unused", eval_strategy="epoch", metric_for_best_model="bleu",
                                    load_best_model_at_end=True, save_strategy="epoch", report_to=[])
    early, control = ResumablePatience(early_stopping_patience=3), TrainerControl()
    early.on_train_begin(args, state([20.0, 33.6, 32.7, 32.4], 33.6), control)
    assert early.early_stopping_patience_counter == 2 and not early.ran_out
    early.on_evaluate(args, state([20.0, 33.6, 32.7, 32.4], 33.6), control, metrics={"eval_bleu": 33.0})
    assert early.ran_out and control.should_training_stop

    # Resumed from a checkpoint that a plain EarlyStoppingCallback wrote, it gets its own entry for the next save.
    older = state([20.0, 33.6], 33.6)
    older.stateful_callbacks = {"EarlyStoppingCallback": {"args": {}, "attributes": {}}}
    ResumablePatience(early_stopping_patience=3).on_train_begin(args, older, control)
    assert older.stateful_callbacks["ResumablePatience"]["attributes"]["early_stopping_patience_counter"] == 0


def test_a_continued_schedule_gives_what_the_original_would_have():
    """A row stopped at step 700 by its time budget continues with a fresh inverse_sqrt schedule: after re-warming
    the optimizer it gives each step the learning rate the original schedule gives 700 steps later."""
    from hfqd.bench.time_budget import continued_inverse_sqrt
    from transformers import get_scheduler

    def rates(lr, steps, **kwargs):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        schedule = get_scheduler("inverse_sqrt", optimizer, num_warmup_steps=30, scheduler_specific_kwargs=kwargs)
        out = []
        for _ in range(steps):
            out.append(schedule.get_last_lr()[0])
            optimizer.step()
            schedule.step()
        return out

    original = rates(2e-3, 1000)
    lr, kwargs = continued_inverse_sqrt(2e-3, 30, 700)
    continued = rates(lr, 300, **kwargs)
    assert continued[0] == 0 and continued[15] < original[715]  # warming up again
    assert continued[30:] == pytest.approx(original[730:], rel=1e-9)
    with pytest.raises(ValueError, match="warmup_steps"):
        continued_inverse_sqrt(2e-3, 0, 700)


def test_frontier_targets_are_judged_on_the_rows():
    from hfqd.bench.frontier_report import frontier_targets

    def row(name, t16, t17, size_x, ct2_speed, ct2_vs_hf, ct2_t16=None, shape="d192-3+1"):
        metrics = {"bleu_test2016_beam4": t16, "bleu_test2017_beam4": t17,
                   "ct2_int8_bleu_test2016_beam4": t16 if ct2_t16 is None else ct2_t16,
                   "ct2_int8_bleu_test2017_beam4": t17, "speed_ct2_vs_teacher_ct2": ct2_speed,
                   "speed_ct2_vs_teacher_hf": ct2_vs_hf}
        return {"shape": shape, "row": name, "vs_teacher_file": size_x, "metrics": metrics}

    teacher = row("teacher", 36.0, 28.0, 1.0, 1.0, 4.0, shape="teacher")
    good = [teacher, row("qd4", 35.5, 27.2, 10.5, 2.3, 16.0), row("qd2", 34.0, 26.0, 21.0, 2.5, 17.0)]
    judged = {t["target"].split(":")[0]: t["met"] for t in frontier_targets(good)}
    assert judged["qd4"] and judged["qd2"] and judged["best qd4 in CT2 int8"] and judged["best qd4"]
    bad = [teacher, row("qd4", 35.5, 26.8, 10.5, 1.9, 14.0, ct2_t16=35.0), row("qd2", 34.0, 26.0, 19.0, 2.5, 17.0)]
    judged = {t["target"].split(":")[0]: t["met"] for t in frontier_targets(bad)}
    assert not any(judged.values())  # 1.2 BLEU behind on test2017, too slow, CT2 drifts 0.5, qd2 too big

    # A QD student quantized from the shape's start is judged by the same targets, and against QAT from the start.
    scratch = [teacher, row("qd2-scratch", 34.0, 26.0, 21.0, 2.5, 17.0),
               row("qat2-scratch", 34.6, 25.9, 21.0, 2.5, 17.0)]
    judged = {t["target"]: t["met"] for t in frontier_targets(scratch)}
    assert judged["qd2: >= 20x smaller than the teacher file, within 2.5 BLEU on both test sets"]
    assert judged["d192-3+1: qd2-scratch beats qat2-scratch"] is False


def test_group_report_judges_targets_seed_by_seed(tmp_path):
    from hfqd.bench.frontier_report import group_targets, write_group_report

    def row(name, t16, t17, size_x=22.0, ct2_speed=2.3):
        metrics = {"bleu_test2016_beam4": t16, "bleu_test2017_beam4": t17, "ct2_int8_bleu_test2016_beam4": t16,
                   "ct2_int8_bleu_test2017_beam4": t17, "speed_ct2_vs_teacher_ct2": ct2_speed,
                   "speed_hf_vs_teacher_hf": 2.0}
        return {"shape": "d192-3+1", "row": name, "start": "kd", "bits": 2.44, "file_mb": 1.4, "train_epochs": 9,
                "train_seconds": 60.0, "vs_teacher_file": size_x, "metrics": metrics, "trained_on": "one GPU"}

    teacher = dict(row("teacher", 36.0, 28.0, 1.0, 1.0), start="given", file_mb=30.0)
    groups = {"qd2 steady": [row("qd2", 35.0, 26.0), row("qd2", 34.5, 25.6)],
              "qd2 one bad seed": [row("qd2", 35.0, 26.0), row("qd2", 33.0, 25.9)],  # 3.0 behind on test2016
              "qd4 slow": [row("qd4", 35.5, 27.5, 10.5, 1.9)],
              "qat2": [row("qat2", 30.0, 20.0)]}  # not a QD row: no target
    judged = {t["target"].split(":")[0]: t["met"] for t in group_targets(groups, teacher["metrics"])}
    assert judged == {"qd2 steady": True, "qd2 one bad seed": False, "qd4 slow": False}
    markdown = write_group_report(str(tmp_path / "groups"), {"command": "test"}, groups, teacher, plot=False,
                                  beats=[("qd2 steady", "qat2"), ("qat2", "qd2 one bad seed")])
    assert "34.75 (35.00, 34.50)" in markdown  # mean, then each seed
    assert "1 of 2 seeds" in markdown and (tmp_path / "groups.json").is_file()
    assert "| qd2 steady beats qat2 (mean BLEU, both test sets) | +4.75 / +5.80 BLEU (test2016 / test2017) | yes |" \
        in markdown
    assert "| qat2 beats qd2 one bad seed (mean BLEU, both test sets) | -4.00 / -5.95" in markdown
    with pytest.raises(ValueError, match="No group named 'qd3'"):
        write_group_report(str(tmp_path / "x"), {}, groups, teacher, plot=False, beats=[("qd3", "qat2")])


def test_report_groups_script_names_a_group_without_rows(tmp_path):
    spec = importlib.util.spec_from_file_location("report_groups", ROOT / "scripts" / "report_frontier_groups.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "a.json").write_text("{}")
    assert module.parse_group(f"kd={tmp_path}/a.json,{tmp_path}/b*.json") == ("kd", [f"{tmp_path}/a.json"])
    with pytest.raises(ValueError, match="no row file matches"):
        module.parse_group(f"qd4={tmp_path}/missing*.json")
    with pytest.raises(ValueError, match="NAME=GLOB"):
        module.parse_group("qd4")
    assert module.parse_pair(" qd2 > qat2 ") == ("qd2", "qat2")
    with pytest.raises(ValueError, match="A>B"):
        module.parse_pair("qd2")


def test_validation_curves_say_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        read_curve("qd2", str(tmp_path))
    with pytest.raises(ValueError, match="NAME=RUN_DIR"):
        run_dir_of("qd2")
    with pytest.raises(FileNotFoundError, match="neither a run folder nor a curves report"):
        run_dir_of(f"qd2={tmp_path}/missing.json")
    assert run_dir_of(f" qd2 = {tmp_path}") == ("qd2", str(tmp_path))


def test_a_curve_is_read_back_from_its_report(tmp_path):
    """A run's folder goes with its machine; the committed report gives its curve back, epoch for epoch."""
    recorded = Curve("qd2-scratch", "runs/gone", "runs/gone/checkpoint-681", {1.0: 1.55, 2.0: 13.27, 2.5: 14.0}, 97.5)
    other = Curve("qat2-scratch", "runs/gone2", "runs/gone2/checkpoint-454", {1.0: 1.2, 2.0: 12.01}, None)
    write_curve_report(str(tmp_path / "old"), {"metric": "eval_bleu on the validation split"}, [recorded, other])
    report = str(tmp_path / "old.json")
    back = load_curve(f"qd2-scratch={report}")
    assert (back.points, back.train_seconds, back.best) == (recorded.points, 97.5, (2.5, 14.0))
    assert back.source == f"{recorded.checkpoint} (recorded in {report})"
    assert load_curve(f"qat2-scratch={report}").points == other.points
    # A curve read back is reported like one read from a checkpoint.
    assert "| 2.5 | 14.00 |" in write_curve_report(str(tmp_path / "new"), {}, [back])
    # Who leads at the epochs both reached (2.5 only one did); epoch 1 is qd2's, epoch 2 a tie.
    tied = Curve("qat2-scratch", "runs/gone2", "runs/gone2/checkpoint-454", {1.0: 1.2, 2.0: 13.27}, None)
    side_by_side = write_curve_report(str(tmp_path / "both"), {}, [back, tied])
    assert "| 1 of 2 epochs |" in side_by_side and "| 0 of 2 epochs |" in side_by_side
    with pytest.raises(ValueError, match="no curve of that name.*qd2-scratch, qat2-scratch"):
        load_curve(f"qd4={report}")
    with pytest.raises(ValueError, match="not 'eval_chrf'"):
        load_curve(f"qd2-scratch={report}", metric="eval_chrf")
    # a row results file from before rows kept their validations says where to read the curve instead
    row = tmp_path / "d192-3+1__qd2.json"
    row.write_text(json.dumps({"shape": "d192-3+1", "row": "qd2", "best_validation_bleu_greedy": 33.4}))
    with pytest.raises(ValueError, match="neither a curves report nor a row results file"):
        load_curve(f"qd2={row}")
    row.write_text(json.dumps({"shape": "d192-3+1", "row": "qd2", "validation_bleu_by_epoch": {"1": 2.0}}))
    assert load_curve(f"qd2={row}").points == {1.0: 2.0}
    with pytest.raises(ValueError, match="records eval_bleu, not 'eval_chrf'"):
        load_curve(f"qd2={row}", metric="eval_chrf")


def test_vocab_map_benchmark_times_the_maps_against_both_teachers(workspace, tmp_path, monkeypatch):
    pytest.importorskip("ctranslate2")
    spec = importlib.util.spec_from_file_location("vocab_map", ROOT / "scripts" / "benchmark_vocab_map.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    teacher = str(workspace / "teacher")
    monkeypatch.setattr(sys, "argv", [
        "benchmark_vocab_map.py", "--teacher", teacher, "--dataset_dir", str(workspace / "data"), "--models", teacher,
        "--per_token", "3", "--always", "5", "--timed_sentences", "4", "--repeats", "1", "--max_length", "24",
        "--output", str(tmp_path / "vmap")])
    module.main()
    rows = json.loads((tmp_path / "vmap.json").read_text())["rows"]
    assert [(r["model"], r["per_token"]) for r in rows][:2] == [("teacher", None), ("teacher", 3)]
    assert all(r["speed_b32_vs_teacher_hf"] > 0 and r["speed_b1_vs_no_map"] > 0 for r in rows)
    assert "b32 vs teacher in transformers" in (tmp_path / "vmap.md").read_text()
