"""Mapping-aware resilience: from a fault in an accelerator buffer to an SDC rate per mapping.

For one layer mapped onto one design, every (storage level × kept dataspace) and the MAC datapath
is a fault-site class. Its share of the raw fault rate is its exposure (bits × instances × resident
words × steps, :func:`dse.resilience.mapped.exposure.exposures`). Within each class the campaign draws faults
uniformly — image, instance, step, word of the resident tile, bit — follows the word through the
mapping to the exact outputs it corrupts (:mod:`dse.resilience.mapped.sites`), builds those outputs'
faulty values from a delta (:mod:`dse.resilience.mapped.deltas`), and lets the fault-injection
engine run only the rest of the network. The per-mapping SDC-1 rate (the outcome spec's headline
class) is Σ exposure share × P(SDC-1 | fault there), a stratified estimate whose interval combines
the per-class ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from dse.arch.spec import Arch
from dse.errors import InputError, InvalidMapping
from dse.frames import Framed
from dse.model import evaluate
from dse.model.mapping import Mapping
from dse.problems.problem import Problem
from dse.resilience.formats import word_bits as format_bits
from dse.resilience.inference import FastEngine
from dse.resilience.mapped.deltas import (
    LayerOperands,
    bind_layer,
    operand_delta,
    output_positions,
    partial_sum,
    products,
    ranges,
    scale_for,
    site_format,
    tile_element,
    word_change,
)
from dse.resilience.mapped.ecc import screen, tally
from dse.resilience.mapped.exposure import SiteExposure, exposures
from dse.resilience.mapped.sites import MAC_SITE, Nest, mac_readers, storage_readers
from dse.resilience.stats import fault_unit_interval, sample_size, stratified, z_value

# Raw soft-error rate of on-chip SRAM / latches, FIT (failures per 1e9 device-hours) per Mbit. Field
# and beam data for planar CMOS at 28-65 nm cluster around 10^2-10^3 FIT/Mbit; we take 1000, the
# usual round upper-end figure, so FIT numbers are comparable across mappings, not absolute.
DEFAULT_FIT_PER_MBIT = 1000.0

# Rows per engine chunk. A campaign strikes each fault on a few images (8 in a sweep), so with one
# chunk per image batch every chunk would carry one fault and the engine's per-op overhead would
# dominate; 64-row chunks carry ~8 faults' rows per op (about 2x faster end to end on ResNet-20).
# Golden and faulty runs both use this chunk shape, so outcomes stay those of a full re-inference
# at that batch shape.
PATCH_BLOCK = 64


@dataclass(frozen=True)
class MappedFault:
    """One drawn hardware fault, struck during the inference of every campaign image, and the
    output patch it produces for each image."""

    site: int  # index into the campaign's site list
    dataspace: str  # Weights / Inputs / Outputs or MAC
    instance: int  # level instance (or PE for MAC faults)
    time: int
    element: tuple[int, ...]
    bit: int
    word_delta: np.ndarray  # per image: change of the stored word (operand, partial sum, product)
    positions: np.ndarray  # flat indices into one image's layer output
    deltas: np.ndarray  # (images, positions) float64 change of those outputs
    footprint: int  # outputs that read the corrupted value (a zero cofactor can leave one as is)


@dataclass
class SiteResult:
    level: str
    dataspace: str
    exposure_share: float
    sdc1_rate: float
    sdc1_ci: tuple[float, float]
    mean_footprint: float
    n: int
    live_fraction: float = 0.0  # (fault, image) pairs whose layer output changed at all


@dataclass
class ResilienceResult(Framed):
    """One layer mapping's SDC per fault and FIT; ``to_frame()``: one row per site class."""

    sdc1_rate: float
    sdc1_ci: tuple[float, float]
    fit: float
    per_site: list[SiteResult] = field(default_factory=list)
    exposed_mbit: float = 0.0
    n_faults: int = 0
    # faults per status under the design's protection (dse.resilience.mapped.ecc.tally)
    protection: dict[str, int] = field(default_factory=dict)

    def frame_rows(self) -> list[dict]:
        return [{"level": s.level, "dataspace": s.dataspace, "exposure_share": s.exposure_share,
                 "sdc_per_fault": s.sdc1_rate, "sdc_per_fault_lo": s.sdc1_ci[0],
                 "sdc_per_fault_hi": s.sdc1_ci[1], "faults": s.n,
                 "outputs_per_fault": s.mean_footprint, "live_fraction": s.live_fraction}
                for s in self.per_site]

    def to_dict(self) -> dict:
        """The JSON form the CLI prints (and the sweep stores)."""
        return {
            "sdc1_rate": self.sdc1_rate,
            "sdc1_ci": list(self.sdc1_ci),
            "fit": self.fit,
            "exposed_mbit": self.exposed_mbit,
            "n_faults": self.n_faults,
            "protection": dict(self.protection),
            "per_site": [
                {**asdict(s), "sdc1_ci": list(s.sdc1_ci)} for s in self.per_site
            ],
        }


