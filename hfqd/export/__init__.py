"""Deployment formats for trained students: CTranslate2 for fast CPU translation, with optional output shortlists."""

from .ct2 import QUANTIZATIONS, export_ctranslate2, supported_architectures
from .vocab_map import count_cooccurrence, vocab_map_lines, write_vocab_map

__all__ = [
    "QUANTIZATIONS",
    "count_cooccurrence",
    "export_ctranslate2",
    "supported_architectures",
    "vocab_map_lines",
    "write_vocab_map",
]
