"""Parallel-text loading, tokenization, and the synthetic demo corpus."""

from .parallel import (
    TokenizedSplits,
    TruncationReport,
    load_parallel_dir,
    load_translation_dataset,
    tokenize_translation,
)
from .synthetic import synthetic_pairs, synthetic_translation_dataset
from .tokenizer import train_bpe_tokenizer, train_marian_tokenizer

__all__ = [
    "TokenizedSplits",
    "TruncationReport",
    "load_parallel_dir",
    "load_translation_dataset",
    "synthetic_pairs",
    "synthetic_translation_dataset",
    "tokenize_translation",
    "train_bpe_tokenizer",
    "train_marian_tokenizer",
]