class LayerCapture:
    """Clean input and output of one layer for every image, as the engine's golden run computed
    them, and the layer's operands laid out for the problem."""

    def __init__(self, engine, layer_path: str, problem: Problem):
        modules = dict(engine.model.named_modules())
        if layer_path not in modules:
            raise InputError(f"model has no layer {layer_path!r}", field="--layer")
        self.module = modules[layer_path]
        self.inputs, self.outputs = engine.layer_io(layer_path)
        self.ops = bind_layer(problem, self.module, self.inputs)


def draw_fault(nest: Nest, site: SiteExposure, index: int, ops: LayerOperands, scale: float,
               rng: np.random.Generator, fmt: str = "int", bit: int | None = None) -> MappedFault:
    """Draw one fault uniformly within a site class (instance, step, resident word, and the bit
    unless ``bit`` is given) and compute, for every image, the output delta it causes."""
    time = int(rng.integers(nest.steps))
    bit = int(rng.integers(site.bits)) if bit is None else bit
    if site.dataspace == MAC_SITE:
        pe = int(rng.integers(nest.pes))
        readers = mac_readers(nest, pe, time)
        delta = word_change(products(nest, ops, readers.steps, readers.pes)[:, 0], bit,
                            site_format(fmt, site.bits), scale)
        positions = output_positions(nest, ops, readers.steps, readers.pes)
        return MappedFault(index, MAC_SITE, pe, time, (), bit, delta, positions,
                           delta[:, None], 1)
    inst = int(rng.integers(site.instances))
    element = tile_element(nest, site.level, site.dataspace, inst, time, rng)
    if site.dataspace == nest.problem.output.name:
        delta = word_change(partial_sum(nest, ops, site.level, inst, element, time), bit,
                            site_format(fmt, site.bits), scale)
        positions = np.array([ops.out_index[element]])
        return MappedFault(index, site.dataspace, inst, time, element, bit, delta, positions,
                           delta[:, None], 1)
    tensor = ops.tensors[site.dataspace]
    inside = all(e < n for e, n in zip(element, tensor.shape[1:], strict=True))
    value = tensor[(slice(None), *element)] if inside else np.zeros(1)  # unused padding row
    delta = word_change(value, bit, site_format(fmt, site.bits), scale)
    readers = storage_readers(nest, site.level, site.dataspace, inst, element, time)
    positions, deltas = operand_delta(nest, ops, site.dataspace, readers, delta)
    deltas = np.broadcast_to(deltas, (len(ops.outputs), len(positions))).copy()
    return MappedFault(index, site.dataspace, inst, time, element, bit, delta, positions, deltas,
                       len(readers.outputs))


