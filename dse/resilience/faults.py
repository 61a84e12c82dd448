"""Fault descriptions: where a fault sits (a layer's weights or its output activations), which bits
of which stored word it hits, how (flip / stuck-at), and for which images.

A weight fault with ``image=None`` is permanent for the campaign (every image sees it); with an
image it is transient, present for that one inference. An activation fault corrupts one element of
the layer's output, for one image or (``image=None``) for every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dse.errors import InputError
from dse.resilience.formats import FAULT_KINDS, check_bits, corrupt, quant_scale

TARGETS = ("weights", "activations")


@dataclass(frozen=True)
class Fault:
    """One fault. ``index`` indexes the layer's ``weight`` tensor (weights) or one image's output
    tensor without the batch dimension (activations)."""

    layer: str
    index: tuple[int, ...]
    bits: tuple[int, ...]
    target: str = "weights"
    kind: str = "bitflip"
    fmt: str = "fp32"
    image: int | None = None
    per_channel: bool = False  # int8 only: one scale per output channel instead of per tensor

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise InputError(f"unknown target {self.target!r}; expected one of {list(TARGETS)}",
                             field="target")
        if self.kind not in FAULT_KINDS:
            raise InputError(f"unknown fault {self.kind!r}; expected one of {list(FAULT_KINDS)}",
                             field="fault")
        object.__setattr__(self, "bits", check_bits(self.fmt, self.bits))
        object.__setattr__(self, "index", tuple(int(i) for i in self.index))


def layer_module(model: nn.Module, path: str) -> nn.Module:
    """The sub-module at dotted ``path``; InputError naming the layer when there is none."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise InputError(f"unknown layer {path!r}", field="Layer") from None


def check_index(shape: torch.Size | tuple[int, ...], index: tuple[int, ...], layer: str) -> None:
    """InputError when ``index`` is not an element of a tensor of ``shape``."""
    if len(index) != len(shape) or any(not 0 <= i < s for i, s in zip(index, shape, strict=True)):
        raise InputError(f"index {index} is outside {layer}'s tensor of shape {tuple(shape)}",
                         field="TensorIndex")


def faulty_weight(module: nn.Module, fault: Fault) -> torch.Tensor:
    """The module's weight tensor with the fault applied (a new tensor; the module is untouched)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise InputError(f"layer {fault.layer!r} has no weight tensor", field="Layer")
    check_index(weight.shape, fault.index, fault.layer)
    w = weight.detach()
    scale = None
    if fault.fmt == "int8":
        full = quant_scale(w, fault.per_channel, axis=0)
        scale = full.reshape(-1)[fault.index[0] if fault.per_channel else 0]
    out = w.clone()
    out[fault.index] = corrupt(w[fault.index].reshape(1), fault.fmt, fault.bits, fault.kind,
                               scale)[0]
    return out


def faulty_activation(golden: torch.Tensor, fault: Fault) -> torch.Tensor:
    """Faulty values of the fault's output element, one per image of ``golden`` (N, ...): the
    golden value stored in ``fault.fmt`` with the fault applied. int8 scales come from the
    golden output of all images (per tensor, or per channel = dim 1)."""
    check_index(golden.shape[1:], fault.index, fault.layer)
    values = golden[(slice(None), *fault.index)]
    scale = None
    if fault.fmt == "int8":
        full = quant_scale(golden, fault.per_channel, axis=1 if golden.dim() > 1 else 0)
        scale = full.reshape(-1)[fault.index[0] if fault.per_channel else 0]
    return corrupt(values, fault.fmt, fault.bits, fault.kind, scale)
