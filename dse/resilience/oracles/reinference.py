"""Oracles for the mapping-aware campaign: each mapped fault's faulty layer output recomputed whole,
and its outcome by full re-inference of the network (what the delta + fast-engine path must equal).
Slow on purpose; used by tests and benchmarks, never by a campaign."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dse.resilience.mapped.campaign import LayerCapture, MappedFault
from dse.resilience.outcomes import TOP1


def naive_layer_output(capture: LayerCapture, fault: MappedFault, image: int) -> torch.Tensor:
    """The faulty layer output of one image, recomputed whole (the baseline the deltas must match):
    the layer runs again with the corrupted operand, and its result is taken on the fault's
    footprint only (outside it the clean copy was used); a partial-sum or product fault adds the
    word's change to its one output."""
    module, ops = capture.module, capture.ops
    x = capture.inputs[image : image + 1].double()
    w = module.weight.detach().double().clone(memory_format=torch.contiguous_format)
    if isinstance(module, nn.Conv2d):
        pad_h, pad_w = module.padding
        x = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    x = x.clone(memory_format=torch.contiguous_format)
    change = float(fault.word_delta[image if len(fault.word_delta) > 1 else 0])
    if fault.dataspace == "Weights":
        w.view(-1)[int(ops.index["Weights"][fault.element])] += change
    elif fault.dataspace == "Inputs" and all(
        e < n for e, n in zip(fault.element, ops.index["Inputs"].shape, strict=True)
    ):
        x.view(-1)[int(ops.index["Inputs"][fault.element])] += change
    bias = module.bias.detach().double() if module.bias is not None else None
    with torch.no_grad():
        if isinstance(module, nn.Conv2d):
            y = torch.nn.functional.conv2d(x, w, bias, module.stride, 0, module.dilation,
                                           module.groups)
        else:
            y = torch.nn.functional.linear(x.reshape(-1, module.in_features), w, bias)
    clean = capture.outputs[image : image + 1].reshape(-1).clone()
    flat = y.reshape(-1)
    pos = torch.as_tensor(fault.positions, dtype=torch.long)
    if fault.dataspace in ("Weights", "Inputs"):
        clean[pos] = flat[pos].to(clean.dtype)
    else:
        clean[pos] = (flat[pos] + change).to(clean.dtype)
    return clean.reshape(capture.outputs.shape[1:])


def naive_sdc1(model: nn.Module, layer_path: str, capture: LayerCapture, images: torch.Tensor,
               faults: list[MappedFault]) -> np.ndarray:
    """(faults, images) SDC-1 by full re-inference: for every fault and image, the whole layer is
    recomputed and the whole network run again; classified like the engines do (a NaN / inf
    output is a detected error, not an SDC)."""
    module = dict(model.named_modules())[layer_path]
    with torch.no_grad():
        golden = model(images)
    out = np.zeros((len(faults), len(images)), dtype=bool)
    for i, f in enumerate(faults):
        for b in range(len(images)):
            patched = naive_layer_output(capture, f, b).unsqueeze(0)
            handle = module.register_forward_hook(lambda _m, _i, _o, p=patched: p)
            try:
                with torch.no_grad():
                    labels = TOP1.classify(golden[b : b + 1], model(images[b : b + 1]))
                out[i, b] = bool(TOP1.is_class(labels, TOP1.headline)[0])
            finally:
                handle.remove()
    return out