def stuck_pe_fault(nest: Nest, site: SiteExposure, index: int, ops: LayerOperands, scale: float,
                   rng: np.random.Generator, fmt: str = "int",
                   kind: str = "stuck1") -> MappedFault:
    """A permanent fault: one bit of one PE's product register stuck at 0 or 1 (``kind``). Every
    product that PE computes under this mapping may change, each by its own amount (a stuck bit
    changes only the words where it differs), summed into the outputs they feed."""
    pe = int(rng.integers(nest.pes))
    bit = int(rng.integers(site.bits))
    readers = mac_readers(nest, pe, None)
    prods = products(nest, ops, readers.steps, readers.pes)
    change = word_change(prods.ravel(), bit, site_format(fmt, site.bits), scale,
                         kind).reshape(prods.shape)
    keys, inverse = np.unique(output_positions(nest, ops, readers.steps, readers.pes),
                              return_inverse=True)
    deltas = np.zeros((len(prods), len(keys)))
    np.add.at(deltas, (slice(None), inverse), change)
    return MappedFault(index, MAC_SITE, pe, -1, (), bit, change.sum(axis=1), keys, deltas,
                       len(keys))


def stuck_pe_resilience(
    problem: Problem, arch: Arch, mapping: Mapping, model: nn.Module, layer_path: str,
    images: torch.Tensor, targets: torch.Tensor | None = None, *, n_faults: int = 100,
    kind: str = "stuck1", confidence: float = 0.95, seed: int = 0, fmt: str = "int", engine=None,
    device: str | torch.device = "cpu",
) -> SiteResult:
    """P(SDC-1) given one stuck bit in a random PE's product register, with its interval; the
    footprint is every output that PE computes under this mapping (so it depends on the mapping:
    a PE that sweeps many outputs spreads the damage)."""
    evaluate(problem, arch, mapping)
    nest = Nest(problem, mapping)
    site = exposures(nest, arch, include_backing=False, include_mac=True,
                     word_bits=_word_bits(fmt))[-1]
    engine = engine or FastEngine(model, images, targets, device=device, block=PATCH_BLOCK)
    capture = LayerCapture(engine, layer_path, problem)
    scale = site_scales([site], capture.ops, operand_bits(arch, fmt))[0]
    rng = np.random.default_rng(seed)
    faults = [stuck_pe_fault(nest, site, 0, capture.ops, scale, rng, fmt, kind)
              for _ in range(n_faults)]
    sdc = run_faults(engine, layer_path, capture, faults)
    return SiteResult(site.level_name, f"{MAC_SITE} {kind}", 1.0, float(sdc.mean()),
                      _interval(sdc, z_value(confidence)),
                      float(np.mean([f.footprint for f in faults])), n_faults,
                      live_fraction(faults, live_floor(capture)))


def _word_bits(fmt: str) -> int | None:
    """One word width for every site, or None for the design's own widths (``"int"``)."""
    return None if fmt == "int" else format_bits(fmt)


def operand_bits(arch: Arch, fmt: str) -> int:
    """Width of the MAC's operand codes: the design's, or the one format's."""
    return arch.compute.word_bits if fmt == "int" else format_bits(fmt)


def _interval(sdc: np.ndarray, z: float) -> tuple[float, float]:
    """Interval of the SDC rate of (faults, images) outcomes, the fault as sampling unit."""
    return fault_unit_interval(sdc.sum(axis=1), np.full(len(sdc), sdc.shape[1]), z)


def site_scales(sites: list[SiteExposure], ops: LayerOperands, operand_bits: int) -> list[float]:
    """Fixed-point step of each site class's words.

    Operands (Weights, Inputs) are stored with their range over the campaign's images spread over
    the level's word width. Partial sums and products are integer accumulations of the MAC's
    ``operand_bits``-bit operand codes, so their step is the product of the two operand steps
    whatever the register width: a high bit of a wide accumulator is worth far more than the
    largest output (as in an integer MAC array)."""
    peak = ranges(ops)
    product = scale_for(peak["Weights"], operand_bits) * scale_for(peak["Inputs"], operand_bits)
    return [product if s.dataspace in ("Outputs", MAC_SITE)
            else scale_for(peak[s.dataspace], s.bits) for s in sites]


