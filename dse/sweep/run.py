"""Run a sweep: plan tasks from a config, skip what the store already has, run the rest.

Planning happens in the driver (profiling models, building design variants, hashing every task's
inputs); the work runs on an executor; only the driver writes the store, one task per transaction.
That is what makes a killed sweep resumable and a rerun cheap: the keys of finished work are in the
database, and a changed input changes exactly the keys that depend on it.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.errors import InputError, one_line
from dse.sweep.config import (
    DesignPoint,
    ModelSpec,
    SweepConfig,
    config_from_dict,
    read_config,
    validate,
    write_config,
)
from dse.sweep.executors import make_executor
from dse.sweep.hashing import canonical_json, code_version, file_digest, stable_hash, to_plain
from dse.sweep.profiles import shapes_only_workload
from dse.sweep.store import Store, new_owner
from dse.sweep.tasks import (
    FrontTask,
    MapResult,
    MapTask,
    ResilienceTask,
    load_model_and_data,
    run_front_task,
    run_map_task,
    run_resilience_task,
    warm_up,
)
from dse.workers import cap_workers


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: the stored rows of this sweep plus run bookkeeping."""

    config: SweepConfig
    db_path: Path
    rows: list[dict[str, Any]]  # one per design point x model x layer x kept mapping
    network: list[dict[str, Any]]  # one per design point x model (the ``network`` view)
    computed: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    timeloop_checks: list[dict[str, Any]] = field(default_factory=list)  # timeloop-check
    # model -> layer_index -> module path of every occurrence folded into that layer
    occurrences: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    # (model, mapping row key, layer path) -> stored resilience detail (adaptive: its strata)
    details: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)  # units that failed this run
    # resilience-aware objectives: every front mapping (estimate, and injection once scored) and
    # per design point x model the pick network against the min-EDP one
    fronts: list[dict[str, Any]] = field(default_factory=list)
    picks: list[dict[str, Any]] = field(default_factory=list)
    # (model, mapping row key, layer path) -> estimated SDC FIT of every kept mapping with
    # strata, calibrated (with the live fraction) on its layer's min-EDP campaign
    estimates: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def rows_with_strata(self) -> list[dict[str, Any]]:
        return [{**r, "estimate_fit": self.estimates.get((r["model"], r["row_key"],
                                                            r["layer_path"]))}
                for r in with_strata(self.rows, self.details)]

    def to_frame(self, table: str = "network") -> Any:
        """The ``network`` rows (one per design point x model, the figures ``dse sweep``
        prints) or the ``mappings`` rows (one per layer x kept mapping) as a DataFrame, columns
        named and defined by :mod:`dse.frames` (e.g. ``edp`` -> ``edp_J_cycles``)."""
        from dse.frames import frame, renamed

        if table not in ("network", "mappings"):
            raise ValueError(f"table is 'network' or 'mappings', not {table!r}")
        return frame([renamed(r) for r in (self.network if table == "network" else self.rows)])


@dataclass
class _ModelPlan:
    spec: ModelSpec
    model_key: str
    workload: Any
    score: bool  # resilience side runs for this model


@dataclass
class _Plan:
    points: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    map_tasks: dict[str, MapTask]
    models: dict[str, _ModelPlan]
    archs: dict[str, Any]
    settings_key: str
    notes: list[str]


def run_sweep(config: SweepConfig | str | Path | dict[str, Any], *,
              progress: bool = True) -> SweepResult:
    """Validate, plan, and run a sweep; return its rows (also stored in ``config.db_path``).

    ``config`` is a :class:`SweepConfig`, the path of an experiment YAML, or the same keys as a
    dict. ``progress`` shows one tqdm bar per stage on stderr (when stderr is a terminal).
    """
    if isinstance(config, (str, Path)):
        config = read_config(config)
    elif isinstance(config, dict):
        config = config_from_dict(config, source="run_sweep()")
    start = time.perf_counter()
    points = validate(config)
    executor, note = _start_executor(config)  # its workers start while the models are profiled
    try:
        return _run(config, points, executor, note, start, progress)
    finally:
        executor.close()


def _start_executor(config: SweepConfig) -> tuple[Any, str | None]:
    """The config's executor, its workers already importing the mapper (a warm-up task each), so
    their start-up overlaps the driver's profiling instead of following it."""
    workers, note = config.workers, None
    if not (config.scheduler or config.dask_local or config.executor == "dask"):
        workers, note = cap_workers(config.workers, flag="workers")
    executor = make_executor(config.executor, workers=workers,
                             scheduler=config.scheduler, dask_local=config.dask_local)
    if executor.name == "process":
        for _ in range(workers):
            executor.submit(warm_up, None)
    return executor, note


