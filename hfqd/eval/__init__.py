"""Evaluation: BLEU/chrF and decoding speed."""

from .translation import (
    SpeedReport,
    bleu_difference_p_value,
    corpus_scores,
    decode_speed,
    make_compute_metrics,
    moses_tokenize,
    tokenized_bleu,
    translate,
)

__all__ = [
    "SpeedReport",
    "bleu_difference_p_value",
    "corpus_scores",
    "decode_speed",
    "make_compute_metrics",
    "moses_tokenize",
    "tokenized_bleu",
    "translate",
]
