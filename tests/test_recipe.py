import importlib.util
import json
import sys
from pathlib import Path

import pytest

from hfqd.cli import parse_recipe_args
from hfqd.runner.job import plan_methods

ROOT = Path(__file__).parents[1]


def _recipe():
    spec = importlib.util.spec_from_file_location("wmt_en_de", ROOT / "recipes" / "wmt_en_de.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def _parse(recipe, argv):
    types = (recipe.ModelArguments, recipe.DataArguments, recipe.RecipeArguments, recipe.DistillationArguments)
    return parse_recipe_args(types, str(ROOT / "recipes" / "configs" / "wmt_en_de"), argv)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("preset", sorted(
    (p.parent.name, p.stem) for p in (ROOT / "recipes" / "configs").glob("*/*.yaml")))
def test_every_preset_parses(preset, tmp_path):
    recipe_name, preset_name = preset
    recipe = _load(recipe_name)
    types = (recipe.ModelArguments, recipe.DataArguments, recipe.RecipeArguments, recipe.DistillationArguments)
    parsed = parse_recipe_args(types, recipe.CONFIG_DIR, ["--preset", preset_name, "--output_dir", str(tmp_path)])
    assert parsed[-1].output_dir == str(tmp_path)


def test_command_line_overrides_preset(tmp_path):
    recipe = _recipe()
    _, data_args, recipe_args, args = _parse(
        recipe, ["--preset", "demo", "--bits", "2", "--methods", "kd", "qd2", "--output_dir", str(tmp_path)]
    )
    assert args.bits == 2 and recipe_args.methods == ["kd", "qd2"] and data_args.synthetic_pairs


def test_method_shortcut_sets_the_rows(tmp_path):
    recipe = _recipe()
    _, _, job, args = _parse(recipe, ["--preset", "demo", "--method", "qd+dq", "--bits", "2",
                                      "--output_dir", str(tmp_path)])
    specs = plan_methods(job, args, has_teacher=True)
    assert job.methods == ["kd", "pm2", "qddq2"] and job.push_method == "qddq2"
    assert [s.name for s in specs] == ["kd", "qddq2", "pm2"]  # kd first: the others start from it


def test_bits_sets_the_width_of_the_default_rows(tmp_path):
    recipe = _recipe()
    _, _, job, args = _parse(recipe, ["--bits", "2", "--output_dir", str(tmp_path)])
    plan_methods(job, args, has_teacher=True)
    assert job.methods == ["kd", "pm2", "qd2"]


def test_bad_rows_and_a_push_without_a_repository_fail_before_any_work(tmp_path):
    recipe = _recipe()
    with pytest.raises(ValueError, match="Unknown method 'qd9x'"):
        recipe.main(*_parse(recipe, ["--preset", "demo", "--methods", "qd9x", "--output_dir", str(tmp_path)]))
    with pytest.raises(SystemExit, match="--hub_model_id"):
        recipe.main(*_parse(recipe, ["--preset", "demo", "--push_to_hub", "true", "--output_dir", str(tmp_path)]))
    assert not any(tmp_path.iterdir())  # nothing was trained or written


@pytest.mark.parametrize("value", ["0", "-5"])
def test_sample_counts_must_be_positive(tmp_path, value):
    recipe = _recipe()
    with pytest.raises(ValueError, match="max_train_samples must be a positive number"):
        _parse(recipe, ["--preset", "demo", "--max_train_samples", value, "--output_dir", str(tmp_path)])


def test_offline_default_job_names_the_demo(tmp_path):
    import os
    import subprocess

    for offline in ("0", "1"):
        env = {**os.environ, "HF_HUB_OFFLINE": offline, "HF_HOME": str(tmp_path / "hf"),
               "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens there: the Hub is unreachable
        result = subprocess.run([sys.executable, str(ROOT / "recipes" / "wmt_en_de.py"), "--output_dir",
                                 str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode != 0
        assert "--preset demo" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_local_dataset_folders_load_without_a_config(tmp_path):
    from datasets import Dataset, DatasetDict

    pairs = [{"translation": {"de": f"Hallo {i}", "en": f"Hello {i}"}} for i in range(4)]
    ds = DatasetDict({split: Dataset.from_list(pairs) for split in ("train", "validation", "test")})
    ds.save_to_disk(str(tmp_path / "saved"))
    for split in ds:
        ds[split].to_parquet(str(tmp_path / "parquet" / f"{split}.parquet"))
    recipe = _recipe()
    for folder in ("saved", "parquet"):
        data = _parse(recipe, ["--dataset", str(tmp_path / folder), "--output_dir", str(tmp_path / "o")])[1]
        raw = recipe.load_data(data, seed=0)
        assert raw["train"][0]["translation"] == {"de": "Hallo 0", "en": "Hello 0"}


def test_a_student_with_another_tokenizer_is_refused(tmp_path):
    from .helpers import tiny_corpus

    _, tok_a, _ = tiny_corpus(50, seed=0)
    _, tok_b, _ = tiny_corpus(50, seed=0)
    tok_b.add_special_tokens({"pad_token": "<other-pad>"})  # same text vocabulary, other special token
    from hfqd.distill import check_same_tokenizer

    check_same_tokenizer(tok_a, tok_a)
    with pytest.raises(ValueError, match="same tokenizer"):
        check_same_tokenizer(tok_a, tok_b)


def test_bad_preset_and_unknown_key(tmp_path):
    recipe = _recipe()
    with pytest.raises(SystemExit, match="Presets"):
        _parse(recipe, ["--preset", "nope"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("bitz: 4\n")
    with pytest.raises(SystemExit, match="Unknown keys"):
        _parse(recipe, ["--config", str(bad)])


def test_bad_method_fails_before_training(tmp_path):
    recipe = _recipe()
    parsed = _parse(recipe, ["--preset", "demo", "--methods", "qd9x", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="Unknown method"):
        recipe.main(*parsed)
    parsed = _parse(recipe, ["--preset", "demo", "--methods", "kd", "qd9", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="bits must be from 1 to 8"):
        recipe.main(*parsed)


@pytest.mark.slow
def test_demo_path_on_a_reduced_size(tmp_path, fake_hub):
    recipe = _recipe()
    argv = [
        "--preset", "demo", "--output_dir", str(tmp_path), "--synthetic_pairs", "400", "--teacher_epochs", "2",
        "--num_train_epochs", "1", "--teacher_d_model", "32", "--teacher_ffn_dim", "64", "--teacher_layers", "2",
        "--student_d_model", "16", "--student_ffn_dim", "32", "--methods", "student", "pm4", "qd4",
        "dq2", "--logging_steps", "5", "--eval_max_new_tokens", "24", "--push_to_hub", "--hub_model_id", "me/demo-4bit",
        "--export_ctranslate2", "int8",
    ]
    rows = recipe.main(*_parse(recipe, argv))
    assert [r.method for r in rows] == ["teacher", "kd", "student", "pm4", "qd4", "dq2"]
    dq2 = rows[-1]
    # Bit allocation moves points between tensors: the row reports the real mean width, not the nominal 2 bits.
    assert dq2.huffman_mb < dq2.file_mb and 1 <= dq2.bits <= 8
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["method"] for r in saved["rows"]] == [r.method for r in rows]
    assert all(0 <= r["metrics"]["bleu"] <= 100 for r in saved["rows"])
    qd4 = next(r for r in rows if r.method == "qd4")
    kd = next(r for r in rows if r.method == "kd")
    assert qd4.size_mb < kd.size_mb and qd4.params == kd.params
    assert (tmp_path / "results.md").read_text().count("\n| ") == len(rows) + 1  # header + rows
    assert (tmp_path / "teacher" / "config.json").is_file()
    # Quantized rows are saved packed and load back through from_pretrained.
    from transformers import AutoModelForSeq2SeqLM

    packed = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "qd4"))
    assert packed.config.quantization_config.bits == 4
    assert qd4.file_mb < kd.file_mb
    card = (tmp_path / "qd4" / "README.md").read_text()
    assert "quantized distillation" in card and "me/demo-4bit" in card
    uploaded = fake_hub.files["me/demo-4bit"]
    assert {"model.safetensors", "config.json", "README.md", "tokenizer.json"} <= set(uploaded)
    assert uploaded["model.safetensors"] == (tmp_path / "qd4" / "model.safetensors").read_bytes()
    assert "hfqd_shadows.safetensors" not in uploaded
    # The CTranslate2 export travels in the same commit, and the card shows how to use it without hfqd.
    assert {"ctranslate2-int8/model.bin", "ctranslate2-int8/tokenizer.json"} <= set(uploaded)
    assert "ctranslate2.Translator" in uploaded["README.md"].decode()


@pytest.mark.slow
def test_finetune_a_packed_student_on_a_new_domain(tmp_path):
    recipe = _recipe()
    first = [
        "--preset", "demo", "--output_dir", str(tmp_path / "demo"), "--synthetic_pairs", "300", "--teacher_epochs",
        "1", "--num_train_epochs", "1", "--teacher_d_model", "32", "--teacher_ffn_dim", "64", "--teacher_layers", "1",
        "--student_d_model", "16", "--student_ffn_dim", "32", "--methods", "qd4", "--eval_max_new_tokens", "16",
    ]
    recipe.main(*_parse(recipe, first))
    second = [
        "--preset", "finetune_demo", "--student", str(tmp_path / "demo" / "qd4"), "--output_dir",
        str(tmp_path / "ft"), "--synthetic_pairs", "300", "--num_train_epochs", "1", "--eval_max_new_tokens", "16",
    ]
    rows = recipe.main(*_parse(recipe, second))
    assert [r.method for r in rows] == ["initial", "finetune"]
    assert all(r.bits == 4 for r in rows) and rows[0].params == rows[1].params
    card = (tmp_path / "ft" / "finetune" / "README.md").read_text()
    assert "Fine-tuned from the packed hfqd model" in card
    from transformers import AutoModelForSeq2SeqLM

    assert AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "ft" / "finetune")).config.quantization_config.bits == 4


@pytest.mark.slow
def test_an_interrupted_job_resumes_where_it_stopped(tmp_path, monkeypatch):
    """`--resume` loads the teacher and the rows saved before a crash and continues the row that was training from
    its last complete checkpoint: the results are those of the uninterrupted job, bit for bit."""
    import safetensors.torch
    import torch

    from hfqd import QuantizedDistillationTrainer

    recipe = _recipe()

    def argv(folder, *extra):
        return ["--preset", "demo", "--output_dir", str(tmp_path / folder), "--synthetic_pairs", "200",
                "--teacher_epochs", "1", "--teacher_d_model", "32", "--teacher_ffn_dim", "64", "--teacher_layers", "1",
                "--student_d_model", "16", "--student_ffn_dim", "32", "--methods", "kd", "qd4",
                "--num_train_epochs", "2", "--save_strategy", "steps", "--save_steps", "3",
                "--eval_max_new_tokens", "8", *extra]

    straight = recipe.main(*_parse(recipe, argv("straight")))
    real_step = QuantizedDistillationTrainer.training_step

    def crash_in_qd4(self, *args, **kwargs):
        if self.args.output_dir.endswith("qd4") and self.state.global_step == 5:
            raise KeyboardInterrupt  # the machine goes away during the last row, after its checkpoint-3
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(QuantizedDistillationTrainer, "training_step", crash_in_qd4)
    with pytest.raises(KeyboardInterrupt):
        recipe.main(*_parse(recipe, argv("job")))
    monkeypatch.undo()
    job = tmp_path / "job"
    kd_weights = (job / "kd" / "model.safetensors").read_bytes()
    started, real_train = [], QuantizedDistillationTrainer.train

    def recorded_train(self, *args, **kwargs):
        started.append((Path(self.args.output_dir).name, kwargs.get("resume_from_checkpoint")))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(QuantizedDistillationTrainer, "train", recorded_train)
    resumed = recipe.main(*_parse(recipe, argv("job", "--resume")))
    assert started == [("qd4", str(job / "qd4" / "checkpoint-3"))]  # the teacher and kd were loaded, not trained
    assert (job / "kd" / "model.safetensors").read_bytes() == kd_weights
    assert [(r.method, r.metrics) for r in resumed] == [(r.method, r.metrics) for r in straight]
    assert [r.train_seconds is not None for r in resumed] == [True, True, True]
    saved, want = (safetensors.torch.load_file(folder / "qd4" / "model.safetensors")
                   for folder in (job, tmp_path / "straight"))
    assert saved.keys() == want.keys() and all(torch.equal(saved[k], want[k]) for k in want)
    # A saved row is never reused under other settings or on other data.
    with pytest.raises(ValueError, match="learning_rate"):
        recipe.main(*_parse(recipe, argv("job", "--resume", "--learning_rate", "0.001")))
    with pytest.raises(ValueError, match="training data"):
        recipe.main(*_parse(recipe, argv("job", "--resume", "--synthetic_pairs", "180")))