def _run(config: SweepConfig, points: list[DesignPoint], executor: Any, note: str | None,
         start: float, progress: bool) -> SweepResult:
    plan = _plan(config, points)
    if note:
        plan.notes.append(note)
    computed = {"map": 0, "front": 0, "resilience": 0}
    reused = {"map": 0, "front": 0, "resilience": 0}
    with Store(config.db_path) as store:
        store.begin_sweep(config.name, config.to_dict(), plan.settings_key, plan.layers,
                          plan.points, conflict=lambda old: config_conflict(old, config.to_dict()))
        write_config(config, Path(config.output) / "experiment.yaml")
        done = store.done_tasks(plan.map_tasks)
        reused["map"] = len(done)
        todo = [t for k, t in plan.map_tasks.items() if k not in done]
        failed: list[dict[str, str]] = []
        _execute(config, plan, store, executor, todo, done, computed, reused, progress, failed)
        rows = store.results(config.name)
        details = store.resilience_details(config.name)
        network = network_figures(with_strata(rows, details), store.network(config.name),
                                  config.resilience)
        checks = store.timeloop_checks(config.name) if config.backend == "timeloop-check" else []
        fronts = front_rows(store, config.name) if config.mapper.resilience_aware else []
    notes = plan.notes + ([_check_note(checks)] if checks else [])
    if failed:
        notes.append(f"{len(failed)} units failed and were recorded (table 'failures'); "
                     f"a rerun retries them. First: {failed[0]['label']}: {failed[0]['reason']}")
    occurrences = {label: {i: list(layer.paths) for i, layer in enumerate(m.workload.layers)}
                   for label, m in plan.models.items()}
    picks = pick_networks(fronts, network, config.resilience)
    estimates = kept_estimates(plan, with_strata(rows, details), config.resilience)
    notes += [f"{p['point']} / {p['model']}: no visited mapping meets the objective's constraint on"
              f" {p['layers_without_pick']} of {p['layers']} layers (their front's lowest-EDP "
              "mapping stands in)" for p in picks if p["layers_without_pick"]]
    return SweepResult(config, config.db_path, rows, network, computed, reused, notes,
                       time.perf_counter() - start, checks, occurrences, details, failed,
                       fronts, picks, estimates)


def _check_note(checks: list[dict[str, Any]]) -> str:
    """One line on how the real timeloop-model judged the kept mappings."""
    bad = [c for c in checks if not c["agree"]]
    text = (f"timeloop-model re-evaluated {len(checks)} kept mappings: "
            f"{len(checks) - len(bad)} agree with dse's model (equal cycles, energy within 1e-6)")
    if bad:
        first = bad[0]
        text += (f"; {len(bad)} DISAGREE (first: {first['point']} / {first['layer']} rank "
                 f"{first['rank']}: {first['error'] or 'numbers differ'}; see table "
                 "timeloop_checks)")
    return text


# How a sweep runs, not what it computes: a rerun may change these and keep its name.
_RUN_ONLY_KEYS = ("executor", "workers", "scheduler", "dask_local", "output", "name")


# An adaptive campaign's stopping rule: a rerun with a finer one continues the stored campaigns.
_STOPPING_KEYS = ("precision", "floor", "max_faults", "mapping_max_faults")


