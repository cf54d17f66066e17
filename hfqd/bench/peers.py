"""Peer quantization-aware training libraries, applied to the same student as hfqd for the translation benchmark.

Each peer row is named `<library>-<method><bits>`:

    torchao-qat4 / torchao-qat2    torchao QAT weight fake-quantization (asymmetric intN, one group per bucket)
    torchao-qd4  / torchao-qd2     the same, trained with hfqd's distillation loss
    quanto-qat4  / quanto-qat2     optimum-quanto QAT (qint4 / qint2 weights, its default grouping), then `freeze`
    quanto-qd4   / quanto-qd2      the same, trained with hfqd's distillation loss
    diffq-qat    / diffq-qd        diffq's DiffQuantizer (noise injection, bit widths learned per group of weights
                                   under a model-size penalty), labels only / with hfqd's distillation loss

The peers only swap modules or add hooks; training is the same `QuantizedDistillationTrainer` run with hfqd's own
quantization off (`bits=None`), so that the comparison changes the quantizer and nothing else (diffq adds its size
penalty and its bit-width parameters, see :class:`DiffQTrainer`). These libraries are a benchmark extra
(`pip install -e ".[bench]"`), never a runtime dependency of hfqd.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import torch
from torch import nn

from ..distill import QuantizedDistillationTrainer
from ..distill.trainer import own_param_group
from ..quant.size import FP_BITS, SizeReport, StoredAs, size_report, stored_once, unsaved_keys

_PEER = re.compile(r"^(?:(?P<library>torchao|quanto)-(?P<method>qat|qd)(?P<bits>[24])|diffq-(?P<diffq>qat|qd))$")
LIBRARIES = {"torchao": "torchao", "quanto": "optimum-quanto"}


@dataclass(frozen=True)
class DiffQSettings:
    """DiffQ's knobs: the weight of the model-size penalty (per MiB), the learning rate of the bit widths, the
    initial bits and the group of weights that shares one learned bit width."""

    penalty: float = 1.0
    bits_learning_rate: float = 1e-2
    init_bits: float = 4.0
    group_size: int = 16


@dataclass(frozen=True)
class PeerSpec:
    """One peer row: which library quantizes, at how many bits, with or without hfqd's distillation loss."""

    name: str
    library: str  # PyPI name of the library
    bits: int | None  # None: learned (diffq)
    distill: bool

    @property
    def description(self) -> str:
        loss = "hfqd distillation loss" if self.distill else "labels only"
        if self.library == "diffq":
            return f"diffq DiffQuantizer, learned bits, {loss}"
        return f"{self.library} QAT, {self.bits}-bit, {loss}"


def parse_peer(name: str) -> PeerSpec:
    """Turn a peer name (see the module docstring) into a :class:`PeerSpec`."""
    match = _PEER.match(name)
    if match is None:
        raise ValueError(f"Unknown peer {name!r}; use torchao-qat<2|4>, torchao-qd<2|4>, quanto-qat<2|4>, "
                         "quanto-qd<2|4>, diffq-qat or diffq-qd.")
    if match["diffq"]:
        return PeerSpec(name, "diffq", None, match["diffq"] == "qd")
    return PeerSpec(name, LIBRARIES[match["library"]], int(match["bits"]), match["method"] == "qd")


