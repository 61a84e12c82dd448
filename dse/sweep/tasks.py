"""The two kinds of sweep work, as pure functions an executor can run anywhere.

``run_map_task``: map one layer onto one design point and keep the mapper's best mapping, its
energy x delay Pareto set and the top-K by EDP. ``run_resilience_task``: score one kept mapping's
SDC rate on real weights and data. Both take a picklable task object and return plain data; they
never touch the store, so the driver is the only writer and results cannot depend on which worker
(or which executor) ran a task.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from dse.sweep.config import FaultSettings, MapperSettings, ModelSpec
from dse.sweep.hashing import canonical_json, stable_hash
from dse.sweep.store import MappingRow, ResilienceRow


@dataclass
class MapTask:
    task_key: str
    point_key: str
    label: str  # "design point / model / layer", for messages only
    arch: Any  # dse.arch.Arch
    problem: Any  # dse.problems.Problem
    mapper: MapperSettings
    backend: str
    seed: int
    pareto: bool
    top_k: int


@dataclass
class MapResult:
    task_key: str
    rows: list[MappingRow]
    evaluated: int | None
    valid: int | None
    wall_s: float


@dataclass
class ResilienceTask:
    res_key: str
    row_key: str
    model: ModelSpec
    model_key: str
    layer_path: str
    arch: Any
    problem: Any
    mapping_text: str
    faults: FaultSettings
    settings_key: str
    seed: int
    strata: list[dict] | None = None  # stored counts of an adaptive campaign to continue
    # A min-EDP mapping is a member of its design point's network campaign: it runs its pilot,
    # then exactly the faults the driver's network rounds ask for (per stratum, a count to reach).
    member: bool = False
    targets: list[int] | None = None


@dataclass
class FrontTask:
    """Search one layer with the SDC-FIT estimate (calibrated on its min-EDP campaign) and keep
    up to ``size`` mappings of the EDP x estimated-SDC-FIT front for injection."""

    front_key: str
    point_key: str
    model: str
    layer_path: str
    label: str
    arch: Any
    problem: Any
    mapper: MapperSettings
    seed: int
    calibration: list[dict]  # the min-EDP mapping's stored strata
    fit_per_mbit: float
    word_format: str
    size: int
    baseline: str  # the min-EDP mapping's map text: a candidate too, and the EDP reference


@dataclass
class FrontRow:
    row_key: str
    rank: int  # position along the front by increasing EDP
    pick: bool  # the resilience-aware pick (MapperSettings.edp_slack / sdc_fit_max)
    baseline: bool  # the layer's min-EDP mapping itself (measured by the min-EDP network)
    energy_pJ: float
    cycles: int
    utilization: float
    edp: float
    macs: int
    estimate_fit: float  # estimated SDC FIT of the layer (failures per 1e9 h while it runs)
    mapping: str


@dataclass
class FrontResult:
    front_key: str
    rows: list[FrontRow]
    front_size: int  # mappings on the whole front the search found
    evaluated: int
    wall_s: float


def run_front_task(task: FrontTask) -> FrontResult:
    """The resilience-aware search of one layer (one mapper worker, like :func:`run_map_task`)."""
    import torch

    from dse.mapper import search, select
    from dse.resilience.formats import word_bits
    from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric

    torch.set_num_threads(1)
    start = time.perf_counter()
    bits = None if task.word_format == "int" else word_bits(task.word_format)
    # calibrated per live fault on the min-EDP mapping, scaled by each mapping's live fraction
    sens = Sensitivity.from_strata(task.calibration, task.fit_per_mbit).with_liveness(
        task.problem, task.arch, read_mapping_text(task.baseline, task.arch, task.problem),
        word_bits=bits)
    metric = sdc_fit_metric(task.problem, task.arch, sens, word_bits=bits)
    m = task.mapper
    result = search(task.problem, task.arch, objective=m.objective, search=m.search,
                    time_limit=m.time_limit, seed=task.seed, workers=1, max_evals=m.budget,
                    batch_metric=metric)
    front = edp_front([*result.front, _baseline(task, metric)], task.problem, task.baseline)
    pick = (select(front, "edp", metric_max=m.sdc_fit_max) if m.sdc_fit_max is not None
            else select(front, "metric", edp_slack=m.edp_slack))
    rows = []
    for rank, i in enumerate(spaced(len(front), task.size, front.index(pick) if pick else None)):
        mapping, stats, estimate = front[i]
        text = mapping_text(mapping, task.problem)
        rows.append(FrontRow(
            row_key=stable_hash(task.front_key, text), rank=rank, pick=front[i] is pick,
            baseline=text == task.baseline, energy_pJ=float(stats.energy_pJ),
            cycles=int(stats.cycles), utilization=float(stats.utilization), edp=float(stats.edp),
            macs=int(stats.macs), estimate_fit=float(estimate), mapping=text))
    return FrontResult(task.front_key, rows, len(front), result.evaluated,
                       time.perf_counter() - start)


def _baseline(task: FrontTask, metric: Any) -> tuple[Any, Any, float]:
    """The layer's min-EDP mapping with its stats and estimate (on its own calibration, the
    estimate is its measured FIT): the search may not revisit it, yet it is the reference."""
    from dse.mapper.mapspace import MapSpace
    from dse.mapper.search import to_arrays
    from dse.model import evaluate

    mapping = read_mapping_text(task.baseline, task.arch, task.problem)
    space = MapSpace(task.problem, task.arch)
    estimate = float(metric(to_arrays(space, [space.from_mapping(mapping)]))[0])
    return mapping, evaluate(task.problem, task.arch, mapping), estimate


def edp_front(found: list[tuple[Any, Any, float]], problem: Any, baseline: str
              ) -> list[tuple[Any, Any, float]]:
    """The EDP x estimate Pareto set of (mapping, stats, estimate), by increasing EDP (ties:
    lower estimate, then the min-EDP mapping ``baseline`` (a tie gains nothing, and the
    baseline is measured already), then map text, so the set does not depend on the order
    found)."""
    def key(t: tuple[Any, Any, float]) -> tuple:
        text = mapping_text(t[0], problem)
        return (t[1].energy_pJ * t[1].cycles, t[2], text != baseline, text)

    ranked = sorted(found, key=key)
    front: list[tuple[Any, Any, float]] = []
    for t in ranked:
        if not front or t[2] < front[-1][2]:
            front.append(t)
    return front


def spaced(n: int, size: int, keep: int | None) -> list[int]:
    """Indices of up to ``size`` of ``n`` front members, in increasing order: ``keep`` (the
    pick), both ends, and the rest evenly spaced along the front."""
    if n <= size:
        return list(range(n))
    first = [i for i in (keep, 0, n - 1) if i is not None]
    chosen = list(dict.fromkeys(first))[:size]
    even = [round(j * (n - 1) / (size - 1)) for j in range(size)] if size > 1 else []
    for i in [*even, *range(n)]:
        if len(chosen) == size:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)


#: libyaml's emitter where PyYAML was built with it: the same representer and resolver as
#: ``yaml.safe_dump``, so the same text byte for byte (tests/test_sweep_tasks.py checks it on
#: searched mappings), at a tenth of the pure-Python emitter's cost (it was ~5% of a search).
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def mapping_text(mapping: Any, problem: Any) -> str:
    """The Timeloop map.yaml text of a mapping (what the store keeps and resilience re-reads)."""
    from dse.model.mapfile import mapping_directives

    return yaml.dump({"mapping": mapping_directives(mapping, problem)}, Dumper=_SAFE_DUMPER,
                     sort_keys=False)


def read_mapping_text(text: str, arch: Any, problem: Any) -> Any:
    from dse.model.mapfile import mapping_from_directives

    return mapping_from_directives(yaml.safe_load(text)["mapping"], arch, problem,
                                   file="<stored mapping>")


def keep_mappings(best: tuple[Any, Any], pareto: list[tuple[Any, Any]],
                  ranked: list[tuple[Any, Any]], *, use_pareto: bool, top_k: int,
                  problem: Any) -> list[tuple[str, Any, list[str]]]:
    """Best first, then the Pareto set, then the top-K by EDP; duplicates merged by map text.

    Returns ``(map text, stats, roles)`` in a deterministic order (rank 0 = the mapper's best).
    """
    kept: dict[str, tuple[Any, list[str]]] = {}

    def add(mapping: Any, stats: Any, role: str) -> None:
        text = mapping_text(mapping, problem)
        if text in kept:
            if role not in kept[text][1]:
                kept[text][1].append(role)
        else:
            kept[text] = (stats, [role])

    add(*best, "best")
    if use_pareto:
        for mapping, stats in sorted(pareto, key=lambda ms: (ms[1].cycles, ms[1].energy_pJ)):
            add(mapping, stats, "pareto")
    for mapping, stats in sorted(ranked, key=lambda ms: ms[1].edp)[:top_k]:
        add(mapping, stats, "topk")
    return [(text, stats, roles) for text, (stats, roles) in kept.items()]


def run_map_task(task: MapTask) -> MapResult:
    """Map one layer. One mapper worker: the sweep parallelises over layers, and a fixed worker
    count keeps the random streams (so the results) identical on every executor."""
    from dse.mapper import search
    from dse.workers import init_worker

    init_worker()  # one thread, without importing torch (mapping never needs it)
    start = time.perf_counter()
    if task.backend == "timeloop":
        return _run_timeloop_map_task(task, start)
    result = search(task.problem, task.arch, objective=task.mapper.objective,
                    search=task.mapper.search, time_limit=task.mapper.time_limit,
                    seed=task.seed, workers=1, max_evals=task.mapper.budget, top_k=task.top_k)
    kept = keep_mappings((result.best, result.best_stats), list(result.pareto), result.top,
                         use_pareto=task.pareto, top_k=task.top_k, problem=task.problem)
    rows = _mapping_rows(task, kept)
    if task.backend == "timeloop-check":
        _check_rows(task, kept, rows)
    return MapResult(task.task_key, rows, result.evaluated, result.valid,
                     time.perf_counter() - start)


def _check_rows(task: MapTask, kept: list, rows: list[MappingRow]) -> None:
    """The real ``timeloop-model`` re-evaluates every kept mapping; the verdict goes with the row
    (the store keeps it, so a disagreement is a queryable result, not a crash)."""
    import tempfile

    from dse.model import timeloop

    with tempfile.TemporaryDirectory(prefix="dse-timeloop-") as workdir:
        for (text, stats, _), row in zip(kept, rows, strict=True):
            mapping = read_mapping_text(text, task.arch, task.problem)
            check = timeloop.check(task.problem, task.arch, mapping, stats,
                                   f"{workdir}/{row.rank}")
            row.check = {"energy_pJ": check.energy_pJ, "cycles": check.cycles,
                         "energy_rel": check.energy_rel, "agree": check.agree,
                         "error": check.error}


def _run_timeloop_map_task(task: MapTask, start: float) -> MapResult:
    """The real ``timeloop-mapper`` on the layer: one best mapping, as Timeloop reports it."""
    import tempfile

    from dse.model import timeloop

    settings = timeloop.MapperSettings(metric=task.mapper.objective, threads=1,
                                       search_size=task.mapper.budget or 20000)
    with tempfile.TemporaryDirectory(prefix="dse-timeloop-") as workdir:
        mapping, stats = timeloop.search(task.problem, task.arch, workdir, settings)
    kept = keep_mappings((mapping, stats), [], [], use_pareto=False, top_k=0,
                         problem=task.problem)
    return MapResult(task.task_key, _mapping_rows(task, kept), 0, 0, time.perf_counter() - start)


def _mapping_rows(task: MapTask, kept: list) -> list[MappingRow]:
    return [
        MappingRow(
            row_key=stable_hash(task.task_key, text), rank=rank, roles=",".join(roles),
            energy_pJ=float(stats.energy_pJ), cycles=int(stats.cycles),
            utilization=float(stats.utilization), edp=float(stats.edp), macs=int(stats.macs),
            components={k: float(v) for k, v in stats.component_energy().items()}, mapping=text)
        for rank, (text, stats, roles) in enumerate(kept)
    ]


def load_model_and_data(spec: ModelSpec, n_images: int) -> tuple[Any, Any, Any]:
    """Trained model + the first ``n_images`` test images and labels, cached per process."""
    return _load(spec.name, canonical_json(spec.options), spec.checkpoint, spec.dataset,
                 n_images)


@lru_cache(maxsize=4)
def _load(name: str, options: str, checkpoint: str | None, dataset: str | None,
          n_images: int) -> tuple[Any, Any, Any]:
    # Cached because loading (or training on first use) is the slow part of a resilience task.
    from dse.problems.trained import load_model

    model, images, labels = load_model(name, checkpoint=checkpoint, dataset=dataset,
                                       limit=n_images, options=json.loads(options))
    return model, images.float(), labels


def faults_per_site(f: FaultSettings) -> int:
    """Faults per fault-site class: given, or Leveugle's n for the margin and confidence
    (an infinite population: every bit x every cycle of a buffer)."""
    from dse.resilience.stats import sample_size

    return f.faults if f.faults is not None else sample_size(math.inf, f.margin, f.confidence)


def run_resilience_task(task: ResilienceTask) -> ResilienceRow:
    import torch

    from dse.resilience import mapping_resilience

    torch.set_num_threads(1)
    start = time.perf_counter()
    model, images, labels = load_model_and_data(task.model, task.faults.images)
    mapping = read_mapping_text(task.mapping_text, task.arch, task.problem)
    f = task.faults
    if f.adaptive:
        return _adaptive_task(task, model, images, labels, mapping, start)
    result = mapping_resilience(
        task.problem, task.arch, mapping, model, task.layer_path, images, labels,
        n_faults=faults_per_site(f), margin=f.margin, confidence=f.confidence,
        fit_per_mbit=f.fit_per_mbit, seed=task.seed, fmt=f.format, device=f.device)
    lo, hi = result.sdc1_ci
    return ResilienceRow(
        res_key=task.res_key, row_key=task.row_key, model_key=task.model_key,
        layer_path=task.layer_path, settings_key=task.settings_key,
        sdc_rate=float(result.sdc1_rate), sdc_lo=float(lo), sdc_hi=float(hi),
        fit=float(result.fit), faults=int(result.n_faults),
        wall_s=time.perf_counter() - start, detail=result.to_dict())


def _adaptive_task(task: ResilienceTask, model: Any, images: Any, labels: Any, mapping: Any,
                   start: float) -> ResilienceRow:
    """Run (or continue from the stored strata) the layer's adaptive stratified campaign: to the
    driver's per-stratum targets for a network member (its pilot when there are none yet), to
    the layer's own stopping rule for any other kept mapping."""
    from dse.resilience.mapped.adaptive import (
        LayerCampaign,
        adaptive_resilience,
        extend,
        layer_result,
        pilot,
        restore,
    )
    from dse.resilience.strata import Plan

    f = task.faults
    campaign = LayerCampaign(task.problem, task.arch, mapping, model, task.layer_path, images,
                             labels, seed=task.seed, fmt=f.format, device=f.device,
                             engine=_engine(task.model, f.images, f.device))
    if task.member:
        plan = Plan(f.precision, f.floor, f.max_faults, confidence=f.confidence)
        if task.strata:
            restore(campaign.strata, task.strata)
        extend(campaign, pilot(campaign, plan) if task.targets is None else
               [max(0, t - r.sdc.n) for t, r in zip(task.targets, campaign.strata, strict=True)])
        result = layer_result(campaign.strata, plan, f.fit_per_mbit)
    else:
        plan = Plan(f.precision, f.floor, f.mapping_max_faults, confidence=f.confidence)
        result = adaptive_resilience(campaign, plan, fit_per_mbit=f.fit_per_mbit,
                                     stored=task.strata)
    return ResilienceRow(
        res_key=task.res_key, row_key=task.row_key, model_key=task.model_key,
        layer_path=task.layer_path, settings_key=task.settings_key,
        sdc_rate=result.sdc.value, sdc_lo=result.sdc.lo, sdc_hi=result.sdc.hi,
        fit=result.fit.value, faults=result.sdc.n, wall_s=time.perf_counter() - start,
        detail=result.to_dict())


def _engine(spec: ModelSpec, n_images: int, device: str) -> Any:
    return _cached_engine(spec.name, canonical_json(spec.options), spec.checkpoint, spec.dataset,
                          n_images, device)


@lru_cache(maxsize=2)
def _cached_engine(name: str, options: str, checkpoint: str | None, dataset: str | None,
                   n_images: int, device: str) -> Any:
    """One engine per worker process and model: its golden run is the same for every layer and
    round of the model's campaigns (cached like the model itself)."""
    from dse.resilience.inference import FastEngine
    from dse.resilience.mapped.campaign import PATCH_BLOCK

    model, images, labels = _load(name, options, checkpoint, dataset, n_images)
    return FastEngine(model, images, labels, device=device, block=PATCH_BLOCK)


def warm_up(_: Any) -> None:
    """Nothing but the imports of a map task: sent to each fresh pool worker at the start of a
    sweep, so the workers load the mapper and model while the driver is still profiling."""
    import dse.mapper.search  # noqa: F401
    import dse.model.batch  # noqa: F401
