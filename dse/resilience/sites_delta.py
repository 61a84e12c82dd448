"""Exact corrupted layer outputs for one mapped fault: a delta on the outputs it reaches.

Re-running a layer per fault wastes almost all of its work: a corrupted word changes only the
outputs in its footprint, each by (faulty − clean operand) × the other operand of every MAC that
read it. A corrupted partial sum moves its one output by (faulty − clean partial sum), where the
partial sum is what that copy had accumulated when the fault struck.
A faulty product moves one output.

Words are modelled as the hardware stores them: symmetric fixed point with the level's word width
and one scale per dataspace, so flipping bit k changes the stored integer by ±2^k (the sign bit by
∓2^(bits−1)); the float model itself stays unquantized and only the perturbation is injected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.problems.problem import Problem
from dse.resilience.sites import Nest, Readers, _run_starts

Element = tuple[int, ...]


@dataclass
class LayerOperands:
    """One layer's clean tensors in the problem's rank order (float64), and how an Outputs element
    maps to a flat index of the PyTorch output of one image."""

    tensors: dict[str, np.ndarray]  # read-only dataspaces: Weights, Inputs (padded)
    outputs: np.ndarray  # clean layer outputs (products only, no bias), rank order
    out_index: np.ndarray  # rank-order array of flat indices into the torch output of one image
    index: dict[str, np.ndarray]  # per read-only dataspace: flat index into the torch weight /
    # (padded) input of one image, so a naive re-run can corrupt the very same word


def bind_layer(problem: Problem, module: nn.Module, x: torch.Tensor) -> LayerOperands:
    """Lay out a Conv2d / Linear layer's weights and one image's input as the problem's tensors.

    Timeloop's problem has no padding: its Inputs are the zero-padded input. R and P run along the
    width, S and Q along the height; channels split into G groups of C (inputs) and M (outputs).
    """
    inst = problem.instance
    n, c, m, g = inst["N"], inst["C"], inst["M"], inst["G"]
    if isinstance(module, nn.Conv2d):
        pad_h, pad_w = module.padding if isinstance(module.padding, tuple) else (0, 0)
        xp = torch.nn.functional.pad(x.detach().double(), (pad_w, pad_w, pad_h, pad_h))
        w = module.weight.detach().double()
        kh, kw = w.shape[-2:]
        # the same permutation lays out the values and their flat torch indices
        weights, w_idx = (t.reshape(g, m, c, kh, kw).permute(2, 1, 4, 3, 0)
                          for t in (w, torch.arange(w.numel()).reshape(w.shape)))
        inputs, x_idx = (t.reshape(n, g, c, xp.shape[-2], xp.shape[-1]).permute(0, 2, 4, 3, 1)
                         for t in (xp, torch.arange(xp.numel()).reshape(xp.shape)))
        index = {"Weights": w_idx, "Inputs": x_idx}
        hq, wp = inst["Q"], inst["P"]
        flat = torch.arange(g * m * hq * wp).reshape(g, m, hq, wp)
        out_index = flat.permute(1, 2, 3, 0).unsqueeze(0).expand(n, -1, -1, -1, -1)
        if n > 1:
            out_index = out_index + torch.arange(n).reshape(n, 1, 1, 1, 1) * g * m * hq * wp
    elif isinstance(module, nn.Linear):
        rows = x.detach().double().reshape(-1, module.in_features)
        w = module.weight.detach().double()
        weights, w_idx = (t.reshape(m, c).T.reshape(c, m, 1, 1, 1)
                          for t in (w, torch.arange(w.numel())))
        inputs, x_idx = (t.reshape(n, inst["P"], c).permute(0, 2, 1).reshape(n, c, inst["P"], 1, 1)
                         for t in (rows, torch.arange(rows.numel())))
        index = {"Weights": w_idx, "Inputs": x_idx}
        flat = torch.arange(n * inst["P"] * m).reshape(n, inst["P"], m)
        out_index = flat.permute(0, 2, 1).reshape(n, m, 1, inst["P"], 1)
    else:
        raise InputError(
            f"layer type {type(module).__name__} is not a Conv2d or Linear", field="--layer"
        )
    tensors = {"Weights": weights.numpy().copy(), "Inputs": inputs.numpy().copy()}
    for name, arr in tensors.items():
        want = tuple(problem.rank_extent(r, inst) for r in problem.dataspace(name).projection)
        if not _fits(arr.shape, want):
            raise InputError(
                f"layer tensors {arr.shape} do not match the problem's {name} {want}",
                field="--layer",
            )
    with torch.no_grad():
        if isinstance(module, nn.Conv2d):
            clean = torch.nn.functional.conv2d(
                x.detach().double(),
                module.weight.double(),
                None,
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
            )
        else:
            clean = torch.nn.functional.linear(x.detach().double(), module.weight.double())
    outputs = clean.reshape(-1)[out_index].numpy().copy()
    return LayerOperands(tensors, outputs, out_index.numpy().copy(),
                         {k: v.numpy().copy() for k, v in index.items()})


def _fits(have: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Inputs may be larger than the problem's box (padding rows the windows never reach)."""
    return len(have) == len(want) and all(h >= w for h, w in zip(have, want, strict=True))


