"""A faulty model for your own evaluation loop (PyTorchFI's ``declare_weight_fault_injection``
idea, as a context manager).

    with perturbed(model, Fault.of("features.0", (3, 0, 1, 1), (30,))) as faulty:
        accuracy = my_eval(faulty, my_loader)

Weight and bias faults corrupt the parameter in place (in the fault's number format, as the
engines do) and are restored bit for bit on exit, even when the loop raises. Output faults are
forward hooks that corrupt the fault's run of every image of every batch (a fixed-point output's
scale comes from the batch at hand, as the engines take it from all their images). Faults are permanent
(the engines' per-image ``inference`` faults have no meaning in a user's loop). The engines
remain the way to run campaigns: this is for evaluations dse does not know (segmentation mIoU,
detection mAP, your own metric).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from dse.errors import InputError
from dse.resilience.fault import Fault
from dse.resilience.inference.targets import (
    check_supported,
    faulty_activation,
    faulty_params,
    layer_module,
)


@contextmanager
def perturbed(model: nn.Module, faults: Fault | Sequence[Fault]) -> Iterator[nn.Module]:
    """Yield ``model`` with ``faults`` applied; everything is undone on exit."""
    faults = [faults] if isinstance(faults, Fault) else list(faults)
    for fault in faults:
        check_supported(fault)
        if fault.when.kind != "permanent":
            raise InputError("a perturbed model runs your own batches, so its faults are"
                             f" permanent, not {fault.when.kind!r}", field="When")
    with ExitStack() as undo:
        for fault in faults:
            module = layer_module(model, fault.where.layer)
            if fault.where.role == "output":
                undo.callback(module.register_forward_hook(_output_hook(fault)).remove)
            else:
                _corrupt_param(module, fault, undo)
        yield model


def _corrupt_param(module: nn.Module, fault: Fault, undo: ExitStack) -> None:
    param = getattr(module, fault.where.role)
    saved = param.detach().clone()
    weight, bias = faulty_params(module, fault)
    with torch.no_grad():
        param.copy_(weight if fault.where.role == "weight" else bias)

    def restore() -> None:
        with torch.no_grad():
            param.copy_(saved)

    undo.callback(restore)


def _output_hook(fault: Fault):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        pos, values = faulty_activation(output, fault)
        out = output.clone()
        out.reshape(len(out), -1)[:, pos] = values.to(out.dtype)
        return out

    return hook
