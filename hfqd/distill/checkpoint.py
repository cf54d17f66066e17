"""Training checkpoints of quantized models.

`save_pretrained` cannot save a parametrized model with tied weights (it rejects the shared
`parametrizations.weight.original` tensors). A training checkpoint therefore stores the full-precision shadow
weights under the plain parameter names (so the folder is also an ordinary full-precision checkpoint) and the
quantization settings beside them in `hfqd_quant_config.json`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import safetensors.torch
import torch
from torch import nn
from transformers import TrainerCallback

from ..quant import QuantConfig, get_quant_config, iter_shadow_names, shadow_state_dict
from ..quant.size import stored_once
from ..utils import atomic_write_text

QUANT_CONFIG_NAME = "hfqd_quant_config.json"
COMPLETE_MARKER = "hfqd_checkpoint_complete"  # written last: a checkpoint without it was interrupted
QUANTIZER_STATE_NAME = "hfqd_quantizers.safetensors"


def save_quantization_state(model: nn.Module, output_dir: str) -> None:
    """Write the quantization config and quantizer state next to a checkpoint's weights."""
    config = get_quant_config(model)
    if config is None:
        return
    _, quantizer_state = shadow_state_dict(model)
    tmp = os.path.join(output_dir, QUANT_CONFIG_NAME + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config.to_dict(), f, indent=2)
    os.replace(tmp, os.path.join(output_dir, QUANT_CONFIG_NAME))
    if quantizer_state:
        tmp = os.path.join(output_dir, QUANTIZER_STATE_NAME + ".tmp")
        # Tied weights share one quantizer, so its points appear under every alias; safetensors stores a tensor
        # once (loading fills the aliases, which are the same parameter).
        unique = {key: value.contiguous() for key, value in stored_once(quantizer_state.items()).items()}
        safetensors.torch.save_file(unique, tmp)
        os.replace(tmp, os.path.join(output_dir, QUANTIZER_STATE_NAME))


def read_quant_config(checkpoint_dir: str) -> QuantConfig | None:
    """The :class:`QuantConfig` saved in a training checkpoint, if any."""
    path = os.path.join(checkpoint_dir, QUANT_CONFIG_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return QuantConfig.from_dict(json.load(f))


def load_shadow_checkpoint(model: nn.Module, checkpoint_dir: str) -> None:
    """Load a checkpoint written by :func:`shadow_state_dict` into a quantized ``model``.

    Raises:
        FileNotFoundError: no `model.safetensors` in ``checkpoint_dir``.
        ValueError: a tensor of the model is missing from the checkpoint.
    """
    weights_file = os.path.join(checkpoint_dir, "model.safetensors")
    if not os.path.isfile(weights_file):
        raise FileNotFoundError(f"No model.safetensors in {checkpoint_dir}; is it a checkpoint folder?")
    saved = safetensors.torch.load_file(weights_file)
    quantizer_file = os.path.join(checkpoint_dir, QUANTIZER_STATE_NAME)
    if os.path.isfile(quantizer_file):
        saved.update(safetensors.torch.load_file(quantizer_file))
    renames = dict(iter_shadow_names(model))
    state = model.state_dict(keep_vars=True)
    target: dict[str, torch.Tensor] = {}
    loaded_ids: set[int] = set()
    for key in state:
        source = renames.get(key, key)
        if source in saved:
            target[key] = saved[source]
            loaded_ids.add(id(state[key]))
    # Tied tensors are saved once, under one of their names: any loaded alias covers the others.
    missing = [key for key in state if key not in target and id(state[key]) not in loaded_ids]
    # Tensors the model rebuilds itself (e.g. Marian's sinusoidal positions) are never saved.
    rebuilt = getattr(model, "_keys_to_ignore_on_load_missing", None) or []
    missing = [key for key in missing if not any(re.search(pattern, key) for pattern in rebuilt)]
    if missing:
        raise ValueError(f"Checkpoint {checkpoint_dir} lacks {len(missing)} tensors of the model, e.g. {missing[:3]}.")
    model.load_state_dict(target, strict=False)


def is_complete_checkpoint(folder: str) -> bool:
    """Whether a checkpoint folder was written to the end (its completion marker exists)."""
    return os.path.isfile(os.path.join(folder, COMPLETE_MARKER))


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The `checkpoint-N` folder with the largest N whose save finished, or `None`."""
    if not os.path.isdir(output_dir):
        return None
    steps = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(r"checkpoint-(\d+)", name)
        if match and is_complete_checkpoint(os.path.join(output_dir, name)):
            steps.append((int(match[1]), name))
    return os.path.join(output_dir, max(steps)[1]) if steps else None


class TrainingClock(TrainerCallback):
    """Wall-clock training seconds, written into every checkpoint so that a resumed row reports its whole time.

    It starts with training, so that the teacher's one-off work before it (building the teacher cache or the
    sequence-level targets, or loading them) neither counts nor eats into a row's time budget; that work is
    measured apart (`setup_seconds`)."""

    NAME = "hfqd_train_seconds.txt"

    def __init__(self, resume_from: str | None):
        path = os.path.join(resume_from, self.NAME) if resume_from else ""
        self.before = float(Path(path).read_text()) if path and os.path.isfile(path) else 0.0
        self.created = time.perf_counter()
        self.start: float | None = None
        self.setup_seconds = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()
        self.setup_seconds = self.start - self.created

    def seconds(self) -> float:
        return self.before + (time.perf_counter() - self.start if self.start is not None else 0.0)

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            atomic_write_text(os.path.join(folder, self.NAME), repr(self.seconds()))