def flip_delta(value: float, bit: int, bits: int, scale: float) -> float:
    """Change of a stored word when bit ``bit`` of its ``bits``-bit two's-complement fixed-point
    code (step ``scale``) flips. The code saturates at the format's range before the flip."""
    top = 2 ** (bits - 1)
    code = int(min(max(round(value / scale), -top), top - 1)) & (2 * top - 1)
    flipped = code ^ (1 << bit)
    signed = flipped - 2 * top if flipped >= top else flipped
    clean = code - 2 * top if code >= top else code
    return (signed - clean) * scale


def scale_for(max_abs: float, bits: int) -> float:
    """Fixed-point step that fits ``max_abs`` in ``bits`` signed bits."""
    return max(max_abs, 1e-12) / (2 ** (bits - 1) - 1)


def products(
    nest: Nest, ops: LayerOperands, steps: np.ndarray, pes: np.ndarray, skip: str | None = None
) -> np.ndarray:
    """Products of the MACs (step, PE), leaving out operand ``skip`` (its cofactor)."""
    coords = nest.coords(steps, pes)
    value = np.ones(len(steps))
    for name, arr in ops.tensors.items():
        if name != skip:
            value = value * arr[tuple(nest.project(name, coords))]
    return value


def output_positions(
    nest: Nest, ops: LayerOperands, steps: np.ndarray, pes: np.ndarray
) -> np.ndarray:
    """Flat torch output index written by each MAC (step, PE)."""
    coords = nest.coords(steps, pes)
    return ops.out_index[tuple(nest.project(nest.problem.output.name, coords))]


def operand_delta(
    nest: Nest, ops: LayerOperands, ds: str, readers: Readers, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """(flat output indices, output deltas) when every reader used operand + ``delta``."""
    contrib = delta * products(nest, ops, readers.steps, readers.pes, skip=ds)
    return _sum_by(output_positions(nest, ops, readers.steps, readers.pes), contrib)


def _sum_by(index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, inverse = np.unique(index, return_inverse=True)
    sums = np.zeros(len(keys))
    np.add.at(sums, inverse, values)
    return keys, sums


def partial_sum(
    nest: Nest, ops: LayerOperands, level: int, instance: int, element: Element, time: int
) -> float:
    """Value held by a partial-sum word when a fault strikes at step ``time``.

    The copy started at 0 when the output entered this level's tile; it has received every product
    computed under this instance since then whose copy in the next Outputs level down has already
    been evicted (added up) — or, at the innermost Outputs level, every product so far.
    """
    out = nest.problem.output.name
    below = nest.steps_below[level]
    starts = _run_starts(nest.membership(level, out, instance, element))
    start = int(starts[time // below]) * below
    pe0 = instance * nest.pes_below[level]
    steps = np.arange(start, time)[:, None]
    pes = np.arange(pe0, pe0 + nest.pes_below[level])[None, :]
    coords = nest.coords(steps, pes)
    hit = np.ones(np.broadcast_shapes(steps.shape, pes.shape), dtype=bool)
    for x, want in zip(nest.project(out, coords), element, strict=True):
        hit &= x == want
    t_idx, s_idx = np.nonzero(hit)
    t_hit, s_hit = t_idx + start, s_idx + pe0
    child = nest.child(level, out)
    if child is not None and len(t_hit):
        flushed = np.zeros(len(t_hit), dtype=bool)
        inst = s_hit // nest.pes_below[child]
        step_c = nest.steps_below[child]
        for j in np.unique(inst):
            ends = _run_ends(nest.membership(child, out, int(j), element))
            sel = inst == j
            flushed[sel] = ends[t_hit[sel] // step_c] * step_c <= time
        t_hit, s_hit = t_hit[flushed], s_hit[flushed]
    return float(products(nest, ops, t_hit, s_hit).sum())


def _run_ends(inside: np.ndarray) -> np.ndarray:
    """For each index, where the run of True values containing it ends (exclusive)."""
    idx = np.arange(len(inside))
    return np.minimum.accumulate(np.where(inside, len(inside), idx)[::-1])[::-1]


def tile_element(
    nest: Nest, level: int, ds: str, instance: int, time: int, rng: np.random.Generator
) -> Element:
    """A uniformly drawn element of the tile held at ``time`` (holes of dilated windows included:
    they occupy storage too)."""
    tau = np.array([time // nest.steps_below[level]])
    box = nest.tile_box(level, ds, tau, instance)
    return tuple(int(rng.integers(int(lo[0]), int(hi[0]) + 1)) for lo, hi in box)


def ranges(ops: list[LayerOperands]) -> dict[str, float]:
    """Largest magnitude of each dataspace over a set of images (one calibration per layer, as a
    quantized accelerator would have); "MAC" is the largest possible product."""
    out = {name: max(float(np.abs(o.tensors[name]).max()) for o in ops) for name in ops[0].tensors}
    out["Outputs"] = max(float(np.abs(o.outputs).max()) for o in ops)
    out["MAC"] = math.prod(v for k, v in out.items() if k != "Outputs")
    return out
