"""`quantize_` and friends: put quantizers on a model's weights, list them, take them off."""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from .config import QuantConfig
from .learned import LearnedQuantizer
from .quantizer import Quantizer, QuantState, UniformQuantizer

FilterFn = Callable[[nn.Module, str], bool]


@dataclass
class QuantizedParameter:
    """One quantized tensor: its first qualified name, every module using it, and its settings."""

    name: str
    module_names: list[str]
    quantizer: Quantizer
    shadow: nn.Parameter

    @property
    def bits(self) -> int:
        return self.quantizer.bits

    @property
    def numel(self) -> int:
        return self.shadow.numel()

    @property
    def n_buckets(self) -> int:
        size = self.quantizer.bucket_size
        return 1 if size is None else -(-self.numel // size)


def _quantizers(module: nn.Module) -> list[nn.Module]:
    if not parametrize.is_parametrized(module, "weight"):
        return []
    return [p for p in module.parametrizations.weight if isinstance(p, Quantizer)]


def is_quantized(model: nn.Module) -> bool:
    """Whether any weight of ``model`` carries an hfqd quantizer."""
    return any(_quantizers(m) for m in model.modules())


def _select(model: nn.Module, config: QuantConfig, filter_fn: FilterFn | None) -> list[tuple[str, nn.Module]]:
    def matches(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    selected = []
    for name, module in model.named_modules():
        if type(module).__name__ not in config.module_types:
            continue
        if not isinstance(getattr(module, "weight", None), nn.Parameter) and not parametrize.is_parametrized(
            module, "weight"
        ):
            continue
        if config.include and not matches(name, config.include):
            continue
        if matches(name, config.exclude):
            continue
        if filter_fn is not None and not filter_fn(module, name):
            continue
        selected.append((name, module))
    if config.keep_first_last and selected:
        first, last = selected[0][1].weight, selected[-1][1].weight
        selected = [(n, m) for n, m in selected if m.weight is not first and m.weight is not last]
    return selected


def quantize_(
    model: nn.Module,
    config: QuantConfig,
    filter_fn: FilterFn | None = None,
    points_per_tensor: dict[str, int] | None = None,
) -> nn.Module:
    """Quantize the selected weights of ``model`` in place; returns ``model``.

    Each selected ``module.weight`` becomes ``Q(module.parametrizations.weight.original)`` in every forward pass;
    ``original`` is the full-precision shadow that the optimizer updates through the straight-through gradient.

    Args:
        model: any `nn.Module`.
        config: a :class:`QuantConfig`.
        filter_fn: optional `(module, name) -> bool` to narrow the selection further.
        points_per_tensor: for `method="learned"`, the number of points of some tensors (by parameter name), e.g.
            from :func:`hfqd.quant.allocate_points`; the others get `2**bits`.

    Raises:
        ValueError: if ``model`` is already quantized, nothing matches the selection, a `module_bits` pattern
            matches no selected module, or a selected weight holds inf or NaN.

    Example usage::

        quantize_(model, QuantConfig(bits=4, bucket_size=256))
        model(inputs).loss.backward()   # gradients land on the full-precision shadows
    """
    if not isinstance(config, QuantConfig):
        raise TypeError(f"`config` must be a QuantConfig, got {type(config).__name__}.")
    if is_quantized(model):
        raise ValueError(
            "This model is already quantized by hfqd. Call `hfqd.convert_(model)` first to re-quantize it "
            "with other settings."
        )
    selected = _select(model, config, filter_fn)
    if not selected:
        raise ValueError(
            f"No module matched the selection (module_types={list(config.module_types)}, include="
            f"{list(config.include)}, exclude={list(config.exclude)}); nothing was quantized."
        )
    for name, module in selected:
        if not bool(torch.isfinite(module.weight.detach()).all()):
            bad = int((~torch.isfinite(module.weight.detach())).sum())
            raise ValueError(
                f"{name}.weight holds {bad} non-finite values (inf or NaN); quantizing it would turn whole buckets "
                "into NaN. Fix or retrain the model, or leave the layer out (exclude=...)."
            )
    unmatched = [pattern for pattern, _ in config.module_bits
                 if not any(fnmatch.fnmatchcase(name, pattern) for name, _ in selected)]
    if unmatched:
        raise ValueError(
            f"`module_bits` pattern(s) {unmatched} match none of the {len(selected)} quantized modules (e.g. "
            f"{[name for name, _ in selected[:3]]}); a typo would silently leave those weights at {config.bits} bits."
        )
    state = QuantState()
    names: dict[int, list[str]] = {}  # every module name of each weight (tied weights have several)
    for name, module in selected:
        names.setdefault(id(module.weight), []).append(name)
    by_param: dict[int, Quantizer] = {}
    for name, module in selected:
        weight = module.weight
        quantizer = by_param.get(id(weight))
        if quantizer is None:
            param_name = f"{name}.weight" if name else "weight"
            bits = config.bits_for(names[id(weight)])
            if config.method == "learned":
                n_points = (points_per_tensor or {}).get(param_name, 2**bits)
                quantizer = LearnedQuantizer(config, param_name, state, weight, n_points)
            else:
                quantizer = UniformQuantizer(config, param_name, state, bits)
            by_param[id(weight)] = quantizer
        # unsafe=True: the quantizer keeps shape and dtype, and must not call right_inverse on registration.
        parametrize.register_parametrization(module, "weight", quantizer, unsafe=True)
    hooked = [model] + [m for _, m in selected]
    for module in dict.fromkeys(hooked):
        state.hooks.append(module.register_forward_pre_hook(state.enter))
        state.hooks.append(module.register_forward_hook(state.leave, always_call=True))
    model._hfqd_quant_config = config
    return model


def selected_parameters(model: nn.Module, config: QuantConfig, filter_fn: FilterFn | None = None) -> dict:
    """``{parameter name: weight}`` that `quantize_` would quantize with ``config`` (tied weights once)."""
    out: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for name, module in _select(model, config, filter_fn):
        if id(module.weight) not in seen:
            seen.add(id(module.weight))
            out[f"{name}.weight" if name else "weight"] = module.weight
    return out


def quantized_parameters(model: nn.Module) -> list[QuantizedParameter]:
    """Every distinct quantized tensor of ``model`` (tied weights listed once), in module order."""
    found: dict[int, QuantizedParameter] = {}
    for name, module in model.named_modules():
        for quantizer in _quantizers(module):
            entry = found.get(id(quantizer))
            if entry is None:
                shadow = module.parametrizations.weight.original
                found[id(quantizer)] = QuantizedParameter(quantizer.param_name, [name], quantizer, shadow)
            else:
                entry.module_names.append(name)
    return list(found.values())


def quant_state(model: nn.Module) -> QuantState | None:
    """The model's shared :class:`QuantState`, or `None` if it is not quantized."""
    for module in model.modules():
        for quantizer in _quantizers(module):
            return quantizer.state
    return None


def set_quant_step(model: nn.Module, step: int) -> None:
    """Tell the quantizers the training step (seeds stochastic rounding identically on every process)."""
    state = quant_state(model)
    if state is not None:
        state.step = int(step)


def iter_shadow_names(model: nn.Module) -> Iterator[tuple[str, str]]:
    """Pairs ``(state-dict key of a shadow, plain weight name)`` for every parametrized weight, tied ones included."""
    for name, module in model.named_modules():
        if _quantizers(module):
            prefix = f"{name}." if name else ""
            yield f"{prefix}parametrizations.weight.original", f"{prefix}weight"


@torch.no_grad()
def convert_(model: nn.Module) -> nn.Module:
    """Replace every quantized weight by its quantized value as a plain parameter and remove the quantizers.

    The "convert" step of quantization-aware training (as torchao calls it): the weights keep their quantized
    values, stored in full precision.

    Tied weights stay tied. Afterwards the model has no hfqd state and runs at plain PyTorch speed; its weights
    hold at most ``2**bits`` distinct values per bucket. To keep the quantized model as it is, build the plain copy
    from :func:`materialized_state_dict` instead: a `copy.deepcopy` shares torch's parametrization classes with the
    original, so removing them from the copy would break the original.
    """
    entries = quantized_parameters(model)
    if not entries:
        raise ValueError("This model is not quantized by hfqd; there is nothing to convert.")
    values = [(e.shadow, e.quantizer.quantize(e.shadow)) for e in entries]
    state = entries[0].quantizer.state
    for module in model.modules():
        if _quantizers(module):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
    for shadow, value in values:
        shadow.copy_(value)
    _remove_state_hooks(model, state)
    if hasattr(model, "_hfqd_quant_config"):
        del model._hfqd_quant_config
    return model


def _remove_state_hooks(model: nn.Module, state: QuantState) -> None:
    """Remove the forward hooks bound to ``state`` from every module of ``model``.

    Found by scanning the modules rather than through the handles kept at registration: a deep copy of a quantized
    model has its own hooks (bound to its own state), while the copied handles still point at the original's.
    """
    for module in model.modules():
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key, hook in list(hooks.items()):
                if getattr(hook, "__self__", None) is state:
                    del hooks[key]
                    module._forward_hooks_always_called.pop(key, None)
    state.hooks.clear()


def dequantize_(model: nn.Module) -> nn.Module:
    """Deprecated name of :func:`convert_` (the weights keep their quantized values; nothing is dequantized)."""
    warnings.warn("hfqd.dequantize_ is renamed hfqd.convert_; the old name goes in the next release.",
                  FutureWarning, stacklevel=2)
    return convert_(model)


def freeze_(model: nn.Module) -> nn.Module:
    """Deprecated name of :func:`convert_`."""
    warnings.warn("hfqd.freeze_ is renamed hfqd.convert_; the old name goes in the next release.",
                  FutureWarning, stacklevel=2)
    return convert_(model)


def learned_points(model: nn.Module) -> list[nn.Parameter]:
    """The learned point vectors of ``model`` (one per quantized tensor), for their own optimizer group."""
    return [e.quantizer.points for e in quantized_parameters(model) if isinstance(e.quantizer, LearnedQuantizer)]


@torch.no_grad()
def sort_points_(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Re-sort every learned point vector; call after each optimizer step.

    With ``optimizer``, its per-parameter state of each point vector (Adam's moments, SGD's momentum) is permuted
    the same way, so every point keeps its own running statistics after two points swap places.
    """
    for entry in quantized_parameters(model):
        if isinstance(entry.quantizer, LearnedQuantizer):
            points = entry.quantizer.points
            order = entry.quantizer.sort_points_()
            state = optimizer.state.get(points, {}) if optimizer is not None else {}
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == points.shape:
                    state[key] = value[order]


def get_quant_config(model: nn.Module) -> QuantConfig | None:
    """The :class:`QuantConfig` that `quantize_` applied to ``model``, if any."""
    return getattr(model, "_hfqd_quant_config", None)


def shadow_state_dict(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split ``model.state_dict()`` into plain-named weights (shadows renamed) and quantizer state.

    Quantizer state is what lives inside the parametrization modules (e.g. learned points); uniform quantizers
    have none.
    """
    renames = dict(iter_shadow_names(model))
    weights, quantizer_state = {}, {}
    for key, value in model.state_dict().items():
        if key in renames:
            weights[renames[key]] = value
        elif ".parametrizations." in key or key.startswith("parametrizations."):
            quantizer_state[key] = value
        else:
            weights[key] = value
    return weights, quantizer_state


@torch.no_grad()
def materialized_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict under plain names holding the quantized values (what the model computes with), quantizers left
    in place; for building a plain copy of a quantized model.

    (`convert_` on a `copy.deepcopy` of a quantized model is not an option: torch's parametrizations put the
    `weight` property on a class the copy shares with the original, and removing it from one breaks the other.)
    """
    weights, _ = shadow_state_dict(model)
    values = {e.shadow.data_ptr(): e.quantizer.quantize(e.shadow) for e in quantized_parameters(model)}
    return {name: values.get(tensor.data_ptr(), tensor) for name, tensor in weights.items()}
