"""Peer quantization-aware training libraries, applied to the same student as hfqd for the translation benchmark.

Each peer row is named `<library>-<method><bits>`:

    torchao-qat4 / torchao-qat2    torchao QAT weight fake-quantization (asymmetric intN, one group per bucket)
    torchao-qd4  / torchao-qd2     the same, trained with hfqd's distillation loss
    quanto-qat4  / quanto-qat2     optimum-quanto QAT (qint4 / qint2 weights, its default grouping), then `freeze`
    quanto-qd4   / quanto-qd2      the same, trained with hfqd's distillation loss

The peers only swap modules; training is the same `QuantizedDistillationTrainer` run with hfqd's own quantization
off (`bits=None`), so that the comparison changes the quantizer and nothing else. These libraries are a benchmark
extra (`pip install -e ".[bench]"`), never a runtime dependency of hfqd.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import torch
from torch import nn

from hfqd.quant.size import BUCKET_BITS, FP_BITS, SizeReport, unsaved_keys

_PEER = re.compile(r"^(?P<library>torchao|quanto)-(?P<method>qat|qd)(?P<bits>[24])$")
LIBRARIES = {"torchao": "torchao", "quanto": "optimum-quanto"}


@dataclass(frozen=True)
class PeerSpec:
    """One peer row: which library quantizes, at how many bits, with or without hfqd's distillation loss."""

    name: str
    library: str  # PyPI name of the library
    bits: int
    distill: bool

    @property
    def description(self) -> str:
        loss = "hfqd distillation loss" if self.distill else "labels only"
        return f"{self.library} QAT, {self.bits}-bit, {loss}"


def parse_peer(name: str) -> PeerSpec:
    """Turn a peer name (see the module docstring) into a :class:`PeerSpec`."""
    match = _PEER.match(name)
    if match is None:
        raise ValueError(f"Unknown peer {name!r}; use torchao-qat<2|4>, torchao-qd<2|4>, quanto-qat<2|4> or "
                         "quanto-qd<2|4>.")
    return PeerSpec(name, LIBRARIES[match["library"]], int(match["bits"]), match["method"] == "qd")


def _require(module: str, library: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise SystemExit(f"Peer rows need {library}: pip install -e \".[bench]\" (or drop the peer rows).") from err


def prepare(model: nn.Module, spec: PeerSpec, group_size: int) -> nn.Module:
    """Swap the student's layers for the peer's fake-quantized ones, in place, before training."""
    if spec.library == "torchao":
        ao = _require("torchao.quantization", "torchao")
        qat = _require("torchao.quantization.qat", "torchao")
        weight_config = qat.IntxFakeQuantizeConfig(getattr(torch, f"int{spec.bits}"), group_size=group_size,
                                                   is_symmetric=False)
        # Exactly nn.Linear / nn.Embedding, as hfqd selects by class name: Marian's sinusoidal positions are an
        # nn.Embedding subclass holding fixed values that neither library should quantize.
        ao.quantize_(model, qat.QATConfig(weight_config=weight_config, step="prepare"),
                     filter_fn=lambda module, fqn: type(module) in (nn.Linear, nn.Embedding))
    else:
        quanto = _require("optimum.quanto", "optimum-quanto")
        quanto.quantize(model, weights=getattr(quanto, f"qint{spec.bits}"))
    return model


def finalize(model: nn.Module, spec: PeerSpec) -> nn.Module:
    """What the library does after training: quanto freezes (stores integer weights); torchao's fake-quantized
    model is evaluated as trained (its `convert` step for a weight-only intN config only removes fake quantization)."""
    if spec.library == "optimum-quanto":
        _require("optimum.quanto", "optimum-quanto").freeze(model)
    return model


def _quantized_weights(model: nn.Module, spec: PeerSpec, group_size: int) -> dict[int, tuple[int, int]]:
    """id(weight) -> (elements, groups) for every weight the peer stores in low bits."""
    out: dict[int, tuple[int, int]] = {}
    for module in model.modules():
        name = type(module).__name__
        if name in ("FakeQuantizedLinear", "FakeQuantizedEmbedding"):
            weight = module.weight
            out[id(weight)] = (weight.numel(), math.ceil(weight.numel() / group_size))
        elif name == "QLinear" and getattr(module, "weight_qtype", None) is not None:
            weight = module.weight
            group = module.weight_group_size or weight.shape[-1]  # quanto: per output row when it cannot group
            out[id(weight)] = (weight.numel(), math.ceil(weight.numel() / group))
    return out


def peer_size(model: nn.Module, spec: PeerSpec, group_size: int) -> SizeReport:
    """Theoretical size by hfqd's formula (codes + two fp32 numbers per group + fp32 for the rest).

    A weight that some layer also uses unquantized is stored twice: quanto has no quantized embedding, so a tied
    embedding/output matrix keeps an fp32 copy for the embedding lookup beside the quantized output layer.
    """
    quantized = _quantized_weights(model, spec, group_size)
    used_fp = {id(m.weight) for m in model.modules()
               if type(m).__name__ in ("Embedding", "Linear") and isinstance(getattr(m, "weight", None), nn.Parameter)}
    q_params = fp_params = buckets = unsaved = 0
    bits = 0.0
    skip = unsaved_keys(model)
    for name, param in model.named_parameters():  # each tensor once
        if name in skip:
            unsaved += param.numel()
            continue
        entry = quantized.get(id(param))
        if entry is None or id(param) in used_fp:
            fp_params += param.numel()
            bits += FP_BITS * param.numel()
        if entry is not None:
            numel, groups = entry
            q_params += numel
            buckets += groups
            bits += spec.bits * numel + BUCKET_BITS * groups
    return SizeReport(q_params, fp_params, buckets, bits, FP_BITS * (q_params + fp_params), unsaved)


def save_peer(model: nn.Module, spec: PeerSpec, output_dir: str) -> float | None:
    """Save with the library's own serialization where it has one; returns the weights file size in MB.

    quanto: its frozen `state_dict` (integer data, scales and shifts) in safetensors. torchao: `None` (no
    serialization of sub-byte fake-quantized weights to compare).
    """
    if spec.library != "optimum-quanto":
        return None
    from safetensors.torch import save_file

    os.makedirs(output_dir, exist_ok=True)
    state, seen = {}, set()
    skip = unsaved_keys(model)  # as save_pretrained: what the model rebuilds on load is not stored
    for key, value in model.state_dict().items():
        # Tied modules appear under several names; store each tensor once, as safetensors requires.
        if key in skip or value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        state[key] = value.contiguous()
    path = os.path.join(output_dir, "model.safetensors")
    tmp = path + ".tmp"
    save_file(state, tmp)
    os.replace(tmp, path)
    return os.path.getsize(path) / 1e6
