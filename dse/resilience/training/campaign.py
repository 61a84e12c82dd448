"""Training fault campaigns: sample experiments, run them under each optimizer and mitigation,
write one CSV row per experiment as it finishes, and resume after a kill.

Files in the campaign directory:

- ``config.json``: the settings (a different campaign in the same directory is refused);
- ``experiments.csv``: the sampled faults (seed 002's columns, results empty), written first;
- ``golden/<optimizer>-<mitigation>.pt``: golden runs with their checkpoints (reused on resume);
- ``results.csv``: one row per finished (experiment, optimizer, mitigation), appended, flushed and
  synced — an experiment counts as done exactly when its row is complete, so a kill loses only
  the experiments in flight and repeats none (a half-written last line is cut on resume);
- ``curves.jsonl``: each finished experiment's loss and test-accuracy curve (for the plots).

Sampling is seed 002's: uniform over (epoch, step) such that ``steps_after`` steps fit before the
golden run ends, layer, pass, operand, fault model, run length and element; or stratified: the same
number of experiments per value of ``pass``, ``layer`` or ``fmodel``. The sampling unit of every
rate is the experiment.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dse.errors import InputError
from dse.resilience.stats import wilson, z_value
from dse.resilience.training.fault import (
    BIT_MODELS,
    EXTENTS,
    FAULT_FORMATS,
    FAULT_MODELS,
    OPERANDS,
    PASSES,
    TrainFault,
    layer_module,
    target_layers,
    weight_of,
)
from dse.resilience.training.outcome import (
    GROUPS,
    OUTCOMES,
    TrainingOutcomeSpec,
    classify,
)
from dse.resilience.training.run import (
    CHECKPOINT_EVERY,
    Curve,
    Experiment,
    Golden,
    golden_run,
    run_experiment,
    seed_curve,
)
from dse.resilience.training.trainer import Data, Trainer, TrainSetup, load_data

SEED_COLUMNS = ("model", "stage", "fmodel", "target_worker", "target_layer", "target_epoch",
                "target_step", "learning_rate", "seed", "inj_pos", "inj_values")
FAULT_COLUMNS = ("experiment", "dataset", "optimizer", "mitigation", "batch_size", "epochs",
                 "precision", "eval_every", "steps_after", "pass", "operand", "fmt", "bits",
                 "extent", "fault_seed", "golden_seeds")
RESULT_COLUMNS = ("outcome", "final_test_acc", "golden_test_acc", "acc_drop", "max_drop", "slope",
                  "tol",
                  "final_loss", "orig_values", "inject_step", "end_step", "nonfinite_step",
                  "exact_stop", "steps_run", "detections", "rollbacks", "curve_sha", "wall_s")
COLUMNS = SEED_COLUMNS + FAULT_COLUMNS + RESULT_COLUMNS
STAGES = {"forward": "fwrd_inject", "backward": "bkwd_inject", "optimizer": "optm_inject"}
STRATA = ("pass", "layer", "fmodel")
SAMPLED_MODELS = tuple(m for m in FAULT_MODELS if m != "value")  # 'value' needs a given value
# The default plan: a fault strikes at a uniform step of a 40-epoch training (840 steps of the
# digits CNN) and the run is watched for 50 steps after it (module doc of dse.cli.train_inject)
DEFAULT_EPOCHS = 40


@dataclass(frozen=True)
class Plan:
    """What to sample: passes, fault models, formats and run lengths to draw from."""

    experiments: int = 200
    passes: tuple[str, ...] = ("forward", "backward", "optimizer")
    fmodels: tuple[str, ...] = ("bitflip", "random", "copy", "zero")
    fmt: str = "fp32"
    extents: tuple[int, ...] = (1, 16, 64)
    steps_after: int | None = 50
    stratify: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name, given, known in (("--pass", self.passes, PASSES),
                                   ("--fault-model", self.fmodels, SAMPLED_MODELS),
                                   ("--format", (self.fmt,), FAULT_FORMATS),
                                   ("--extent", self.extents, EXTENTS)):
            bad = [v for v in given if v not in known]
            if bad or not given:
                what = {"--pass": "pass", "--fault-model": "fault model", "--format": "format",
                        "--extent": "extent"}[name]
                raise InputError(f"unknown {what} {bad[0] if bad else None!r}; expected "
                                 f"{' '.join(map(str, known))}", field=name)


def targets(setup: TrainSetup, data: Data) -> dict[tuple[str, str], tuple[int, ...]]:
    """Shape of every (layer, operand) a fault can hit, from one probe step (operands that carry
    no value — the input gradient of a layer whose input needs none — are left out)."""
    trainer = Trainer(setup, data)
    trainer.steps_per_epoch  # noqa: B018 -- InputError when the batch exceeds the data
    shapes: dict[tuple[str, str], tuple[int, ...]] = {}
    handles = []
    for name in target_layers(trainer.model):
        module = layer_module(trainer.model, name)

        def fwd(mod, inputs, output, name=name):
            shapes[(name, "output")] = shapes[(name, "grad_out")] = tuple(output.shape)
            shapes[(name, "input")] = tuple(inputs[0].shape)
            if inputs[0].requires_grad:
                shapes[(name, "grad_in")] = tuple(inputs[0].shape)
        handles.append(module.register_forward_hook(fwd))
        w = tuple(weight_of(module, name).shape)
        for op in ("weight", "grad_wt", "state"):
            shapes[(name, op)] = w
    trainer.forward_backward(0)
    for h in handles:
        h.remove()
    return shapes


def check_against(fault: TrainFault, setup: TrainSetup, data: Data, shapes: dict) -> None:
    """InputError when ``fault`` does not fit ``setup``'s run and model (checked before any
    training): epoch, step, layer, operand and position."""
    spe = len(data.x) // setup.batch_size
    if fault.epoch >= setup.epochs:
        raise InputError(f"epoch {fault.epoch} is past the run's {setup.epochs} epochs",
                         field="target_epoch")
    if fault.step >= spe:
        raise InputError(f"step {fault.step} is past the end of an epoch ({spe} steps of batch "
                         f"{setup.batch_size})", field="target_step")
    layers = sorted({n for n, _ in shapes})
    if fault.layer not in layers:
        raise InputError(f"unknown layer {fault.layer!r} in {setup.model}; layers: "
                         f"{', '.join(layers)}", field="target_layer")
    shape = shapes.get((fault.layer, fault.operand))
    if shape is None:
        raise InputError(f"{fault.layer!r} has no {fault.operand}", field="operand")
    if len(fault.pos) != len(shape) or any(not 0 <= i < s for i, s in zip(fault.pos, shape,
                                                                          strict=True)):
        raise InputError(f"position {list(fault.pos)} is outside {fault.layer}'s "
                         f"{fault.operand} of shape {list(shape)}", field="inj_pos")


def sample(plan: Plan, shapes: dict, steps_per_epoch: int, total_steps: int) -> list[TrainFault]:
    """The campaign's faults (module doc), drawn from ``plan.seed``."""
    rng = np.random.default_rng(plan.seed)
    layers = list(dict.fromkeys(name for name, _ in shapes))
    last = total_steps - (plan.steps_after or 0)
    if last < 2:
        raise InputError(f"--steps-after {plan.steps_after} leaves no step to inject at in a "
                         f"{total_steps}-step run; train more --epochs", field="--steps-after")
    fixed: list[dict] = [{}]
    if plan.stratify:
        values = {"pass": plan.passes, "layer": layers, "fmodel": plan.fmodels}[plan.stratify]
        fixed = [{plan.stratify: v} for v in values]
    per = -(-plan.experiments // len(fixed))
    faults = []
    for stratum in fixed:
        for _ in range(per if plan.stratify else plan.experiments):
            faults.append(_draw(rng, plan, shapes, layers, steps_per_epoch, last, stratum))
    return faults


def _draw(rng, plan: Plan, shapes: dict, layers: list[str], spe: int, last: int,
          stratum: dict) -> TrainFault:
    pass_ = stratum.get("pass") or str(rng.choice(plan.passes))
    layer = stratum.get("layer") or str(rng.choice(layers))
    operand = str(rng.choice([op for op in OPERANDS[pass_] if (layer, op) in shapes]))
    fmodel = stratum.get("fmodel") or str(rng.choice(plan.fmodels))
    g = int(rng.integers(1 if pass_ == "optimizer" else 0, last))
    shape = shapes[(layer, operand)]
    extent = min(int(rng.choice(plan.extents)), int(np.prod(shape)))
    start = int(rng.integers(int(np.prod(shape)) - extent + 1))  # the run stays in the tensor
    pos = tuple(int(i) for i in np.unravel_index(start, shape))
    width = 16 if plan.fmt in ("bf16", "fp16") else 32
    bits = (int(rng.integers(width)),) if fmodel in BIT_MODELS else ()
    extent = extent if extent in EXTENTS else 1
    return TrainFault(g // spe, g % spe, layer, pass_, operand, fmodel, pos, plan.fmt, bits,
                      extent, seed=int(rng.integers(2**31)))


def _join(values) -> str:
    return ";".join(repr(float(v)) if isinstance(v, float) else str(v) for v in values)


def fault_row(i: int, fault: TrainFault, setup: TrainSetup, steps_after: int | None,
              golden_seeds: int = 2) -> dict:
    """The seed-002 row of an experiment plus what replaying it needs (results empty)."""
    return {"model": setup.model, "stage": STAGES[fault.pass_], "fmodel": fault.fmodel,
            "target_worker": 0, "target_layer": fault.layer, "target_epoch": fault.epoch,
            "target_step": fault.step, "learning_rate": repr(setup.lr), "seed": setup.seed,
            "inj_pos": _join(fault.pos), "inj_values": _join(fault.values), "experiment": i,
            "dataset": setup.dataset, "optimizer": setup.optimizer,
            "mitigation": setup.mitigation, "batch_size": setup.batch_size,
            "epochs": setup.epochs, "precision": setup.precision, "eval_every": setup.eval_every,
            "steps_after": "" if steps_after is None else steps_after, "pass": fault.pass_,
            "operand": fault.operand, "fmt": fault.fmt, "bits": _join(fault.bits),
            "extent": fault.extent, "fault_seed": fault.seed, "golden_seeds": golden_seeds}


def _ints(text: str, field: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(";") if v != "")
    except ValueError:
        raise InputError(f"malformed integer list {text!r}", field=field) from None


def _num(row: dict, key: str, kind=int):
    try:
        return kind(row[key])
    except (KeyError, ValueError, TypeError):
        raise InputError(f"missing or malformed value {row.get(key)!r}", field=key) from None


def from_row(row: dict) -> tuple[TrainSetup, TrainFault, int | None]:
    """(setup, fault, steps_after) of a CSV row; InputError naming the field when malformed."""
    stage = {v: k for k, v in STAGES.items()}.get(row.get("stage", ""))
    if stage is None:
        raise InputError(f"unknown stage {row.get('stage')!r}; expected one of "
                         f"{list(STAGES.values())}", field="stage")
    setup = TrainSetup(model=row.get("model", ""), dataset=row.get("dataset", "digits"),
                       optimizer=row.get("optimizer", ""), lr=_num(row, "learning_rate", float),
                       batch_size=_num(row, "batch_size"), epochs=_num(row, "epochs"),
                       seed=_num(row, "seed"), precision=row.get("precision", "fp32"),
                       eval_every=_num(row, "eval_every"),
                       mitigation=row.get("mitigation", "none"))
    values = ()
    if row.get("fmodel") == "value":
        try:
            values = tuple(float(v) for v in row.get("inj_values", "").split(";") if v)
        except ValueError:
            raise InputError("malformed inj_values", field="inj_values") from None
    fault = TrainFault(_num(row, "target_epoch"), _num(row, "target_step"),
                       row.get("target_layer", ""), row.get("pass") or stage,
                       row.get("operand", ""), row.get("fmodel", ""),
                       _ints(row.get("inj_pos", ""), "inj_pos"), row.get("fmt", "fp32"),
                       _ints(row.get("bits", ""), "bits"), _num(row, "extent"), values,
                       _num(row, "fault_seed"))
    after = row.get("steps_after", "")
    return setup, fault, (None if after in ("", None) else _num(row, "steps_after"))


def curve_sha(exp: Experiment) -> str:
    """A digest of the experiment's per-step losses and test accuracies from the injection on
    (bit-exact replay check; independent of the checkpoint it restarted from)."""
    h = hashlib.blake2b(exp.curve.loss[exp.inject - exp.curve.start:].tobytes(), digest_size=8)
    h.update(repr(sorted(exp.curve.test_acc.items())).encode())
    return h.hexdigest()


def result_row(base: dict, exp: Experiment, golden: Golden, spec: TrainingOutcomeSpec) -> dict:
    v = classify(exp, golden, spec)
    c = exp.curve
    ran = c.loss[~np.isnan(c.loss)]
    return {**base, "inj_values": _join(exp.written), "outcome": v.outcome,
            "final_test_acc": _f(v.final_acc), "golden_test_acc": _f(v.golden_acc),
            "acc_drop": _f(v.drop), "max_drop": _f(v.max_drop), "slope": _f(v.slope),
            "tol": _f(v.tol),
            "final_loss": _f(ran[-1] if len(ran) else float("nan")),
            "orig_values": _join(exp.original), "inject_step": exp.inject, "end_step": exp.end,
            "nonfinite_step": _opt(c.nonfinite), "exact_stop": _opt(c.exact_stop),
            "steps_run": exp.steps_run, "detections": _new_detections(exp, golden),
            "rollbacks": c.rollbacks, "curve_sha": curve_sha(exp), "wall_s": f"{exp.wall_s:.3f}"}


def _new_detections(exp: Experiment, golden: Golden) -> int:
    """The mitigation's detections from the injection on at steps where the fault-free golden
    run had none: what the fault set off, not the mitigation's own false alarms."""
    alarms = set(golden.curve.detections)
    return len([d for d in exp.curve.detections if d >= exp.inject and d not in alarms])


def _f(x: float) -> str:
    return repr(float(x))


def _opt(x: int | None) -> str:
    return "" if x is None else str(x)


# ---------------------------------------------------------------------------------- running


def _golden_key(setup: TrainSetup, spread_seeds: int, checkpoint_every: int | None) -> dict:
    return {**setup.as_dict(), "spread_seeds": spread_seeds,
            "checkpoint_every": checkpoint_every or CHECKPOINT_EVERY}


def _saved_golden(path: Path, key: dict, any_interval: bool) -> Golden | None:
    if not path.exists():
        return None
    saved = torch.load(path, weights_only=False)
    found = dict(saved.get("key", {}))
    if any_interval:
        found["checkpoint_every"] = key["checkpoint_every"]
    return saved["golden"] if found == key else None


def _save_golden(path: Path, key: dict, golden: Golden) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"key": key, "golden": golden}, tmp)
    os.replace(tmp, path)