def mapping_resilience(
    problem: Problem,
    arch: Arch,
    mapping: Mapping,
    model: nn.Module,
    layer_path: str,
    images: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    n_faults: int | None = None,
    margin: float = 0.05,
    confidence: float = 0.95,
    seed: int = 0,
    fit_per_mbit: float = DEFAULT_FIT_PER_MBIT,
    include_mac: bool = True,
    include_backing: bool = False,
    fmt: str = "int",
    engine=None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ResilienceResult:
    """SDC-1 rate and FIT of one mapping of one layer.

    ``n_faults`` faults per site class, or as many as ``margin`` at ``confidence`` needs
    (Leveugle). ``fmt``: how words are stored -- ``"int"`` (default), fixed point in each
    level's word width, or one format everywhere (``"fp32"`` / ``"fp16"`` / ``"bf16"`` /
    ``"intN"``). ``engine`` defaults to ``FastEngine(model, images, targets, device=device)``;
    anything with ``layer_io``, ``spec`` and ``run_output_patches`` works. Same seed, same result.
    """

    z = z_value(confidence)
    per_site_n = n_faults if n_faults is not None else sample_size(math.inf, margin, confidence)
    if per_site_n < 1:
        raise InputError(f"n_faults must be >= 1, got {n_faults}", field="n_faults")
    nest, sites, engine, capture = layer_setup(
        problem, arch, mapping, model, layer_path, images, targets, include_mac=include_mac,
        include_backing=include_backing, fmt=fmt, engine=engine, device=device)
    faults = draw_campaign(nest, sites, capture.ops, per_site_n, seed, operand_bits(arch, fmt),
                           fmt)
    faults, status = screen(faults, sites, arch)
    sdc = run_faults(engine, layer_path, capture, faults, progress=progress)
    result = site_summary(sites, faults, sdc, z, fit_per_mbit, live_floor(capture))
    if any(s != "unprotected" for s in status):  # only designs with a protected level say so
        result.protection = tally(status)
    return result


def layer_setup(problem: Problem, arch: Arch, mapping: Mapping, model: nn.Module,
                layer_path: str, images: torch.Tensor, targets: torch.Tensor | None = None, *,
                include_mac: bool = True, include_backing: bool = False, fmt: str = "int",
                engine=None, device: str | torch.device = "cpu"
                ) -> tuple[Nest, list[SiteExposure], object, LayerCapture]:
    """(nest, site classes, engine, layer capture) of one mapped layer, after checking the
    mapping (InvalidMapping names the level)."""
    evaluate(problem, arch, mapping)
    if set(mapping.levels[0].keep) != {ds.name for ds in problem.dataspaces}:
        raise InvalidMapping("the outermost level must keep every dataspace",
                             level=mapping.levels[0].level)
    nest = Nest(problem, mapping)
    sites = exposures(nest, arch, include_backing=include_backing, include_mac=include_mac,
                      word_bits=_word_bits(fmt))
    engine = engine or FastEngine(model, images, targets, device=device, block=PATCH_BLOCK)
    return nest, sites, engine, LayerCapture(engine, layer_path, problem)


def live_floor(capture: LayerCapture) -> float:
    """Smallest output change counted as live: 1/256 of the layer's output range (an 8-bit
    quantum of it)."""
    return float(capture.outputs.abs().max()) / 256


def draw_campaign(nest: Nest, sites: list[SiteExposure], ops: LayerOperands, per_site: int,
                  seed: int, operand_bits: int = 8, fmt: str = "int") -> list[MappedFault]:
    """``per_site`` faults in every site class, reproducibly from ``seed``."""
    scales = site_scales(sites, ops, operand_bits)
    rng = np.random.default_rng(seed)
    return [draw_fault(nest, site, i, ops, scales[i], rng, fmt)
            for i, site in enumerate(sites) for _ in range(per_site)]


def live_fraction(faults: list[MappedFault], floor: float = 0.0) -> float:
    """Share of (fault, image) pairs that change some layer output by more than ``floor``: the
    rest are masked inside the accelerator (the word was not read again, held a zero, met a zero
    cofactor) or nearly so (a flip in a zero float word only makes a denormal)."""
    if not faults:
        return 0.0
    return float(np.mean([np.any(np.abs(f.deltas) > floor, axis=1).mean() for f in faults]))


def site_summary(sites: list[SiteExposure], faults: list[MappedFault], sdc: np.ndarray, z: float,
                 fit_per_mbit: float, floor: float = 0.0) -> ResilienceResult:
    """Per-class SDC-1 rates (mean over faults of the fraction of images that fail) and their
    exposure-weighted sum; FIT = raw FIT/Mbit × exposed Mbit × SDC-1 rate."""
    total = sum(s.exposure for s in sites)
    results = []
    for i, site in enumerate(sites):
        mine = np.array([f.site == i for f in faults])
        mine_faults = [f for f in faults if f.site == i]
        results.append(SiteResult(
            site.level_name, site.dataspace, site.exposure / total, float(sdc[mine].mean()),
            _interval(sdc[mine], z),
            float(np.mean([f.footprint for f in mine_faults])), int(mine.sum()),
            live_fraction(mine_faults, floor)))
    rate, ci = stratified([r.exposure_share for r in results], [r.sdc1_rate for r in results],
                          [r.sdc1_ci for r in results])
    mbit = sum(s.bits * s.instances * s.words for s in sites) / 1e6
    return ResilienceResult(rate, ci, fit_per_mbit * mbit * rate, results, mbit, len(faults))


def patched_outputs(capture: LayerCapture, fault: MappedFault) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat positions, (images, positions) faulty values) of one fault's layer-output patch:
    clean output + delta, rounded once to the layer's dtype."""
    out = capture.outputs.reshape(len(capture.outputs), -1)
    pos = torch.as_tensor(fault.positions, dtype=torch.long, device=out.device)
    deltas = torch.as_tensor(fault.deltas, device=out.device)
    values = (out[:, pos].double() + deltas).to(out.dtype)
    return pos, values


