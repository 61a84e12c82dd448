"""Experiment configuration: one YAML file, every key also a command-line flag.

The YAML is the record of an experiment (it is stored with the results); flags let a user change one
key without editing the file. :func:`load_config` reads the YAML, applies flag overrides, then
:func:`validate` checks every name and value against the real designs and model zoo so that a typo
fails in the first second, naming the file and the field, instead of after an hour of mapping.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dse import validate as check
from dse.errors import InputError
from dse.mapper.search import NEEDS_METRIC
from dse.mapper.search import OBJECTIVES as MAPPER_OBJECTIVES
from dse.yamlfile import read_yaml

EXECUTORS = ("process", "inprocess", "dask")
# builtin: dse's mapper and model; timeloop: the real timeloop-mapper searches; timeloop-check:
# dse's mapper searches and the real timeloop-model re-evaluates every kept mapping.
BACKENDS = ("builtin", "timeloop", "timeloop-check")
_BACKEND_BINARY = {"timeloop": "timeloop-mapper", "timeloop-check": "timeloop-model"}
# the mapper's objective names (one registry: dse.mapper); those in NEEDS_METRIC search with the
# SDC-FIT estimate, calibrated on each layer's min-EDP campaign (the sweep's front stage)
OBJECTIVES = tuple(MAPPER_OBJECTIVES)
# how fault injection stores words: each level's own fixed-point width, or one format everywhere
WORD_FORMATS = ("int", "bf16", "fp16", "fp32")
SEARCHES = ("hybrid", "exhaustive", "random", "auto")


@dataclass
class ModelSpec:
    """One model of the sweep.

    ``options`` are keyword arguments of ``dse.problems.zoo.get_model`` (e.g. ``dilated: false``).
    ``checkpoint`` (a state_dict file) and ``dataset`` (a ``.pt``/``.npz`` with images and labels)
    enable the resilience side for zoo models; the digits models bring their own.
    """

    name: str
    input_shape: tuple[int, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    dataset: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
            self.label = f"{self.name}[{opts}]" if opts else self.name

    @property
    def has_weights(self) -> bool:
        """True when the resilience side can run on real weights and data."""
        from dse.problems import zoo

        return bool(self.checkpoint and self.dataset) or zoo.default_dataset(self.name) is not None


@dataclass
class MapperSettings:
    objective: str = "edp"
    search: str = "hybrid"  # "auto" may pick exhaustive vs hybrid by timing: not repeatable
    time_limit: float = 2.0  # seconds per layer (a cap; ``budget`` is what makes runs repeatable)
    budget: int | None = 3000  # mappings evaluated per layer
    # The resilience-aware pick from the estimate's EDP x SDC-FIT front (objectives that need
    # the estimate): the lowest estimated SDC FIT within ``edp_slack`` of the front's best EDP,
    # or, with ``sdc_fit_max`` set, the lowest EDP whose estimate is at most that (FIT).
    edp_slack: float = 0.10
    sdc_fit_max: float | None = None

    @property
    def resilience_aware(self) -> bool:
        return self.objective in NEEDS_METRIC

    def first_stage(self) -> MapperSettings:
        """The settings of the per-layer EDP search that every sweep runs first (its min-EDP
        mapping is the network baseline and the estimate's calibration): the same keys as an
        EDP-only sweep, so both share their stored mappings."""
        return MapperSettings(objective="edp" if self.resilience_aware else self.objective,
                              search=self.search, time_limit=self.time_limit, budget=self.budget)


@dataclass
class FaultSettings:
    """Which mappings get resilience scores and how hard to inject."""

    enabled: bool = True
    pareto: bool = True  # score the mapper's energy x delay Pareto set ...
    top_k: int = 1  # ... plus the K best mappings by EDP
    # Adaptive stratified sampling (docs/resilience.md): the min-EDP mappings of a design point's
    # layers form one network campaign; faults go to the (layer, site class, bit group) strata
    # where they shrink the network SDC interval most, until its half-width is at most
    # ``precision`` x the estimate, or its upper bound on P(SDC | fault) is under ``floor``, or
    # ``max_faults`` have run for that design point (reported as reached so far). The other kept
    # mappings (Pareto set, top-K) get a layer campaign of at most ``mapping_max_faults`` each.
    # ``precision: null`` (or a fixed ``faults``) uses the classic Leveugle sizes from ``margin``.
    precision: float | None = 0.25
    floor: float = 1e-4
    max_faults: int = 60000
    mapping_max_faults: int = 1000
    faults: int | None = None  # faults per fault-site class (classic sizes only)
    margin: float = 0.1  # classic sizes: Leveugle's error margin per fault-site class
    confidence: float = 0.95
    fit_per_mbit: float = 1000.0
    clock_ghz: float = 1.0  # for SDC per inference (inference time = cycles / clock)
    images: int = 8  # images each fault is struck on (the fault, not the image, is the unit)
    device: str = "cpu"  # where the network runs: cpu or cuda[:N]
    format: str = "int"  # words as stored: "int" (each level's own width) or one of WORD_FORMATS
    # resilience-aware objectives: how many mappings of each layer's estimated front are scored
    # by injection (the pick, both ends, the rest evenly spaced along the front)
    front: int = 6

    @property
    def adaptive(self) -> bool:
        return self.precision is not None and self.faults is None

    def identity(self) -> FaultSettings:
        """What a stored score depends on: an adaptive campaign's stopping rule is left out, so
        a rerun with a finer precision continues the stored campaign instead of starting over."""
        if not self.adaptive:
            return self
        return dataclasses.replace(self, precision=0.0, floor=0.0, max_faults=0,
                                   mapping_max_faults=0)


@dataclass
class SweepConfig:
    name: str = "default"
    designs: list[str] = field(default_factory=lambda: ["eyeriss_like"])
    variants: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    grid: dict[str, list[Any]] = field(default_factory=dict)
    models: list[ModelSpec] = field(default_factory=lambda: [ModelSpec("digits_resnet20")])
    backend: str = "builtin"
    mapper: MapperSettings = field(default_factory=MapperSettings)
    resilience: FaultSettings = field(default_factory=FaultSettings)
    seed: int = 0
    executor: str = "process"
    workers: int = 2
    scheduler: str | None = None
    dask_local: int | None = None
    output: str = "runs/sweep"
    source: str | None = None  # the YAML file it came from, for error messages

    @property
    def db_path(self) -> Path:
        return Path(self.output) / "sweep.sqlite"

    def variant_params(self) -> list[dict[str, Any]]:
        """The explicit variants crossed with the grid (``{}`` = the design as shipped)."""
        keys = sorted(self.grid)
        combos = [dict(zip(keys, vals, strict=True))
                  for vals in itertools.product(*(self.grid[k] for k in keys))]
        out: list[dict[str, Any]] = []
        for base in self.variants or [{}]:
            for combo in combos or [{}]:
                merged = {**base, **combo}
                if merged not in out:
                    out.append(merged)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        for m in d["models"]:
            shape = m.pop("input_shape")
            if shape is not None:
                m["input"] = "x".join(str(s) for s in shape)
        return d


@dataclass(frozen=True)
class DesignPoint:
    design: str
    params: tuple[tuple[str, Any], ...]  # sorted (key, value): hashable and ordered

    @property
    def label(self) -> str:
        if not self.params:
            return self.design
        return self.design + "[" + ",".join(f"{k}={v}" for k, v in self.params) + "]"


# --------------------------------------------------------------------------------------- parsing

_SECTIONS = {"mapper": MapperSettings, "resilience": FaultSettings}


def config_from_dict(data: dict[str, Any], source: str | None = None) -> SweepConfig:
    """Build a config from a YAML mapping; unknown keys and wrong types name their field."""
    if not isinstance(data, dict):
        raise InputError("an experiment must be a YAML mapping", file=source)
    known = {f.name for f in dataclasses.fields(SweepConfig)} - {"source"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise InputError(f"unknown key (known: {', '.join(sorted(known))})",
                             file=source, field=str(key))
        if key in _SECTIONS:
            kwargs[key] = _section(_SECTIONS[key], value, key, source)
        elif key == "models":
            kwargs[key] = [_model(m, f"models[{i}]", source)
                           for i, m in enumerate(_list(value, key, source))]
        elif key == "designs":
            kwargs[key] = [str(d) for d in _list(value, key, source)]
        elif key == "variants":
            kwargs[key] = [_mapping(v or {}, f"variants[{i}]", source)
                           for i, v in enumerate(_list(value, key, source))]
        elif key == "grid":
            grid = _mapping(value or {}, key, source)
            kwargs[key] = {k: _list(v, f"grid.{k}", source) for k, v in grid.items()}
        else:
            kwargs[key] = value
    return SweepConfig(**kwargs, source=source)


def _list(value: Any, fld: str, source: str | None) -> list[Any]:
    if isinstance(value, (str, int, float, dict)):
        return [value]
    if not isinstance(value, list):
        raise InputError("expected a list", file=source, field=fld)
    return value


def _mapping(value: Any, fld: str, source: str | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError("expected a mapping of key: value", file=source, field=fld)
    return {str(k): v for k, v in value.items()}


def _section(cls: type, value: Any, fld: str, source: str | None) -> Any:
    value = _mapping(value or {}, fld, source)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in value:
        if key not in names:
            raise InputError(f"unknown key (known: {', '.join(sorted(names))})",
                             file=source, field=f"{fld}.{key}")
    return cls(**value)


def _model(value: Any, fld: str, source: str | None) -> ModelSpec:
    if isinstance(value, str):
        return ModelSpec(value)
    value = _mapping(value, fld, source)
    if "name" not in value:
        raise InputError("a model needs a name", file=source, field=f"{fld}.name")
    shape = value.pop("input", None)
    known = {"name", "options", "checkpoint", "dataset", "label"}
    for key in value:
        if key not in known:
            raise InputError(f"unknown key (known: input, {', '.join(sorted(known))})",
                             file=source, field=f"{fld}.{key}")
    spec = ModelSpec(**value)
    if shape is not None:
        spec.input_shape = check.shape(shape, f"{fld}.input", file=source)
    return spec


def read_config(path: str | Path) -> SweepConfig:
    """Read an experiment YAML (no validation yet: flags may still override fields)."""
    path = Path(path)
    data = read_yaml(path)
    with check.parsing(path, "experiment"):
        config = config_from_dict(data or {}, source=str(path))
    if "name" not in (data or {}):
        config.name = path.stem
    return config


def write_config(config: SweepConfig, path: str | Path) -> None:
    check.write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False), field="output")


# ------------------------------------------------------------------------------------ validation

def validate(config: SweepConfig) -> list[DesignPoint]:
    """Check every field against the real designs and zoo; return the design points to sweep.

    Raises :class:`InputError` naming the config file and the field; nothing is written except a
    probe file in the output directory (removed again) to prove it is writable.
    """
    with check.parsing(config.source or "experiment", "experiment"):
        return _validate(config)


def _validate(config: SweepConfig) -> list[DesignPoint]:
    src = config.source
    _check_scalars(config)
    binary = _BACKEND_BINARY.get(config.backend)
    if binary and shutil.which(binary) is None:
        raise InputError(f"backend {config.backend} is not available: {binary} is not on PATH "
                         "(see `python -m dse doctor`); use builtin", file=src, field="backend")
    _check_models(config)
    points = _design_points(config)
    check_output_dir(config.output, src)
    return points


def _check_device(name: str, remote: bool, file: str | None) -> None:
    """A known device name; without a remote scheduler also one that exists on this machine."""
    from dse.devices import check_device

    try:
        check_device(name, here=not remote)
    except InputError as exc:
        raise InputError(exc.reason, file=file, field="resilience.device") from None


def _check_scalars(config: SweepConfig) -> None:
    """Every scalar key: a known choice, or a finite number in its range (NaN refused)."""
    src = config.source
    if not isinstance(config.name, str) or not config.name.strip():
        raise InputError(f"must be a non-empty name, got {config.name!r}", file=src, field="name")
    check.path_name(config.name, "name", file=src)
    for fld, value, choices in (("executor", config.executor, EXECUTORS),
                                ("backend", config.backend, BACKENDS),
                                ("mapper.objective", config.mapper.objective, OBJECTIVES),
                                ("mapper.search", config.mapper.search, SEARCHES)):
        check.resolve(value, choices, fld, file=src, what="choice")
    check.positive(config.workers, "workers", file=src, integer=True)
    check.positive(config.mapper.time_limit, "mapper.time_limit", file=src)
    if config.mapper.budget is not None:
        check.positive(config.mapper.budget, "mapper.budget", file=src, integer=True)
    res = config.resilience
    check.non_negative(res.top_k, "resilience.top_k", file=src, integer=True)
    if res.faults is not None:
        check.positive(res.faults, "resilience.faults", file=src, integer=True)
    check.positive(res.images, "resilience.images", file=src, integer=True)
    check.fraction(res.margin, "resilience.margin", file=src)
    check.fraction(res.confidence, "resilience.confidence", file=src)
    check.positive(res.fit_per_mbit, "resilience.fit_per_mbit", file=src)
    _check_device(res.device, remote=config.scheduler is not None, file=src)
    check.positive(res.max_faults, "resilience.max_faults", file=src, integer=True)
    check.positive(res.mapping_max_faults, "resilience.mapping_max_faults", file=src,
                   integer=True)
    check.positive(res.clock_ghz, "resilience.clock_ghz", file=src)
    check.resolve(res.format, WORD_FORMATS, "resilience.format", file=src, what="word format")
    check.positive(res.front, "resilience.front", file=src, integer=True)
    _check_front(config)
    check.non_negative(res.floor, "resilience.floor", file=src)
    if res.precision is not None:
        check.fraction(res.precision, "resilience.precision", file=src)
    check.non_negative(config.seed, "seed", file=src, integer=True)
    if config.dask_local is not None:
        check.positive(config.dask_local, "dask_local", file=src, integer=True)
    for key, values in config.grid.items():
        if not values or any(v is None or v == "" for v in values):
            raise InputError(f"empty value in {values!r}", file=src, field=f"grid.{key}")


def _check_front(config: SweepConfig) -> None:
    """A resilience-aware objective needs what calibrates its estimate: adaptive campaigns."""
    m, src = config.mapper, config.source
    check.non_negative(m.edp_slack, "mapper.edp_slack", file=src)
    if m.sdc_fit_max is not None:
        check.positive(m.sdc_fit_max, "mapper.sdc_fit_max", file=src)
    if not m.resilience_aware:
        return
    res = config.resilience
    if not (res.enabled and res.adaptive):
        raise InputError(f"objective {m.objective} searches with the SDC-FIT estimate, which is "
                         "calibrated on each layer's adaptive campaign: it needs the resilience "
                         "side on and adaptive sampling (no --no-resilience, no "
                         "--faults-per-class)", file=src, field="mapper.objective")
    if config.backend != "builtin":
        raise InputError(f"objective {m.objective} needs the builtin mapper (backend "
                         f"{config.backend} searches by energy and delay only)", file=src,
                         field="mapper.objective")


def _check_models(config: SweepConfig) -> None:
    """Files and pairing only: names are checked when the models are built (zoo's own errors,
    with close-match hints, re-raised naming the config field)."""
    if not config.models:
        raise InputError("no models to sweep", file=config.source, field="models")
    for i, spec in enumerate(config.models):
        for fld, path in (("checkpoint", spec.checkpoint), ("dataset", spec.dataset)):
            if path and not Path(path).is_file():
                raise InputError(f"no such file {path!r}", file=config.source,
                                 field=f"models[{i}].{fld}")
        if bool(spec.checkpoint) != bool(spec.dataset):
            raise InputError("the resilience side needs both checkpoint and dataset",
                             file=config.source, field=f"models[{i}].dataset")


def _design_points(config: SweepConfig) -> list[DesignPoint]:
    """Expand designs x variants, building each variant once to prove its values are valid."""
    from dse.arch import list_designs, load_arch, make_variant

    available = list(list_designs())
    designs: list[str] = []
    for i, name in enumerate(config.designs):
        check.path_name(name, f"designs[{i}]", file=config.source)
        if name == "all":
            designs.extend(d for d in available if d not in designs)
        elif name in available or Path(name).exists():
            designs.append(name)
        else:
            raise InputError(f"unknown design {name!r} (known: {', '.join(available)}, all)",
                             file=config.source, field=f"designs[{i}]")
    if not designs:
        raise InputError("no designs to sweep", file=config.source, field="designs")
    points: list[DesignPoint] = []
    variants = config.variant_params()
    for design in designs:
        arch = load_arch(design)
        for i, params in enumerate(variants):
            if params:
                try:
                    make_variant(arch, **params)
                except InputError as exc:
                    fld = f"variants[{i}]" + (f".{exc.field}" if exc.field else "")
                    raise InputError(exc.reason, file=config.source, field=fld) from None
                except (TypeError, ValueError, KeyError) as exc:
                    raise InputError(f"bad variant {params!r} for {design}: {exc}",
                                     file=config.source, field=f"variants[{i}]") from None
            point = DesignPoint(design, tuple(sorted(params.items())))
            if point not in points:
                points.append(point)
    return points


def check_output_dir(output: str | Path, src: str | None = None) -> None:
    """Create the output directory and prove it is writable (probe file, removed again)."""
    out = check.output_dir(output, "output", file=src)
    check.output_file(out / "sweep.sqlite", "output", file=src)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"output directory is not writable: {exc.strerror or exc}",
                         file=src, field="output") from None
