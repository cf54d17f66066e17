"""Tiny translation fixtures for trainer tests: a synthetic corpus, a tokenizer trained on it, tiny Marians."""

from __future__ import annotations

from datasets import Dataset, DatasetDict

from hfqd.data import synthetic_pairs, tokenize_translation, train_bpe_tokenizer

from .conftest import tiny_marian


def tiny_corpus(n: int = 200, seed: int = 0):
    pairs = synthetic_pairs(n, seed=seed)
    raw = DatasetDict({"train": Dataset.from_dict({"translation": [{"en": e, "de": d} for e, d in pairs]})})
    tokenizer = train_bpe_tokenizer([x for p in pairs for x in p], vocab_size=300)
    # Shorter than the tiny models' 64 positions.
    return raw, tokenizer, tokenize_translation(raw, tokenizer, "en", "de", max_source_length=48, max_target_length=48)


def tiny_pair(vocab_size: int):
    """A teacher and a differently initialised student, both tiny."""
    return tiny_marian(seed=1, vocab_size=vocab_size, d_model=32), tiny_marian(seed=2, vocab_size=vocab_size)