def run_faults(engine, layer_path: str, capture: LayerCapture, faults: list[MappedFault], *,
               progress: bool = False, due: bool = False):
    """(faults, images) outcomes in the engine's headline class (top-1 changed, for the default
    spec), running only the network after the layer; with ``due``, also the (faults, images)
    INF/NaN outcomes (detected, unrecoverable).
    A (fault, image) pair whose layer output does not change at all (nothing read the word after
    it struck, or every cofactor was 0) is masked without running anything."""
    sdc = np.zeros((len(faults), len(capture.outputs)), dtype=bool)
    nan = np.zeros_like(sdc)
    patches, where = [], []
    for i, f in enumerate(faults):
        live = np.flatnonzero(np.any(f.deltas != 0, axis=1))
        if len(live) == 0:
            continue
        pos, values = patched_outputs(capture, f)
        if len(live) == len(capture.outputs):
            patches.append((None, pos, values))
            where += [(i, b) for b in range(len(live))]
        else:
            patches += [(int(b), pos, values[b]) for b in live]
            where += [(i, int(b)) for b in live]
    if patches:
        labels = engine.run_output_patches(layer_path, patches, progress=progress)
        rows, cols = zip(*where, strict=True)
        sdc[list(rows), list(cols)] = engine.spec.is_class(labels, engine.spec.headline)
        if due:
            nan[list(rows), list(cols)] = engine.spec.is_class(labels, "inf_nan")
    return (sdc, nan) if due else sdc
