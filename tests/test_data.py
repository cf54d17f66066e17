import json

import pytest

from hfqd.data import (
    load_parallel_dir,
    load_translation_dataset,
    synthetic_pairs,
    synthetic_translation_dataset,
    tokenize_translation,
    train_bpe_tokenizer,
)


def _write(folder, name, lines):
    (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def parallel_dir(tmp_path):
    pairs = synthetic_pairs(30, seed=1)
    for prefix, rows in (("train", pairs[:20]), ("val", pairs[20:25]), ("test2016", pairs[25:])):
        _write(tmp_path, f"{prefix}.en", [e for e, _ in rows])
        _write(tmp_path, f"{prefix}.de", [d for _, d in rows])
    return tmp_path


def test_load_parallel_dir(parallel_dir):
    ds = load_parallel_dir(str(parallel_dir))
    assert {k: len(v) for k, v in ds.items()} == {"train": 20, "validation": 5, "test": 5}
    first = ds["train"][0]["translation"]
    assert first["en"] == synthetic_pairs(30, seed=1)[0][0]


def test_misaligned_empty_missing(parallel_dir):
    _write(parallel_dir, "val.de", ["only one line"])
    with pytest.raises(ValueError, match="has 5 lines but .* has 1"):
        load_parallel_dir(str(parallel_dir))
    _write(parallel_dir, "val.de", [])
    with pytest.raises(ValueError, match="empty"):
        load_parallel_dir(str(parallel_dir))
    with pytest.raises(FileNotFoundError, match="test2017.en"):
        load_parallel_dir(str(parallel_dir), splits={"test": "test2017"})
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_parallel_dir(str(parallel_dir / "nope"))


def test_blank_lines(parallel_dir):
    lines = (parallel_dir / "train.en").read_text().splitlines()
    lines[3] = "  "
    _write(parallel_dir, "train.en", lines)
    assert len(load_parallel_dir(str(parallel_dir))["train"]) == 19  # dropped with a warning in training data
    lines = (parallel_dir / "test2016.de").read_text().splitlines()
    lines[0] = ""
    _write(parallel_dir, "test2016.de", lines)
    with pytest.raises(ValueError, match="blank"):
        load_parallel_dir(str(parallel_dir))


def test_all_blank_training_text_and_empty_split_are_errors(parallel_dir):
    _write(parallel_dir, "train.de", [""] * 20)
    with pytest.raises(ValueError, match="train.de has a blank side: nothing to train on"):
        load_parallel_dir(str(parallel_dir))
    raw = synthetic_translation_dataset(20, seed=0, n_eval=4)
    tokenizer = train_bpe_tokenizer((ex[k] for ex in raw["train"]["translation"] for k in ("en", "de")), 200)
    raw["validation"] = raw["validation"].select([])
    with pytest.raises(ValueError, match="'validation' split is empty"):
        tokenize_translation(raw, tokenizer, "en", "de")


def test_load_dataset_path_with_translation_column(tmp_path):
    # The same `datasets.load_dataset` route as a Hub name, on a local JSON-lines dataset folder.
    for split in ("train", "validation", "test"):
        rows = [{"translation": {"en": e, "de": d}} for e, d in synthetic_pairs(4, seed=len(split))]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ds = load_translation_dataset(str(tmp_path))
    assert len(ds["train"]) == 4 and ds["test"][0]["translation"]["de"]
    with pytest.raises(ValueError, match="languages"):
        load_translation_dataset(str(tmp_path), source_lang="fr")


def test_truncation_is_counted_not_dropped():
    raw = synthetic_translation_dataset(60, seed=0, n_eval=10)
    tokenizer = train_bpe_tokenizer((ex[k] for ex in raw["train"]["translation"] for k in ("en", "de")), 200)
    out = tokenize_translation(raw, tokenizer, "en", "de", max_source_length=6, max_target_length=6)
    assert len(out.datasets["test"]) == 10 and len(out.references["test"]) == 10
    assert out.truncation["test"].sources > 0
    assert max(len(x) for x in out.datasets["test"]["input_ids"]) == 6


def test_synthetic_is_deterministic_and_held_out():
    a, b = synthetic_translation_dataset(200, seed=3), synthetic_translation_dataset(200, seed=3)
    assert a["test"]["translation"] == b["test"]["translation"]
    train_sources = {ex["en"] for ex in a["train"]["translation"]}
    assert not any(ex["en"] in train_sources for ex in a["test"]["translation"])
    assert len(a["validation"]) == len(a["test"]) == 50


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    (tmp_path / "train.en").write_text("a\nb\nc\n")
    (tmp_path / "train.de").write_bytes("x\ny\n".encode() + "Stra\u00dfe\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"train.de, line 3: invalid UTF-8"):
        load_parallel_dir(str(tmp_path), splits={"train": "train"})
