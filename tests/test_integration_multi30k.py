"""Integration test on the real Multi30k data and teacher in ../shared (skipped where they are absent)."""

from pathlib import Path

import pytest

SHARED = Path(__file__).parents[2] / "shared"
DATA = SHARED / "data" / "multi30k"
TEACHER = SHARED / "models" / "multi30k-en-de-marian-7.7m"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (DATA / "tok").is_dir() or not TEACHER.is_dir(), reason="../shared Multi30k not present"),
]


@pytest.mark.parametrize("split,official", [("test2016", "test_2016_flickr"), ("test2017", "test_2017_flickr")])
def test_moses_pipeline_reproduces_the_official_tokenized_references(split, official):
    pytest.importorskip("sacremoses")
    from hfqd.eval import moses_tokenize

    raw = (DATA / f"{split}.de").read_text(encoding="utf-8").splitlines()
    tok = (DATA / "tok" / f"{official}.lc.norm.tok.de").read_text(encoding="utf-8").splitlines()
    assert moses_tokenize(raw, "de") == tok


def test_packed_teacher_translates_like_the_teacher(tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    import hfqd  # noqa: F401  (registers the packed format)
    from hfqd.eval import corpus_scores, translate
    from hfqd.hub import save_packed
    from hfqd.quant import QuantConfig, quantize_

    teacher = AutoModelForSeq2SeqLM.from_pretrained(TEACHER).eval()
    tokenizer = AutoTokenizer.from_pretrained(TEACHER)
    sources = (DATA / "test2016.en").read_text(encoding="utf-8").splitlines()[:40]
    references = (DATA / "test2016.de").read_text(encoding="utf-8").splitlines()[:40]
    fp = corpus_scores(translate(teacher, tokenizer, sources), references)["bleu"]
    quantized = quantize_(teacher, QuantConfig(bits=8, bucket_size=256))
    save_packed(quantized, str(tmp_path), tokenizer=tokenizer)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    ids = tokenizer(sources[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(quantized(**ids, decoder_input_ids=ids["input_ids"]).logits,
                           loaded(**ids, decoder_input_ids=ids["input_ids"]).logits)
    packed = corpus_scores(translate(loaded, tokenizer, sources), references)["bleu"]
    assert fp > 15 and abs(packed - fp) < 3  # 8 bits barely changes a working teacher
