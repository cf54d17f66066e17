"""The real job (opus-mt-en-de teacher, WMT16 de-en) rehearsed offline on stand-ins the test builds itself.

The teacher has the exact Helsinki-NLP/opus-mt-en-de layout (MarianTokenizer with source.spm / target.spm /
vocab.json, `<pad>` last and the decoder start token, a zero `<pad>` row, `bad_words_ids = [[pad]]`), the data the
Hub's wmt16 schema (`translation: {"de": ..., "en": ...}`, saved with `save_to_disk`). The recipe runs its default
path on them with tiny step counts: a student copied from the teacher's layers, token-level and sequence-level KD
from the cached teacher, QD at 4 bits, packed save and reload, CTranslate2 export, and the push dry run.
"""

import importlib.util
import json

import pytest
from datasets import Dataset, DatasetDict
from transformers import AutoModelForSeq2SeqLM

from hfqd.data import synthetic_pairs

from .helpers import opus_mt_teacher
from .test_recipe import _parse, _recipe


def _wmt16_like(folder):
    splits = {"train": synthetic_pairs(200, seed=0), "validation": synthetic_pairs(20, seed=5),
              "test": synthetic_pairs(20, seed=6)}
    DatasetDict({name: Dataset.from_list([{"translation": {"de": de, "en": en}} for en, de in pairs])
                 for name, pairs in splits.items()}).save_to_disk(str(folder))


@pytest.mark.slow
def test_default_job_runs_offline_on_opus_mt_and_wmt16_stand_ins(tmp_path, capsys):
    opus_mt_teacher(tmp_path / "opus-mt-en-de", layers=2)
    _wmt16_like(tmp_path / "wmt16")
    news = synthetic_pairs(12, seed=9)  # scored like ../shared/data/wmt-newstest-ende (plain-text files)
    (tmp_path / "newstest").mkdir()
    (tmp_path / "newstest" / "newstest2016-ende.en").write_text("".join(en + "\n" for en, _ in news))
    (tmp_path / "newstest" / "newstest2016-ende.de").write_text("".join(de + "\n" for _, de in news))
    deploy = importlib.util.find_spec("ctranslate2") is not None
    argv = [
        "--teacher", str(tmp_path / "opus-mt-en-de"), "--dataset", str(tmp_path / "wmt16"),
        "--method", "qd", "--bits", "4", "--student_encoder_layers", "1", "--student_decoder_layers", "1",
        "--distillation_mode", "sequence+token", "--sequence_num_beams", "2", "--sequence_max_length", "16",
        "--sequence_cache_dir", str(tmp_path / "seqkd"), "--teacher_cache_dir", str(tmp_path / "teacher_cache"),
        "--max_steps", "3", "--per_device_train_batch_size", "8", "--eval_max_new_tokens", "12", "--report_to",
        "none", "--output_dir", str(tmp_path / "run"), "--push_to_hub", "--hub_model_id", "me/opus-mt-en-de-4bit",
        "--hub_revision", "4bit-v1", "--hub_dry_run", "--test_dir", str(tmp_path / "newstest"), "--test_split", "newstest2016-ende",
        *(["--export_ctranslate2", "int8"] if deploy else []),
    ]
    rows = _recipe().main(*_parse(_recipe(), argv))
    assert [r.method for r in rows] == ["teacher", "kd", "pm4", "qd4"]
    student = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "run" / "qd4"))
    assert student.config.quantization_config.bits == 4 and student.config.encoder_layers == 1
    assert student.config.pad_token_id == student.config.vocab_size - 1  # OPUS-MT's vocabulary layout kept
    out = capsys.readouterr().out
    assert "newstest2016-ende (12 sentences)" in out and "nrefs:1|case:mixed" in out  # the sacreBLEU signature
    assert "dry run: would upload" in out and "to me/opus-mt-en-de-4bit (branch 4bit-v1):" in out
    assert "model.safetensors" in out
    assert "hfqd_shadows" not in out
    if deploy:
        assert "ctranslate2-int8/model.bin" in out
        info = json.loads((tmp_path / "run" / "qd4" / "ctranslate2-int8" / "hfqd_export.json").read_text())
        assert info["quantization"] == "int8"
    assert len(list((tmp_path / "teacher_cache").iterdir())) == 1  # kd and qd4 shared one teacher cache
