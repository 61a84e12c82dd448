"""Exact corrupted layer outputs for one mapped fault: a delta on the outputs it reaches.

Re-running a layer per fault wastes almost all of its work: a corrupted word changes only the
outputs in its footprint, each by (faulty − clean operand) × the other operand of every MAC that
read it. A corrupted partial sum moves its one output by (faulty − clean partial sum), where the
partial sum is what that copy had accumulated when the fault struck.
A faulty product moves one output.

Words are modelled as the hardware stores them: by default symmetric fixed point with the level's
word width and one scale per dataspace (the rule of :mod:`dse.resilience.formats`), so flipping bit
k changes the stored integer by ±2^k (the sign bit by ∓2^(bits−1)); the float model itself stays
unquantized and only the perturbation is injected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.problems.problem import Problem
from dse.resilience.fault import What, word_delta
from dse.resilience.formats import NumberFormat, fixed_scale, number_format
from dse.resilience.mapped.sites import Nest, Readers, accumulated, storage_readers

Element = tuple[int, ...]


@dataclass
class LayerOperands:
    """One layer's clean tensors for a batch of images, in the problem's rank order (float64).

    Every tensor has a leading image axis (size 1 for Weights, shared by all images). ``out_index``
    maps an Outputs element to a flat index of one image's PyTorch output, ``index`` a Weights /
    Inputs element to a flat index of the weight / one image's padded input (so a naive re-run
    can corrupt the very same word).
    """

    tensors: dict[str, np.ndarray]  # read-only dataspaces: Weights, Inputs (padded)
    outputs: np.ndarray  # clean layer outputs (products only, no bias)
    out_index: np.ndarray
    index: dict[str, np.ndarray]


def bind_layer(problem: Problem, module: nn.Module, x: torch.Tensor) -> LayerOperands:
    """Lay out a Conv2d / Linear layer's weights and a batch of inputs (one problem instance per
    image, so the problem's N must be 1) as the problem's tensors.

    Timeloop's problem has no padding: its Inputs are the zero-padded input. R and P run along the
    width, S and Q along the height; channels split into G groups of C (inputs) and M (outputs).
    The operands are numpy float64 on the CPU, wherever the model runs.
    """
    inst = problem.instance
    c, m, g, b = inst["C"], inst["M"], inst["G"], len(x)
    if inst["N"] != 1:
        raise InputError(f"the layer's problem must have N = 1 (one image), got {inst['N']}",
                         field="--layer")
    x = x.detach().cpu().double()
    if isinstance(module, nn.Conv2d):
        pad_h, pad_w = module.padding if isinstance(module.padding, tuple) else (0, 0)
        xp = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
        w = module.weight.detach().cpu().double()
        kh, kw = w.shape[-2:]
        # the same permutation lays out the values and their flat torch indices
        weights, w_idx = (t.reshape(1, g, m, c, kh, kw).permute(0, 3, 2, 5, 4, 1)
                          for t in (w, torch.arange(w.numel()).reshape(w.shape)))
        hh, ww = xp.shape[-2:]
        inputs, x_idx = (t.reshape(-1, 1, g, c, hh, ww).permute(0, 1, 3, 5, 4, 2)
                         for t in (xp, torch.arange(xp[0].numel()).reshape(xp[:1].shape)))
        flat = torch.arange(g * m * inst["Q"] * inst["P"]).reshape(g, m, inst["Q"], inst["P"])
        out_index = flat.permute(1, 2, 3, 0).unsqueeze(0)
        clean = torch.nn.functional.conv2d(x, w, None, module.stride, module.padding,
                                           module.dilation, module.groups)
    elif isinstance(module, nn.Linear):
        rows = x.reshape(b, -1, module.in_features)
        w = module.weight.detach().cpu().double()
        weights, w_idx = (t.reshape(m, c).T.reshape(1, c, m, 1, 1, 1)
                          for t in (w, torch.arange(w.numel())))
        inputs, x_idx = (t.reshape(-1, inst["P"], c).permute(0, 2, 1).reshape(-1, 1, c, inst["P"],
                                                                               1, 1)
                         for t in (rows, torch.arange(rows[0].numel()).reshape(rows[:1].shape)))
        out_index = torch.arange(inst["P"] * m).reshape(inst["P"], m).T.reshape(1, m, 1,
                                                                                 inst["P"], 1)
        clean = torch.nn.functional.linear(rows, w)
    else:
        raise InputError(f"layer type {type(module).__name__} is not a Conv2d or Linear",
                         field="--layer")
    tensors = {"Weights": weights.numpy().copy(), "Inputs": inputs.numpy().copy()}
    for name, arr in tensors.items():
        want = tuple(problem.rank_extent(r, inst) for r in problem.dataspace(name).projection)
        if not _fits(arr.shape[1:], want):
            raise InputError(f"layer tensors {arr.shape[1:]} do not match the problem's {name} "
                             f"{want}", field="--layer")
    out_index = out_index.numpy().copy()
    outputs = clean.reshape(b, -1).numpy()[:, out_index]
    return LayerOperands(tensors, outputs, out_index,
                         {"Weights": w_idx.numpy()[0].copy(), "Inputs": x_idx.numpy()[0].copy()})


def _fits(have: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Inputs may be larger than the problem's box (padding rows the windows never reach)."""
    return len(have) == len(want) and all(h >= w for h, w in zip(have, want, strict=True))