def golden_for(setup: TrainSetup, data: Data, folder: Path, spread_seeds: int,
               checkpoint_every: int | None = CHECKPOINT_EVERY) -> Golden:
    """The golden run of ``setup``, loaded from ``folder`` when an identical one is there
    (``checkpoint_every=None``: with any checkpoint interval — results do not depend on it)."""
    path = folder / f"{setup.optimizer}-{setup.mitigation}.pt"
    key = _golden_key(setup, spread_seeds, checkpoint_every)
    golden = _saved_golden(path, key, checkpoint_every is None)
    if golden is None:
        golden = golden_run(setup, data, spread_seeds, key["checkpoint_every"])
        _save_golden(path, key, golden)
    return golden


def _golden_task(arg: tuple[TrainSetup, int, int]) -> Golden | Curve:
    """A worker's share of the golden runs: the golden run itself (k = 0) or seed k's curve."""
    setup, k, checkpoint_every = arg
    if ("data", setup.dataset) not in _CACHE:
        _CACHE[("data", setup.dataset)] = load_data(setup.dataset)
    data = _CACHE[("data", setup.dataset)]
    return golden_run(setup, data, 0, checkpoint_every) if k == 0 else seed_curve(setup, data, k)


def goldens_for(setups: Sequence[TrainSetup], data: Data, folder: Path, spread_seeds: int,
                checkpoint_every: int = CHECKPOINT_EVERY, **where) -> dict[tuple[str, str], Golden]:
    """:func:`golden_for` of every setup, the missing golden runs and seed curves computed in
    parallel where the experiments run (``where``: as for :func:`run_campaign`)."""
    out: dict[tuple[str, str], Golden] = {}
    todo = []
    for s in setups:
        path = folder / f"{s.optimizer}-{s.mitigation}.pt"
        saved = _saved_golden(path, _golden_key(s, spread_seeds, checkpoint_every), False)
        if saved is not None:
            out[(s.optimizer, s.mitigation)] = saved
        else:
            todo += [(s, k, checkpoint_every) for k in range(spread_seeds + 1)]
    _CACHE[("data", data_name_of(setups))] = data
    parts: dict[tuple[str, str], dict[int, Golden | Curve]] = {}
    for (s, k, _), result in _map(_golden_task, todo, **where):
        parts.setdefault((s.optimizer, s.mitigation), {})[k] = result
    for s in setups:
        got = parts.get((s.optimizer, s.mitigation))
        if got is None:
            continue
        golden = got[0]
        golden.seed_test_acc = [got[k].test_acc for k in range(1, spread_seeds + 1)]
        golden.seed_loss = [got[k].loss for k in range(1, spread_seeds + 1)]
        _save_golden(folder / f"{s.optimizer}-{s.mitigation}.pt",
                     _golden_key(s, spread_seeds, checkpoint_every), golden)
        out[(s.optimizer, s.mitigation)] = golden
    return out


