"""Deployment formats for trained students: CTranslate2 for fast CPU translation."""

from .ct2 import QUANTIZATIONS, export_ctranslate2, supported_architectures

__all__ = ["QUANTIZATIONS", "export_ctranslate2", "supported_architectures"]