def _require(module: str, library: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise SystemExit(f"Peer rows need {library}: pip install -e \".[bench]\" (or drop the peer rows).") from err


def prepare(model: nn.Module, spec: PeerSpec, group_size: int, diffq: DiffQSettings | None = None) -> nn.Module:
    """Swap the student's layers for the peer's fake-quantized ones (diffq: attach its quantizer), in place,
    before training."""
    if spec.library == "diffq":
        settings = diffq or DiffQSettings()
        library = _require("diffq", "diffq")
        unsaved = sorted(unsaved_keys(model))  # fixed tables (Marian's positions) are neither stored nor quantized
        quantizer = library.DiffQuantizer(model, group_size=settings.group_size, init_bits=settings.init_bits,
                                          exclude=unsaved)
        model.__dict__["diffq_quantizer"] = quantizer  # a plain attribute: not a submodule, not in the state dict
        model.__dict__["diffq_settings"] = settings
    elif spec.library == "torchao":
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
    elif spec.library == "diffq":
        # Quantize once and drop the hooks, instead of re-quantizing every weight at each decoding step. (diffq's
        # `detach()` would do this too but fails on tied weights in 0.2.4; the bit widths stay for the size count.)
        quantizer = model.diffq_quantizer
        quantizer.quantize()
        quantizer._pre_handle.remove()
        quantizer._post_handle.remove()
    return model


class DiffQTrainer(QuantizedDistillationTrainer):
    """The distillation trainer plus what DiffQ needs: its model-size penalty in the loss, and its bit-width
    parameters in their own optimizer group (DiffQ's `setup_optimizer`)."""

    def _bit_widths(self) -> list[nn.Parameter]:
        return [qp.logit for qp in self.model.diffq_quantizer._qparams if qp.other is None]

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        quantizer, widths = self.model.diffq_quantizer, self._bit_widths()
        if not quantizer._optimizer_setup:
            # DiffQ's own `setup_optimizer` adds a tied weight's shared widths twice (a duplicate-parameter warning
            # in torch); the same group, each width once: own learning rate, no weight decay.
            own_param_group(optimizer, widths, lr=self.model.diffq_settings.bits_learning_rate)
            quantizer.no_optimizer()  # tells DiffQ its widths are taken care of
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = result if return_outputs else (result, None)
        if model.training:
            loss = loss + self.model.diffq_settings.penalty * self.model.diffq_quantizer.model_size()
        return (loss, outputs) if return_outputs else loss


def trainer_class(spec: PeerSpec) -> type[QuantizedDistillationTrainer]:
    return DiffQTrainer if spec.library == "diffq" else QuantizedDistillationTrainer


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
    """Theoretical size by hfqd's formula (codes + two fp32 numbers per group + fp32 for the rest); for diffq, its
    own exact count (`true_model_size`: learned bits per group, one fp32 pair per tensor, bit widths stored).

    A weight that some layer also uses unquantized is stored twice: quanto has no quantized embedding, so a tied
    embedding/output matrix keeps an fp32 copy for the embedding lookup beside the quantized output layer.
    """
    if spec.library == "diffq":
        return _diffq_size(model)
    quantized = {key: StoredAs(numel, groups, spec.bits)
                 for key, (numel, groups) in _quantized_weights(model, spec, group_size).items()}
    read_fp32 = {id(m.weight) for m in model.modules() if type(m).__name__ in ("Embedding", "Linear")
                 and isinstance(getattr(m, "weight", None), nn.Parameter)}
    return size_report(model, quantized, also_fp32=read_fp32)


def diffq_mean_bits(model: nn.Module) -> float:
    """Mean learned bit width over diffq's quantized weights (rounded per group, as diffq stores them)."""
    quantizer = model.diffq_quantizer
    total = count = 0.0
    for qp in quantizer._qparams:
        if qp.other is None:
            bits = quantizer._get_bits(qp.logit.detach()).round().clamp(1, 15)
            total += float(bits.sum()) * (qp.param.numel() / bits.numel())
            count += qp.param.numel()
    return total / count


def _diffq_size(model: nn.Module) -> SizeReport:
    quantizer = model.diffq_quantizer
    bits = quantizer.true_model_size() * 2**20 * 8  # diffq counts MiB
    q_params = sum(qp.param.numel() for qp in quantizer._qparams if qp.other is None)
    skip = unsaved_keys(model)
    unsaved = sum(p.numel() for n, p in model.named_parameters() if n in skip)
    widths = sum(p.numel() for p in (qp.logit for qp in quantizer._qparams if qp.other is None))
    fp_params = sum(p.numel() for p in model.parameters()) - q_params - unsaved - widths
    return SizeReport(q_params, fp_params, len(quantizer._qparams), bits, FP_BITS * (q_params + fp_params), unsaved)


def save_peer(model: nn.Module, spec: PeerSpec, output_dir: str) -> float | None:
    """Save with the library's own serialization where it has one; returns the weights file size in MB.

    quanto: its frozen `state_dict` (integer data, scales and shifts) in safetensors. diffq: its bit-packed
    quantized state (`get_quantized_state`, pickled by `torch.save`). torchao: `None` (no serialization of
    sub-byte fake-quantized weights to compare).
    """
    if spec.library == "torchao":
        return None
    os.makedirs(output_dir, exist_ok=True)
    if spec.library == "diffq":
        path = os.path.join(output_dir, "diffq_state.pt")
        torch.save(model.diffq_quantizer.get_quantized_state(packed=True), path + ".tmp")
        os.replace(path + ".tmp", path)
        return os.path.getsize(path) / 1e6
    from safetensors.torch import save_file

    skip = unsaved_keys(model)  # as save_pretrained: what the model rebuilds on load is not stored
    kept = stored_once((key, value) for key, value in model.state_dict().items() if key not in skip)
    state = {key: value.contiguous() for key, value in kept.items()}
    path = os.path.join(output_dir, "model.safetensors")
    tmp = path + ".tmp"
    save_file(state, tmp)
    os.replace(tmp, path)
    return os.path.getsize(path) / 1e6