def data_name_of(setups: Sequence[TrainSetup]) -> str:
    return setups[0].dataset if setups else "digits"


def run_one(golden: Golden, data: Data, base: dict, spec: TrainingOutcomeSpec,
            early_stop: bool = True) -> tuple[dict, dict]:
    """Run the experiment of row ``base``; its result row and its curve record."""
    _, fault, steps_after = from_row(base)
    exp = run_experiment(golden, data, fault, steps_after=steps_after, early_stop=early_stop)
    row = result_row(base, exp, golden, spec)
    c = exp.curve
    record = {"key": row_key(row), "outcome": row["outcome"], "start": c.start,
              "inject": exp.inject, "nonfinite": c.nonfinite,
              "loss": [None if np.isnan(x) else float(x) for x in c.loss],
              "test_acc": {str(k): v for k, v in sorted(c.test_acc.items())}}
    return row, record


def row_key(row: dict) -> str:
    return f"{row['experiment']}/{row['optimizer']}/{row['mitigation']}"


def _repair(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def read_rows(path: Path) -> list[dict]:
    """Rows of a results or experiments CSV (a half-written last line is cut first)."""
    if not path.exists():
        return []
    _repair(path)
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


_CACHE: dict = {}  # a worker's data sets and golden runs, loaded once per process


def _task(arg: tuple[dict, str, dict]) -> tuple[dict, dict]:
    """One experiment in a worker (pool process or Dask worker): row, golden-run file, outcome
    spec. The data set and the golden run are loaded at a worker's first task and kept."""
    base, golden_path, spec = arg
    if golden_path not in _CACHE:
        _CACHE[golden_path] = torch.load(golden_path, weights_only=False)["golden"]
    dataset = base["dataset"]
    if ("data", dataset) not in _CACHE:
        _CACHE[("data", dataset)] = load_data(dataset)
    return run_one(_CACHE[golden_path], _CACHE[("data", dataset)], base,
                   TrainingOutcomeSpec(**spec))


def run_campaign(bases: Sequence[dict], goldens: dict[tuple[str, str], Golden], data: Data,
                 out: Path, spec: TrainingOutcomeSpec, *, workers: int = 1,
                 executor: str = "process", scheduler: str | None = None,
                 dask_local: int | None = None, progress: bool = False) -> list[dict]:
    """Run every row of ``bases`` not yet in ``out/results.csv`` (module doc); all result rows in
    the order of ``bases``. ``executor`` / ``scheduler`` / ``dask_local`` choose where, as for
    ``dse sweep`` (:func:`dse.sweep.executors.make_executor`); the driver alone writes."""
    results, curves = out / "results.csv", out / "curves.jsonl"
    done = {row_key(r): r for r in read_rows(results) if r.get("curve_sha")}
    known = {row_key(b) for b in bases}
    stray = [k for k in done if k not in known]
    if stray:
        raise InputError(f"results row {stray[0]} is not in this campaign; use another --out",
                         file=results, field="experiment")
    pending = [b for b in bases if row_key(b) not in done]
    if curves.exists():
        _repair(curves)
    new = not results.exists() or results.stat().st_size == 0
    paths = {k: str((out / "golden" / f"{k[0]}-{k[1]}.pt").resolve()) for k in goldens}
    for key, path in paths.items():  # in this process the golden runs are in memory already
        _CACHE[path] = goldens[key]
    _CACHE[("data", bases[0]["dataset"] if bases else "digits")] = data
    with open(results, "a", newline="") as fh, open(curves, "a") as cfh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        bar = tqdm(total=len(bases), initial=len(done), disable=not progress, unit="exp")
        tasks = [(b, paths[(b["optimizer"], b["mitigation"])], spec.as_dict()) for b in pending]
        for _, (row, record) in _map(_task, tasks, executor, workers, scheduler, dask_local):
            cfh.write(json.dumps(record) + "\n")
            cfh.flush()
            writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())
            done[row_key(row)] = row
            bar.update(1)
        bar.close()
    return [done[row_key(b)] for b in bases]