def site_format(fmt: str, bits: int) -> NumberFormat:
    """The format a site's words are stored in: ``"int"`` is the design's fixed point at the
    site's own word width (``int<bits>``); any other name is that format everywhere."""
    return number_format(f"int{bits}" if fmt == "int" else fmt)


def word_change(values: np.ndarray, bit: int, fmt: NumberFormat, scale: float,
                kind: str = "bitflip") -> np.ndarray:
    """Change of stored words (float64) when ``bit`` flips, or is stuck (``kind``): faulty decoded
    word minus clean decoded word, by :func:`dse.resilience.fault.word_delta` (for fixed point:
    the change of the two's-complement code x ``scale``, codes saturating at the format's range;
    the scale rule is :func:`dse.resilience.formats.fixed_scale`'s)."""
    clean = torch.as_tensor(np.asarray(values, dtype=np.float64))
    return word_delta(clean, What(kind, (bit,)), fmt, scale if fmt.fixed else None).numpy()


def scale_for(max_abs: float, bits: int) -> float:
    """Fixed-point scale of words whose largest magnitude is ``max_abs`` (the one rule,
    :func:`dse.resilience.formats.fixed_scale`)."""
    return float(fixed_scale(torch.tensor([max_abs], dtype=torch.float64), bits)[0])


def products(nest: Nest, ops: LayerOperands, steps: np.ndarray, pes: np.ndarray,
             skip: str | None = None) -> np.ndarray:
    """(images, MACs) products of the MACs (step, PE), leaving out operand ``skip`` (so: its
    cofactor)."""
    coords = nest.coords(steps, pes)
    value = np.ones((1, len(steps)))
    for name, arr in ops.tensors.items():
        if name != skip:
            value = value * arr[(slice(None), *nest.project(name, coords))]
    return value


def output_positions(nest: Nest, ops: LayerOperands, steps: np.ndarray,
                     pes: np.ndarray) -> np.ndarray:
    """Flat torch output index written by each MAC (step, PE)."""
    coords = nest.coords(steps, pes)
    return ops.out_index[tuple(nest.project(nest.problem.output.name, coords))]


def operand_delta(nest: Nest, ops: LayerOperands, ds: str, readers: Readers,
                  delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat output indices, (images, outputs) deltas) when every reader used operand + ``delta``
    (one change per image)."""
    cof = products(nest, ops, readers.steps, readers.pes, skip=ds)
    contrib = np.asarray(delta).reshape(-1, 1) * cof
    keys, inverse = np.unique(output_positions(nest, ops, readers.steps, readers.pes),
                              return_inverse=True)
    sums = np.zeros((contrib.shape[0], len(keys)))
    np.add.at(sums, (slice(None), inverse), contrib)
    return keys, sums


def partial_sum(nest: Nest, ops: LayerOperands, level: int, instance: int, element: Element,
                time: int) -> np.ndarray:
    """Per image, the value held by a partial-sum word when a fault strikes at step ``time``: the
    sum of the products it has accumulated (:func:`dse.resilience.mapped.sites.accumulated`)."""
    steps, pes = accumulated(nest, level, instance, element, time)
    return products(nest, ops, steps, pes).sum(axis=1)


def tile_element(
    nest: Nest, level: int, ds: str, instance: int, time: int, rng: np.random.Generator
) -> Element:
    """A uniformly drawn element of the tile held at ``time`` (holes of dilated windows included:
    they occupy storage too)."""
    tau = np.array([time // nest.steps_below[level]])
    box = nest.tile_box(level, ds, tau, instance)
    return tuple(int(rng.integers(int(lo[0]), int(hi[0]) + 1)) for lo, hi in box)


def ranges(ops: LayerOperands) -> dict[str, float]:
    """Largest magnitude of each operand over the bound images (one calibration per layer, as a
    quantized accelerator would have)."""
    return {name: float(np.abs(arr).max()) for name, arr in ops.tensors.items()}


def drawn_live_share(nest: Nest, site, draws: int, rng: np.random.Generator) -> float:
    """Share of ``draws`` faults of one site class, drawn as the campaign draws them (uniform
    step, instance, resident word), that the injector finds live: some MAC still reads the struck
    operand, or the struck partial sum holds an absorbed product. The literal reference for the
    estimate's closed-form live fraction (``exposure_batch.batch_live``)."""
    live = 0
    for _ in range(draws):
        step = int(rng.integers(nest.steps))
        inst = int(rng.integers(site.instances))
        element = tile_element(nest, site.level, site.dataspace, inst, step, rng)
        if site.dataspace == nest.problem.output.name:
            live += len(accumulated(nest, site.level, inst, element, step)[0]) > 0
        else:
            live += len(storage_readers(nest, site.level, site.dataspace, inst, element,
                                        step).steps) > 0
    return live / draws

