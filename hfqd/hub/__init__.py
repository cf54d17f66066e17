"""Packed low-bit checkpoints: saving, `from_pretrained` loading, size report."""

from .bitpack import pack_codes, packed_size, unpack_codes
from .attach import prepare_packed_student
from .integration import HfqdConfig, HfqdHfQuantizer
from .packed import PackedSize, packed_size_report, packed_state_dict, unpack_tensor
from .push import PushError, planned_upload, push_folder
from .save import save_packed

__all__ = [
    "HfqdConfig",
    "HfqdHfQuantizer",
    "PackedSize",
    "PushError",
    "pack_codes",
    "packed_size",
    "packed_size_report",
    "packed_state_dict",
    "prepare_packed_student",
    "planned_upload",
    "push_folder",
    "save_packed",
    "unpack_codes",
    "unpack_tensor",
]