def _map(fn, tasks: list, executor: str = "process", workers: int = 1,
         scheduler: str | None = None, dask_local: int | None = None) -> Iterator[tuple]:
    """(task, fn(task)) for every task as it finishes (any order): here, one at a time, when
    one local worker is asked for; else on the executor :func:`dse.sweep.executors.make_executor`
    makes."""
    from dse.sweep.executors import make_executor

    if not tasks:
        return
    local = min(workers, len(tasks))
    if not (scheduler or dask_local or executor == "dask") and (local <= 1
                                                                or executor == "inprocess"):
        for t in tasks:  # no pool to start
            yield t, fn(t)
        return
    ex = make_executor(executor, workers=local, scheduler=scheduler, dask_local=dask_local)
    try:
        futures = {ex.submit(fn, t): i for i, t in enumerate(tasks)}
        while futures:
            for fut in ex.wait_first(list(futures)):
                yield tasks[futures.pop(fut)], fut.result()
    finally:
        ex.close()


# ---------------------------------------------------------------------------------- summary


def summarize(rows: Sequence[dict], confidence: float = 0.95,
              by: str | None = None) -> dict[str, dict]:
    """Per (optimizer, mitigation[, stratum]): experiments, count and rate with a Wilson interval
    of every outcome and outcome group."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        key = f"{r['optimizer']}/{r['mitigation']}" + (f"/{r[by]}" if by else "")
        groups.setdefault(key, []).append(r)
    out = TrainingSummary()
    for key, members in groups.items():
        counts = {o: sum(r["outcome"] == o for r in members) for o in OUTCOMES}
        block = {"experiments": len(members),  # one experiment = one sample: plain Wilson
                 **{o: _rate_doc(counts[o], len(members), confidence) for o in OUTCOMES}}
        for g, names in GROUPS.items():
            block[g] = _rate_doc(sum(counts[o] for o in names), len(members), confidence)
        block["detected"] = sum(int(r["detections"] or 0) > 0 for r in members)
        block["acc_change"] = _mean_doc([-float(r["acc_drop"]) for r in members], confidence)
        block["slope"] = _mean_doc([float(r["slope"]) for r in members], confidence)
        out[key] = block
    return out


class TrainingSummary(dict):
    """What :func:`summarize` returns (``optimizer/mitigation[/stratum]`` -> block, the JSON
    form); ``to_frame()``: one row per key with, per outcome and outcome group, the experiments
    in it and its share with a Wilson interval (the experiment is the sampling unit)."""

    def to_frame(self):
        from dse.frames import frame

        rows = []
        for key, block in self.items():
            row = {"key": key, "experiments": block["experiments"]}
            for name in (*OUTCOMES, *GROUPS):
                d = block[name]
                row |= {f"{name}_experiments": d["count"], f"{name}_per_experiment": d["rate"],
                        f"{name}_per_experiment_lo": d["ci"][0],
                        f"{name}_per_experiment_hi": d["ci"][1]}
            rows.append(row)
        return frame(rows)


def _mean_doc(values: Sequence[float], confidence: float) -> dict:
    """Mean of the finite ``values`` (one per experiment) with a normal-approximation interval
    (the experiment is the unit; NaN for fewer than two)."""
    x = np.array([v for v in values if np.isfinite(v)], dtype=float)
    if len(x) < 2:
        return {"n": len(x), "mean": float(x.mean()) if len(x) else float("nan"),
                "ci": [float("nan"), float("nan")]}
    half = z_value(confidence) * float(x.std(ddof=1)) / np.sqrt(len(x))
    return {"n": len(x), "mean": float(x.mean()), "ci": [x.mean() - half, x.mean() + half]}


SEVERITY = {o: rank for rank, names in enumerate(GROUPS.values()) for o in names}


def head_to_head(rows: Sequence[dict], confidence: float = 0.95) -> dict[str, dict]:
    """Every other optimizer against the first one, per mitigation, on the same faults: the
    fraction of experiments whose outcome group (ok < degraded < diverged) is worse / better under
    it (Wilson intervals), and the mean difference of the accuracy the fault cost (its drop below
    its own golden run minus the first optimizer's, fraction of the test set; > 0: the fault
    costs more under it) over the experiments finite under both."""
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    by = {(r["optimizer"], r["mitigation"], r["experiment"]): r for r in rows}
    out = {}
    for mit in dict.fromkeys(r["mitigation"] for r in rows):
        for other in optimizers[1:]:
            pairs = [(by[(optimizers[0], mit, e)], r) for (o, m, e), r in by.items()
                     if o == other and m == mit and (optimizers[0], mit, e) in by]
            if not pairs:
                continue
            worse = sum(SEVERITY[b["outcome"]] > SEVERITY[a["outcome"]] for a, b in pairs)
            better = sum(SEVERITY[b["outcome"]] < SEVERITY[a["outcome"]] for a, b in pairs)
            diffs = [float(b["acc_drop"]) - float(a["acc_drop"]) for a, b in pairs]
            out[f"{other} vs {optimizers[0]}/{mit}"] = {
                "experiments": len(pairs), "worse": _rate_doc(worse, len(pairs), confidence),
                "better": _rate_doc(better, len(pairs), confidence),
                "drop_difference": _mean_doc(diffs, confidence)}
    return out


def write_rows(path: Path, rows: Sequence[dict]) -> None:
    """Write ``rows`` with every column (atomically)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_curves(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def table(summary: dict[str, dict], confidence: float = 0.95) -> str:
    """Per-outcome table: count, rate and Wilson interval for every optimizer/mitigation."""
    pct = f"{round(confidence * 100)}% CI"
    lines = []
    for key, block in summary.items():
        n = block["experiments"]
        lines.append(f"{key}: {n} experiments (rate = fraction of experiments; {pct})")
        lines.append(f"  {'outcome':<16} {'count':>5} {'rate':>7}  {pct}")
        for name in (*OUTCOMES, *GROUPS):
            b = block[name]
            if b["count"] or name in GROUPS:
                lo, hi = b["ci"]
                lines.append(f"  {name:<16} {b['count']:>5} {b['rate']:>7.3f}  "
                             f"[{lo:.3f}, {hi:.3f}]")
        for name, what in (("acc_change", "final test accuracy - golden (fraction)"),
                           ("slope", "degradation slope (accuracy gap per 100 steps)")):
            m = block[name]
            lines.append(f"  mean {what}: {m['mean']:+.4f} [{m['ci'][0]:+.4f}, "
                         f"{m['ci'][1]:+.4f}] over {m['n']} finite experiments")
    return "\n".join(lines)


def mitigation_report(rows: Sequence[dict], goldens: dict[tuple[str, str], Golden],
                      confidence: float = 0.95) -> dict[str, dict]:
    """Per optimizer and mitigation, against the same experiments without it: detection rate
    (experiments that are not Masked without the mitigation, in which it fired at or after the
    injection at a step where the golden run did not), benign detections (the same, although the
    fault is Masked without it), false-positive
    rate (detections per step of the fault-free golden run), the outcome shift, and the time
    overhead (golden-run wall time per step with / without, minus 1)."""
    by = {(r["optimizer"], r["mitigation"], r["experiment"]): r for r in rows}
    out = {}
    for (opt, mit), golden in goldens.items():
        base_golden = goldens.get((opt, "none"))
        if mit == "none" or base_golden is None:
            continue
        pairs = [(by[(opt, "none", e)], r) for (o, m, e), r in by.items()
                 if o == opt and m == mit and (opt, "none", e) in by]
        harmful = [(a, b) for a, b in pairs if a["outcome"] != "Masked"]
        benign = [(a, b) for a, b in pairs if a["outcome"] == "Masked"]
        fired = [int(b["detections"] or 0) > 0 for _, b in harmful]
        fp = len(golden.curve.detections)
        shift = {o: [sum(a["outcome"] == o for a, _ in pairs),
                     sum(b["outcome"] == o for _, b in pairs)] for o in OUTCOMES}
        out[f"{opt}/{mit}"] = {
            "experiments": len(pairs),
            "detection": _rate_doc(sum(fired), len(harmful), confidence),
            "benign_detection": _rate_doc(sum(int(b["detections"] or 0) > 0 for _, b in benign),
                                          len(benign), confidence),
            "false_positive_per_step": _rate_doc(fp, golden.total_steps, confidence),
            "outcome_without_with": {o: v for o, v in shift.items() if any(v)},
            "time_overhead": golden.wall_s / base_golden.wall_s - 1}
    return out


def _rate_doc(k: int, n: int, confidence: float) -> dict:
    """A count of ``n`` experiments with its rate and Wilson interval (experiment = unit)."""
    return {"count": k, "n": n, "rate": k / n if n else float("nan"),
            "ci": list(wilson(k, n, z_value(confidence)))}