def config_conflict(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a stored sweep's config is another experiment than ``new`` (None: the same one)."""
    old, new = _without_stopping_rule(old), _without_stopping_rule(new)
    keys = sorted(k for k in set(old) | set(new)
                  if k not in _RUN_ONLY_KEYS and canonical_json(old.get(k)) != canonical_json(new.get(k)))
    return f"different {', '.join(keys)}" if keys else None


def _without_stopping_rule(config: dict[str, Any]) -> dict[str, Any]:
    res = config.get("resilience")
    if not isinstance(res, dict) or res.get("precision") is None or res.get("faults") is not None:
        return config
    return {**config, "resilience": {k: v for k, v in res.items() if k not in _STOPPING_KEYS}}


# ------------------------------------------------------------------------------------- planning

def _plan(config: SweepConfig, points: list[DesignPoint]) -> _Plan:
    from dse.arch import load_arch, make_variant

    settings_key = stable_hash("resilience", config.resilience.identity(), config.seed,
                               code_version())
    models: dict[str, _ModelPlan] = {}
    for i, spec in enumerate(config.models):
        try:
            models[spec.label] = _plan_model(config, spec)
        except InputError as exc:
            sub = "name" if exc.field in (None, "model", spec.name) else exc.field
            raise InputError(exc.reason, file=exc.file or config.source,
                             field=f"models[{i}].{sub}") from None
    notes = [_note(p) for p in models.values() if not p.score]
    archs: dict[str, Any] = {}
    point_rows: list[dict[str, Any]] = []
    for point in points:
        arch = load_arch(point.design)
        if point.params:
            arch = make_variant(arch, **dict(point.params))
        key = stable_hash("point", arch)
        if key in archs:  # a variant equal to another point (e.g. the shipped values)
            continue
        archs[key] = arch
        point_rows.append(dict(point_key=key, design=point.design, label=point.label,
                               params=canonical_json(dict(point.params)),
                               arch=canonical_json(to_plain(arch))))
    first = config.mapper.first_stage()
    mapper_keys = dict(mapper=first, backend=config.backend, seed=config.seed,
                       pareto=config.resilience.pareto, top_k=config.resilience.top_k)
    layers: list[dict[str, Any]] = []
    tasks: dict[str, MapTask] = {}
    for prow in point_rows:
        arch = archs[prow["point_key"]]
        for mplan in models.values():
            for index, layer in enumerate(mplan.workload.layers):
                key = stable_hash("map", to_plain(layer.problem), prow["arch"], mapper_keys,
                                  code_version())
                layers.append(dict(point_key=prow["point_key"], model=mplan.spec.label,
                                   model_key=mplan.model_key, layer_index=index,
                                   layer=layer.name, layer_path=layer.module_path,
                                   count=layer.count, task_key=key))
                tasks.setdefault(key, MapTask(
                    task_key=key, point_key=prow["point_key"],
                    label=f"{prow['label']} / {mplan.spec.label} / {layer.name}", arch=arch,
                    problem=layer.problem, mapper=first, backend=config.backend,
                    seed=config.seed, pareto=config.resilience.pareto,
                    top_k=config.resilience.top_k))
    return _Plan(point_rows, layers, tasks, models, archs, settings_key, notes)


def _plan_model(config: SweepConfig, spec: ModelSpec) -> _ModelPlan:
    """Profile a model into layers; for scored models, profile the very module that is injected."""
    score = config.resilience.enabled and spec.has_weights
    if score:
        from dse.problems import profile

        model, images, _ = load_model_and_data(spec, config.resilience.images)
        shape = spec.input_shape or (1, *tuple(images.shape[1:]))
        identity = ([file_digest(spec.checkpoint), file_digest(spec.dataset)]
                    if spec.checkpoint and spec.dataset else ["trained", code_version()])
        workload = profile(model, tuple(shape), name=spec.label)
    else:
        workload = shapes_only_workload(spec)
        shape = workload.input_shape
        identity = ["shapes-only"]
    model_key = stable_hash("model", spec.name, spec.options, list(shape), identity)
    return _ModelPlan(spec, model_key, workload, score)


def _note(plan: _ModelPlan) -> str:
    if plan.spec.has_weights:
        return f"resilience side not scored for {plan.spec.label}: disabled in this experiment"
    return (f"resilience side not scored for {plan.spec.label}: no trained checkpoint + dataset "
            "given (energy side only; pass --checkpoint and --dataset to score it)")


# ------------------------------------------------------------------------------------ execution

def _execute(config: SweepConfig, plan: _Plan, store: Store, executor: Any, todo: list[MapTask],
             done: set[str], computed: dict[str, int], reused: dict[str, int],
             progress: bool, failed: list[dict[str, str]]) -> None:
    from tqdm import tqdm

    bars = {
        "map": tqdm(total=len(plan.map_tasks), initial=len(done), desc="map     ", unit="layer",
                    file=sys.stderr, disable=None if progress else True,
                    dynamic_ncols=True),
        "front": tqdm(total=0, desc="front   ", unit="layer", file=sys.stderr,
                      disable=None if progress else True, dynamic_ncols=True),
        "resilience": tqdm(total=0, desc="resilience", unit="mapping", file=sys.stderr,
                           disable=None if progress else True, dynamic_ncols=True),
    }
    run = _Run(config, plan, store, executor, bars, computed, reused, failed)
    try:
        for task in todo:
            run.submit("map", task)
        for key in sorted(done):
            run.submit_resilience(key)
        run.drain()
        if config.resilience.adaptive and any(m.score for m in plan.models.values()):
            _network_rounds(run)
        if config.mapper.resilience_aware:
            _send(run, "front", front_tasks(run))
            _send(run, "resilience", front_scores(run))
            _network_rounds(run)
    finally:
        for bar in bars.values():
            bar.close()


def _network_rounds(run: _Run) -> None:
    while tasks := network_round(run):
        _send(run, "resilience", tasks)


def _send(run: _Run, kind: str, tasks: list[Any]) -> None:
    """Submit a batch of one kind of unit and wait for all of them."""
    run.bars[kind].total += len(tasks)
    for task in tasks:
        run.submit(kind, task)
    run.drain()


# A unit whose worker died this many times is marked failed instead of sent out again.
MAX_ATTEMPTS = 3
_RUNNERS = {"map": run_map_task, "front": run_front_task, "resilience": run_resilience_task}


def lease_s() -> float:
    """How long a claim on a unit of work holds without renewal (``DSE_LEASE_S``, default 300 s):
    a run that died stops renewing, and another run takes its units over after this long."""
    try:
        return max(0.5, float(os.environ.get("DSE_LEASE_S", "300")))
    except ValueError:
        return 300.0


def _label(task: Any) -> str:
    return getattr(task, "label", None) or f"{task.layer_path} / {task.model.label}"


def _unit(task: Any) -> str:
    return getattr(task, "task_key", None) or getattr(task, "front_key", None) or task.res_key


@dataclass
class _Run:
    """The execution state of one sweep run: what it has sent out, what another run holds, and
    its claims on the store (so concurrent runs on one store each compute a unit once)."""

    config: SweepConfig
    plan: _Plan
    store: Store
    executor: Any
    bars: dict[str, Any]
    computed: dict[str, int]
    reused: dict[str, int]
    failed: list[dict[str, str]]
    pending: dict[Any, tuple[str, Any]] = field(default_factory=dict)
    deferred: list[tuple[str, Any]] = field(default_factory=list)  # held by another live run
    attempts: dict[str, int] = field(default_factory=dict)
    owner: str = field(default_factory=new_owner)
    lease: float = field(default_factory=lease_s)
    renewed: float = field(default_factory=time.monotonic)

    def submit(self, kind: str, task: Any) -> None:
        """Send a unit out if this run wins its claim; reuse it if another run stored it."""
        state = self.store.claim(_unit(task), kind, self.owner, self.lease)
        if state == "mine" and kind == "resilience":
            # a stored score serves (reuse) or is continued (adaptive): read it after the claim
            stored = self.store.resilience_detail(task.res_key)
            if stored is not None and _finished(stored, self.config.resilience, task):
                self.store.release(task.res_key, self.owner)
                state = "done"
            else:
                task = dataclasses.replace(task, strata=(stored or {}).get("strata"))
        if state == "mine":
            self.pending[self.executor.submit(_RUNNERS[kind], task)] = (kind, task)
        elif state == "busy":
            self.deferred.append((kind, task))
        else:
            self._reused(kind, task)

    def _reused(self, kind: str, task: Any) -> None:
        self.reused[kind] += 1
        self.bars[kind].update(1)
        if kind == "map":
            self.submit_resilience(task.task_key)
        elif kind == "front":
            self.store.use_front(self.config.name, task.point_key, task.model, task.layer_path,
                                 task.front_key)

    def drain(self) -> None:
        while self.pending or self.deferred:
            if time.monotonic() - self.renewed > self.lease / 4:
                self.store.renew([_unit(t) for _, t in self.pending.values()], self.owner,
                                 self.lease)
                self.renewed = time.monotonic()
            if self.pending:
                for fut in self.executor.wait_first(self.pending, timeout=self.lease / 8):
                    if fut in self.pending:  # else: resubmitted after a pool restart
                        self._handle(fut, *self.pending.pop(fut))
            if self.deferred:
                if not self.pending:
                    time.sleep(min(1.0, self.lease / 8))
                waiting, self.deferred = self.deferred, []
                for kind, task in waiting:
                    self.submit(kind, task)

    def _handle(self, fut: Any, kind: str, task: Any) -> None:
        result, error = _result(fut, task)
        if isinstance(error, cf.BrokenExecutor):
            self._recover((kind, task))
            return
        if error is not None:
            self._fail(kind, task, error)
        elif kind == "map":
            _store_map(self.store, task, result)
            self.computed["map"] += 1
            self.submit_resilience(task.task_key)
        elif kind == "front":
            self.store.put_front(result)
            self.store.use_front(self.config.name, task.point_key, task.model, task.layer_path,
                                 task.front_key)
            self.computed["front"] += 1
        else:
            self.store.put_resilience(result)
            self.computed["resilience"] += 1
        if error is None:
            self.store.clear_failure(_unit(task))
        self.store.release(_unit(task), self.owner)
        self.bars[kind].update(1)

    def _fail(self, kind: str, task: Any, error: BaseException) -> None:
        reason = one_line(f"{type(error).__name__}: {error}")[:500]
        self.store.put_failure(_unit(task), self.config.name, kind, _label(task), reason)
        self.failed.append({"unit": _unit(task), "kind": kind, "label": _label(task),
                            "reason": reason})

    def _recover(self, lost: tuple[str, Any]) -> None:
        """A pool worker died (killed, out of memory): every unfinished task of the broken pool
        goes to a fresh pool; finished results are kept. A task that keeps killing workers is
        marked failed."""
        self.executor.restart()
        redo = [lost] + [self.pending.pop(f) for f in list(self.pending)
                         if not (f.done() and not f.cancelled() and f.exception() is None)]
        for kind, task in redo:
            unit = _unit(task)
            self.attempts[unit] = self.attempts.get(unit, 0) + 1
            if self.attempts[unit] >= MAX_ATTEMPTS:
                self._fail(kind, task, RuntimeError(
                    f"worker process died {self.attempts[unit]} times running it"))
                self.store.release(unit, self.owner)
                self.bars[kind].update(1)
            else:
                self.pending[self.executor.submit(_RUNNERS[kind], task)] = (kind, task)

    def submit_resilience(self, task_key: str) -> None:
        """Queue resilience for every kept mapping of a finished task, per scored layer using
        it."""
        plan, config = self.plan, self.config
        entries = [e for e in plan.layers if e["task_key"] == task_key]
        mapping_rows = None
        for entry in entries:
            mplan = plan.models[entry["model"]]
            if not mplan.score:
                continue
            if mapping_rows is None:
                mapping_rows = self.store.task_mappings(task_key)
            task = plan.map_tasks[task_key]
            for row in mapping_rows:
                res_key = res_key_of(plan, row["row_key"], entry["model"],
                                     entry["layer_path"])
                queued = [t for _, t in (*self.pending.values(), *self.deferred)]
                if any(getattr(t, "res_key", None) == res_key for t in queued):
                    continue
                self.bars["resilience"].total += 1
                self.submit("resilience", ResilienceTask(
                    res_key=res_key, row_key=row["row_key"], model=mplan.spec,
                    model_key=mplan.model_key, layer_path=entry["layer_path"],
                    arch=plan.archs[entry["point_key"]], problem=task.problem,
                    mapping_text=row["mapping"], faults=config.resilience,
                    settings_key=plan.settings_key, seed=config.seed, strata=None,
                    member=config.resilience.adaptive and row["rank"] == 0))


def _result(fut: Any, task: Any) -> tuple[Any, BaseException | None]:
    """A task's result or what went wrong. Bad input stops the sweep (one line naming the design
    point and layer); anything else (a crashed or hung binary, a lost worker) is returned so the
    sweep records it and goes on with the other work."""
    try:
        return fut.result(), None
    except InputError as exc:
        raise InputError(f"{_label(task)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - recorded per unit, see _Run._fail
        return None, exc


def _store_map(store: Store, task: MapTask, result: MapResult) -> None:
    store.put_task(task.task_key, task.point_key, to_plain(task.problem), to_plain(task.mapper),
                   result.rows, evaluated=result.evaluated, valid=result.valid,
                   wall_s=result.wall_s)


def _finished(stored: dict[str, Any], settings: Any, task: Any) -> bool:
    """A stored score serves this run: a classic one always; a network member's when it holds
    the round's targets (or, before any round, its pilot); another adaptive one when it meets
    this run's stopping rule or already ran ``mapping_max_faults`` (else it is continued)."""
    from dse.resilience.strata import Estimate

    if not settings.adaptive or "strata" not in stored:
        return True
    if task.member:
        return task.targets is None or all(
            d["n"] >= t for d, t in zip(stored["strata"], task.targets, strict=True))
    lo, hi = stored["sdc1_ci"]
    est = Estimate(stored["sdc1_rate"], lo, hi, stored["n_faults"])
    return est.resolved(settings.precision, settings.floor) or est.n >= settings.mapping_max_faults


def network_round(run: _Run) -> list[ResilienceTask]:
    """The next round of every network campaign that is not done yet (each design point's
    min-EDP network and, with a resilience-aware objective, its pick network): tasks that bring
    each layer's strata to the round's targets. A round is stored before it goes out, so a
    killed sweep finishes that round on resume instead of deciding a different one."""
    from dse.resilience.network import network_additions
    from dse.resilience.strata import Plan

    config, plan, store = run.config, run.plan, run.store
    f = config.resilience
    budget = Plan(f.precision, f.floor, f.max_faults, confidence=f.confidence)
    rows = with_strata(store.results(config.name), store.resilience_details(config.name))
    groups = list(network_members(rows).values())
    if config.mapper.resilience_aware:
        groups += list(pick_members(front_rows(store, config.name)).values())
    tasks = []
    for members in groups:
        if any(not r.get("strata") for r in members):
            continue  # a member failed: the network figure is not reported (see failures)
        keys = [res_key_of(plan, r["row_key"], r["model"], r["layer_path"]) for r in members]
        round_key = stable_hash("network", keys)
        counts = {k: [d["n"] for d in r["strata"]] for k, r in zip(keys, members, strict=True)}
        targets = store.network_round(round_key)
        if targets is None or all(_met(counts[k], targets[k]) for k in keys):
            cycles = sum(r["cycles"] * r["count"] for r in members)
            add = network_additions([(r["cycles"] * r["count"] / cycles, r["strata"])
                                     for r in members], budget)
            if add is None:
                continue
            targets = {k: [n + a for n, a in zip(counts[k], more, strict=True)]
                       for k, more in zip(keys, add, strict=True)}
            store.put_network_round(round_key, targets)
        tasks += [_row_task(run, r, member=True, targets=targets[k])
                  for k, r in zip(keys, members, strict=True) if not _met(counts[k], targets[k])]
    return tasks


# ------------------------------------------------------------------ resilience-aware mapping

def front_tasks(run: _Run) -> list[FrontTask]:
    """Per scored layer, the resilience-aware search, calibrated on the strata of its min-EDP
    mapping's finished network campaign (a finer rerun recalibrates: another front key)."""
    config, plan = run.config, run.plan
    f = config.resilience
    rows = with_strata(run.store.results(config.name),
                       run.store.resilience_details(config.name))
    tasks = []
    for members in network_members(rows).values():
        for r in members:
            if not r.get("strata"):
                continue
            mplan = plan.models[r["model"]]
            calibration = [{k: d[k] for k in ("level", "dataspace", "bits", "mbit", "n", "sdc")}
                           for d in r["strata"]]
            key = stable_hash("front", r["row_key"], mplan.model_key, r["layer_path"],
                              plan.settings_key, calibration, config.mapper, f.front, f.format,
                              f.fit_per_mbit, config.seed, code_version())
            tasks.append(FrontTask(
                front_key=key, point_key=r["point_key"], model=r["model"],
                layer_path=r["layer_path"], label=f"{r['point']} / {r['model']} / {r['layer']}",
                arch=plan.archs[r["point_key"]], problem=_problem(plan, r),
                mapper=config.mapper, seed=config.seed, calibration=calibration,
                fit_per_mbit=f.fit_per_mbit, word_format=f.format, size=f.front,
                baseline=r["mapping"]))
    return tasks


def front_scores(run: _Run) -> list[ResilienceTask]:
    """Injection on every front mapping: the pick network's members start their campaign (its
    pilot; the network rounds do the rest), every other front mapping gets a layer campaign of
    at most ``mapping_max_faults`` (the min-EDP mapping itself is measured already)."""
    rows = front_rows(run.store, run.config.name)
    picks = {r["row_key"] for members in pick_members(rows).values() for r in members}
    return [_row_task(run, r, member=r["row_key"] in picks) for r in rows
            if r["row_key"] in picks or not r["baseline"]]


def front_rows(store: Store, sweep: str) -> list[dict[str, Any]]:
    """The sweep's front mappings with their stored strata (``None`` until scored)."""
    out = []
    for r in store.front_rows(sweep):
        detail = json.loads(r.pop("detail")) if r.get("detail") else {}
        out.append({**r, "strata": detail.get("strata")})
    return out


def pick_members(rows: list[dict[str, Any]], *, own: bool = True
                 ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(design point, model) -> per layer its front's pick (or, where no visited mapping meets
    the objective's constraint, the front's lowest-EDP mapping): the pick network's members.
    With ``own``, a design point whose picks are all its min-EDP mappings is left out: it has no
    pick network of its own to measure."""
    layers: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["point_key"], r["model"], r["layer_path"])
        if r["pick"] or key not in layers:
            layers[key] = r
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (point, model, _), r in layers.items():
        out.setdefault((point, model), []).append(r)
    return {k: v for k, v in out.items() if not (own and all(r["baseline"] for r in v))}


def pick_networks(fronts: list[dict[str, Any]], network: list[dict[str, Any]],
                  settings: Any) -> list[dict[str, Any]]:
    """Per design point x model: the network of each layer's resilience-aware pick against the
    min-EDP network: EDP (J x cycles) and measured SDC FIT with intervals, the EDP cost and the
    SDC FIT cut (min-EDP FIT / pick FIT), and whether the two intervals are apart."""
    out = []
    for (point_key, model), members in pick_members(fronts, own=False).items():
        base = next((n for n in network if n["point_key"] == point_key and n["model"] == model),
                    None)
        energy = sum(r["energy_pJ"] * r["count"] for r in members)
        cycles = sum(r["cycles"] * r["count"] for r in members)
        entry: dict[str, Any] = {
            "point": members[0]["point"], "point_key": point_key, "model": model,
            "layers": len(members), "layers_without_pick": sum(not r["pick"] for r in members),
            "energy_pJ": energy, "cycles": cycles, "edp": energy * 1e-12 * cycles,
            "min_edp_edp": base["edp"] if base else None,
            "min_edp_fit": (base or {}).get("fit"), "min_edp_fit_lo": (base or {}).get("fit_lo"),
            "min_edp_fit_hi": (base or {}).get("fit_hi"),
            "same_as_min_edp": all(r["baseline"] for r in members)}
        if entry["same_as_min_edp"] and base and base.get("fit") is not None:
            entry.update({k: base[k] for k in ("sdc_rate", "sdc_lo", "sdc_hi", "fit", "fit_lo",
                                               "fit_hi", "faults", "resolved")})
        elif all(r.get("strata") for r in members):
            from dse.resilience.network import network_sdc

            fig = network_sdc([(r["cycles"] * r["count"] / cycles, r["strata"]) for r in members],
                              fit_per_mbit=settings.fit_per_mbit, confidence=settings.confidence,
                              seconds_per_inference=cycles / (settings.clock_ghz * 1e9))
            entry.update(network_columns(fig, settings))
        out.append(entry | cut(entry))
    return out


def cut(entry: dict[str, Any]) -> dict[str, Any]:
    """EDP cost (pick EDP / min-EDP EDP), SDC FIT cut (min-EDP FIT / pick FIT, None when the
    pick's FIT is 0) and whether the pick's interval lies wholly below the min-EDP one's."""
    base_edp, base_fit = entry.get("min_edp_edp"), entry.get("min_edp_fit")
    fit = entry.get("fit")
    return {"edp_cost": entry["edp"] / base_edp if base_edp else None,
            "fit_cut": base_fit / fit if fit and base_fit is not None else None,
            "apart": (fit is not None and entry.get("min_edp_fit_lo") is not None
                      and entry["fit_hi"] < entry["min_edp_fit_lo"])}


def kept_estimates(plan: _Plan, rows: list[dict[str, Any]], settings: Any
                   ) -> dict[tuple[str, str, str], float]:
    """The SDC-FIT estimate of every kept mapping with strata, calibrated on its layer's
    min-EDP campaign with the live fraction, as a resilience-aware search would score it (one
    batch per layer), so the sweep can show it beside each mapping's injection. Nothing scored:
    nothing to estimate, and the resilience package (torch) is not loaded."""
    layers: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("strata"):
            layers.setdefault((r["point_key"], r["model"], r["layer_path"]), []).append(r)
    if not layers:
        return {}
    from dse.model.batch import mappings_to_arrays
    from dse.resilience.formats import word_bits
    from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric
    from dse.sweep.tasks import read_mapping_text

    bits = None if settings.format == "int" else word_bits(settings.format)
    out: dict[tuple[str, str, str], float] = {}
    for members in layers.values():
        calib = next((r for r in members if r["rank"] == 0), None)
        if calib is None or len(members) < 2:
            continue
        arch = plan.archs[calib["point_key"]]
        problem = _problem(plan, calib)
        maps = [read_mapping_text(r["mapping"], arch, problem) for r in members]
        sens = Sensitivity.from_strata(calib["strata"], settings.fit_per_mbit)
        arrays, scalar = mappings_to_arrays(problem, arch, maps)
        if scalar:
            continue  # a mapping the batched estimate cannot express: no estimate shown
        sens = sens.with_liveness(problem, arch, maps[0], word_bits=bits)
        values = sdc_fit_metric(problem, arch, sens, word_bits=bits)(arrays)
        out.update({(r["model"], r["row_key"], r["layer_path"]): float(v)
                    for r, v in zip(members, values, strict=True)})
    return out


def res_key_of(plan: _Plan, row_key: str, model: str, layer_path: str) -> str:
    """The key of one mapping's score for one scored layer under this sweep's fault settings."""
    return stable_hash(row_key, plan.models[model].model_key, layer_path, plan.settings_key)


def _problem(plan: _Plan, row: dict[str, Any]) -> Any:
    """The layer problem of a stored row (its design point, model and layer)."""
    entry = next(e for e in plan.layers if e["point_key"] == row["point_key"]
                 and e["model"] == row["model"] and e["layer_path"] == row["layer_path"])
    return plan.map_tasks[entry["task_key"]].problem


def _met(counts: list[int], targets: list[int]) -> bool:
    return all(n >= t for n, t in zip(counts, targets, strict=True))


def _row_task(run: _Run, row: dict[str, Any], *, member: bool,
              targets: list[int] | None = None) -> ResilienceTask:
    """The resilience task of a stored mapping row: a network member (its pilot, or up to the
    round's ``targets``) or a layer campaign of its own."""
    plan, config = run.plan, run.config
    mplan = plan.models[row["model"]]
    return ResilienceTask(
        res_key=res_key_of(plan, row["row_key"], row["model"], row["layer_path"]),
        row_key=row["row_key"], model=mplan.spec, model_key=mplan.model_key,
        layer_path=row["layer_path"], arch=plan.archs[row["point_key"]],
        problem=_problem(plan, row), mapping_text=row["mapping"], faults=config.resilience,
        settings_key=plan.settings_key, seed=config.seed, member=member, targets=targets)


def network_members(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(design point, model) -> its layers' min-EDP rows: the members of its network figure."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["rank"] == 0:
            out.setdefault((r["point_key"], r["model"]), []).append(r)
    return out


def with_strata(rows: list[dict[str, Any]], details: dict[tuple[str, str, str], dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """Copies of the rows, each with the stored strata of its resilience score (or ``None``) and
    the raw rate and confidence they were scored with."""
    out = []
    for row in rows:
        detail = details.get((row["model"], row["row_key"], row["layer_path"])) or {}
        out.append({**row, **{k: detail.get(k) for k in ("strata", "fit_per_mbit",
                                                          "confidence")}})
    return out


def network_figures(rows: list[dict[str, Any]], network: list[dict[str, Any]],
                    settings: Any) -> list[dict[str, Any]]:
    """Replace each network row's SDC columns by the chip's network SDC figures
    (:mod:`dse.resilience.network`) over its min-EDP mappings, when every scored layer has
    strata (adaptive campaigns); a classic campaign keeps the cycle-weighted average. The
    resilience package (and so torch) loads only when some network has scored layers."""
    members = network_members(rows)
    for net in network:
        mine = members.get((net["point_key"], net["model"]), [])
        scored = [r for r in mine if r.get("strata")]
        if not scored or len(scored) != len([r for r in mine if r["sdc_rate"] is not None]):
            continue
        from dse.resilience.network import network_sdc

        cycles = sum(r["cycles"] * r["count"] for r in mine)
        fig = network_sdc([(r["cycles"] * r["count"] / cycles, r["strata"]) for r in scored],
                          fit_per_mbit=settings.fit_per_mbit, confidence=settings.confidence,
                          seconds_per_inference=cycles / (settings.clock_ghz * 1e9))
        net.update(network_columns(fig, settings))
        net["breakdown"] = sdc_fit_breakdown(
            [(r["layer_path"], r["cycles"] * r["count"] / cycles, r["strata"]) for r in scored],
            settings)
    return network


def sdc_fit_breakdown(layers: list[tuple[str, float, list[dict]]],
                      settings: Any) -> dict[str, dict[str, list[float]]]:
    """The network SDC FIT split per layer, per site class and per bit group (FIT, [value, lo,
    hi]; each part with its own interval)."""
    from dse.resilience.network import network_breakdown

    def bits(d: dict) -> str:
        lo, hi = d["bits"]
        return f"bit {lo}" if hi - lo == 1 else f"bits {lo}-{hi - 1}"

    keys = {"layer": lambda name, d: name,
            "site": lambda name, d: f"{d['level']}:{d['dataspace']}",
            "bit": lambda name, d: f"{d['dataspace']} {bits(d)}"}
    return {part: {k: [e.value, e.lo, e.hi] for k, e in network_breakdown(
        layers, key, fit_per_mbit=settings.fit_per_mbit, confidence=settings.confidence).items()}
        for part, key in keys.items()}


def network_columns(fig: Any, settings: Any) -> dict[str, Any]:
    """The network row's SDC columns (definitions and units in docs/resilience.md)."""
    e = fig.per_fault
    return {
        "sdc_rate": e.value, "sdc_lo": e.lo, "sdc_hi": e.hi,
        "fit": fig.fit.value, "fit_lo": fig.fit.lo, "fit_hi": fig.fit.hi,
        "sdc_per_inference": fig.per_inference.value,
        "sdc_per_inference_hi": fig.per_inference.hi,
        "due_rate": fig.due_per_fault.value, "due_hi": fig.due_per_fault.hi,
        "due_fit": fig.due_fit.value, "faults": e.n,
        "relative_half_width": e.relative,
        "resolved": fig.resolved(settings.precision or 0.0, settings.floor),
    }


def stored_figures(store: Store, sweep: str | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows with their strata, network rows with the chip's network SDC figures) of stored
    sweeps, as ``dse sweep`` computed them, for ``dse results`` and redrawn reports (the store's
    ``network`` view alone only averages the layers' rates by cycles)."""
    rows, network = [], []
    for name in [sweep] if sweep else store.sweeps():
        found = store.query("SELECT config FROM sweeps WHERE sweep = ?", (name,))
        settings = config_from_dict(json.loads(found[0]["config"])).resilience
        mine = with_strata(store.results(name), store.resilience_details(name))
        rows += mine
        network += network_figures(mine, store.network(name), settings)
    return rows, network


def stored_picks(store: Store, sweep: str | None = None
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(front mappings with their strata, pick networks against the min-EDP networks) of
    stored resilience-aware sweeps, as ``dse sweep`` computed them, for ``dse results``."""
    fronts, picks = [], []
    for name in [sweep] if sweep else store.sweeps():
        found = store.query("SELECT config FROM sweeps WHERE sweep = ?", (name,))
        settings = config_from_dict(json.loads(found[0]["config"])).resilience
        mine = front_rows(store, name)
        if not mine:
            continue
        _, network = stored_figures(store, name)
        fronts += [{**r, "sweep": name} for r in mine]
        picks += [{**p, "sweep": name} for p in pick_networks(mine, network, settings)]
    return fronts, picks

