"""A fault applied to what an inference engine can corrupt: a layer's weight or bias tensor, or one
element run of its output for every image. New tensors; the model is left untouched."""

from __future__ import annotations

import torch
from torch import nn

from dse.errors import InputError
from dse.resilience.fault import Fault, corrupt, run_positions
from dse.resilience.formats import fixed_scale

ROLES = ("weight", "bias", "output")  # the tensor roles inference engines inject into
TIMES = ("permanent", "inference")


def layer_module(model: nn.Module, path: str) -> nn.Module:
    """The sub-module at dotted ``path``; InputError naming the layer when there is none."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise InputError(f"unknown layer {path!r}", field="Layer") from None


def check_supported(fault: Fault) -> None:
    """InputError unless an inference engine can run ``fault`` (its role and time)."""
    if fault.where.role not in ROLES:
        raise InputError(f"inference engines inject into {list(ROLES)}, not "
                         f"{fault.where.role!r} tensors", field="Role")
    if fault.when.kind not in TIMES:
        raise InputError(f"inference faults are {list(TIMES)}, not {fault.when.kind!r}",
                         field="When")


def _corrupt_run(tensor: torch.Tensor, fault: Fault, axis: int) -> tuple[torch.Tensor, ...]:
    """(flat positions, faulty values) of the fault's run in ``tensor`` (rows of ``tensor`` along
    dim 0 when ``axis`` is 1: per-image outputs, values (N, K)). The fixed-point scale comes from
    the whole tensor (or each index of ``axis``), as :func:`fixed_scale` states."""
    per_image = axis == 1
    shape = tensor.shape[1:] if per_image else tensor.shape
    pos = run_positions(fault, shape).to(tensor.device)
    flat = tensor.detach().reshape(len(tensor), -1) if per_image else tensor.detach().reshape(1, -1)
    values = flat[:, pos]
    scale = None
    if fault.fmt.fixed:
        full = fixed_scale(tensor.detach(), fault.fmt.width, fault.fmt.per_channel,
                           axis=axis if tensor.dim() > axis else 0)
        scale = full.expand_as(tensor).reshape(flat.shape)[:, pos]
    return pos, corrupt(values, fault, scale)


def faulty_params(module: nn.Module, fault: Fault) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The module's (weight, bias) with the fault applied to its role's tensor."""
    role = fault.where.role
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    target = weight if role == "weight" else bias
    if not isinstance(target, torch.Tensor):
        raise InputError(f"layer {fault.where.layer!r} has no {role} tensor", field="Layer")
    pos, values = _corrupt_run(target, fault, axis=0)
    out = target.detach().clone(memory_format=torch.contiguous_format)
    out.view(-1)[pos] = values[0]
    w = out if role == "weight" else weight.detach()
    b = out if role == "bias" else (None if bias is None else bias.detach())
    return w, b


def fault_channels(module: nn.Module, fault: Fault) -> list[int]:
    """Output channels (dim 0 of the weight / bias) a weight or bias fault touches."""
    t = module.weight if fault.where.role == "weight" else module.bias
    per = t[0].numel() if t.dim() > 1 else 1
    pos = run_positions(fault, t.shape)
    return sorted({int(p) // per for p in pos})


def faulty_activation(golden: torch.Tensor, fault: Fault) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat positions (K,), faulty values (N, K)) of an output fault's run, one row per image
    of ``golden`` (N, ...): the golden values stored in the fault's format with the fault applied.
    Fixed-point scales come from the golden output of all images (per tensor, or per channel =
    dim 1)."""
    return _corrupt_run(golden, fault, axis=1)
