"""Evaluation: BLEU/chrF and decoding speed."""

from .translation import (
    SpeedReport,
    corpus_scores,
    decode_speed,
    make_compute_metrics,
    moses_tokenize,
    tokenized_bleu,
    translate,
)

__all__ = [
    "SpeedReport",
    "corpus_scores",
    "decode_speed",
    "make_compute_metrics",
    "moses_tokenize",
    "tokenized_bleu",
    "translate",
]
