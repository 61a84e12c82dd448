"""``dse train-inject``: faults during training (forward, backward, optimizer state) and the outcome
of the whole run, per optimizer and mitigation.

Writes into ``--out``: ``config.json``, ``experiments.csv`` (the sampled faults, seed 002's
columns), ``golden/`` (golden runs with their checkpoints), ``results.csv`` (one row per
experiment: the fault, its outcome and a curve summary; resumable: run the same command again after
a kill), ``curves.jsonl``, ``summary.json``, ``curves.png`` (example curves per outcome against the
golden band) and ``outcomes.png`` (outcome rates per optimizer / mitigation).

``--replay ROW.csv`` re-runs the experiments of a results (or experiments) CSV from their rows and
says whether each reproduces its recorded curve bit for bit. Outcome thresholds: ``--outcome
key=value`` (see docs/resilience.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dse.cli._common import print_json
from dse.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser("train-inject", help="fault injection during training",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="digits_cnn (default) or digits_resnet20")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--optimizer", nargs="+", default=["adam"],
                   help="adam sgd rmsprop adagrad adamw (the same faults under each)")
    p.add_argument("--lr", type=float, help="learning rate (default: per optimizer)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=40,
                   help="length of the golden run (default: 40, 840 steps of digits_cnn)")
    p.add_argument("--precision", default="fp32", help="fp32 or bf16 (CPU autocast)")
    p.add_argument("--experiments", type=int, default=200)
    p.add_argument("--steps-after", type=int, default=50,
                   help="train this many steps after the injection (0: to the end of the run; "
                        "default: 50)")
    p.add_argument("--checkpoint-every", type=int, default=10,
                   help="golden-run checkpoint interval in steps: an experiment re-trains at "
                        "most this many steps before its injection (default: 10)")
    p.add_argument("--pass", dest="passes", nargs="+", default=["forward", "backward",
                                                                 "optimizer"])
    p.add_argument("--fault-model", nargs="+", default=["bitflip", "random", "copy", "zero"],
                   help="bitflip stuck0 stuck1 random copy zero")
    p.add_argument("--format", default="fp32", help="fp32, bf16 or fp16 (bit faults)")
    p.add_argument("--extent", type=int, nargs="+", default=[1, 16, 64],
                   help="contiguous elements per fault: 1, 16 (MAC group), 64 (buffer line)")
    p.add_argument("--layer", nargs="+", help="only these layers (default: every conv / linear)")
    p.add_argument("--stratify", choices=("pass", "layer", "fmodel"),
                   help="the same number of experiments per value of this field")
    p.add_argument("--mitigation", nargs="+", default=["none"],
                   help="none adam-bound adam-bound-rollback guard")
    p.add_argument("--golden-seeds", type=int, default=2,
                   help="extra fault-free seeds that set the outcome tolerance")
    p.add_argument("--outcome", nargs="*", metavar="KEY=VALUE",
                   help="outcome thresholds, e.g. short_term=10 tol_floor=0.02")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes (local pool, or a Dask LocalCluster) (default: 2)")
    p.add_argument("--executor", choices=("process", "inprocess", "dask"), default="process",
                   help="where experiments run, as in `dse sweep` (default: process)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="Dask scheduler to use (its workers must see --out)")
    p.add_argument("--dask-local", type=int, metavar="N", help="start a Dask LocalCluster of N")
    p.add_argument("--seed", type=int, default=0, help="training seed (golden run)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the fault sampling")
    p.add_argument("--replay", help="re-run the rows of this CSV and check them bit for bit")
    p.add_argument("--out", default="train_inject_out")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from dse.resilience.training.outcome import TrainingOutcomeSpec

    spec = TrainingOutcomeSpec.parse(args.outcome)
    return _replay(args, spec) if args.replay else _campaign(args, spec)


def _setups(args) -> list:
    from dse.resilience.training.mitigation import Mitigation
    from dse.resilience.training.trainer import TrainSetup

    setups = []
    for opt in args.optimizer:
        for mit in args.mitigation:
            s = TrainSetup(model=args.model or "digits_cnn", dataset=args.dataset, optimizer=opt,
                           lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                           seed=args.seed, precision=args.precision, mitigation=mit)
            m = Mitigation(mit)
            try:
                m.check_optimizer(opt)
            except InputError:
                if len(args.optimizer) == 1:
                    raise
                continue  # adam-bound has nothing to bound under sgd & co: that pair is skipped
            setups.append(s)
    return setups


def _check(args) -> None:
    for name, low in (("experiments", 1), ("workers", 1), ("golden_seeds", 0),
                      ("checkpoint_every", 1), ("dask_local", 1)):
        if getattr(args, name) is None:
            continue
        if getattr(args, name) < low:
            flag = f"--{name.replace('_', '-')}"
            raise InputError(f"{flag} must be >= {low}", field=flag)
    if args.steps_after < 0:
        raise InputError("--steps-after must be >= 0", field="--steps-after")


def _campaign(args, spec) -> int:
    from dse.resilience.training import campaign as tc
    from dse.resilience.training import plots
    from dse.resilience.training.trainer import load_data

    _check(args)
    t0 = time.perf_counter()
    setups = _setups(args)
    data = load_data(setups[0].dataset)
    out = Path(args.out)
    plan = tc.Plan(args.experiments, tuple(args.passes), tuple(args.fault_model), args.format,
                   tuple(args.extent), args.steps_after or None, args.stratify, args.sample_seed)
    shapes = tc.targets(setups[0], data)
    if args.layer:
        names = {n for n, _ in shapes}
        bad = [n for n in args.layer if n not in names]
        if bad:
            raise InputError(f"unknown layer {bad[0]!r}; layers: {', '.join(sorted(names))}",
                             field="--layer")
        shapes = {k: v for k, v in shapes.items() if k[0] in args.layer}
    config = {"setups": [s.as_dict() for s in setups], "plan": plan.__dict__,
              "golden_seeds": args.golden_seeds, "layers": args.layer}
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.json"
    if cfg.exists() and json.loads(cfg.read_text()) != json.loads(json.dumps(config)):
        raise InputError("this directory holds a different campaign; use another --out",
                         file=cfg, field="config")
    spe = len(data.x) // setups[0].batch_size  # targets() has checked the batch fits
    faults = tc.sample(plan, shapes, spe, spe * setups[0].epochs)
    cfg.write_text(json.dumps(config, indent=1))
    where = {"executor": args.executor, "workers": args.workers, "scheduler": args.scheduler,
             "dask_local": args.dask_local}
    _say(args, f"golden runs: {', '.join(f'{s.optimizer}/{s.mitigation}' for s in setups)} "
               f"(each +{args.golden_seeds} seeds)")
    goldens = tc.goldens_for(setups, data, out / "golden", args.golden_seeds,
                             args.checkpoint_every, **where)
    g0 = goldens[(setups[0].optimizer, setups[0].mitigation)]
    listing = out / "experiments.csv"
    if not listing.exists():
        tc.write_rows(listing, [tc.fault_row(i, f, setups[0], plan.steps_after, args.golden_seeds)
                                for i, f in enumerate(faults)])
    bases = [tc.fault_row(i, f, s, plan.steps_after, args.golden_seeds) for s in setups
             for i, f in enumerate(faults)]
    rows = tc.run_campaign(bases, goldens, data, out, spec, progress=not args.json, **where)
    summary = tc.summarize(rows, args.confidence)
    strata = tc.summarize(rows, args.confidence, by=args.stratify) if args.stratify else None
    mitigations = tc.mitigation_report(rows, goldens, args.confidence)
    versus = tc.head_to_head(rows, args.confidence)
    wall = time.perf_counter() - t0
    doc = {"experiments": len(faults), "runs": len(rows), "wall_s": round(wall, 1),
           "outcome_spec": spec.as_dict(), "summary": summary, "strata": strata,
           "mitigations": mitigations, "head_to_head": versus,
           "golden": {f"{k[0]}/{k[1]}": _golden_doc(g) for k, g in goldens.items()}}
    (out / "summary.json").write_text(json.dumps(doc, indent=1))
    records = tc.read_curves(out / "curves.jsonl")
    first = setups[0]
    plots.plot_curves(g0, [r for r in records
                           if r["key"].endswith(f"/{first.optimizer}/{first.mitigation}")],
                      out / "curves.png")
    plots.plot_bars(summary, out / "outcomes.png")
    if args.json:
        print_json(doc)
    else:
        print(tc.table(summary, args.confidence))
        for key, m in mitigations.items():
            d, f = m["detection"], m["false_positive_per_step"]
            print(f"{key}: detected {d['count']}/{d['n']} harmful experiments "
                  f"({d['rate']:.3f} [{d['ci'][0]:.3f}, {d['ci'][1]:.3f}]); false positives "
                  f"{f['count']} in {f['n']} fault-free steps; time overhead "
                  f"{100 * m['time_overhead']:+.1f}% (golden-run wall per step, as loaded; "
                  "bench/train_inject.py measures it like for like)")
        for key, v in versus.items():
            w, b, d = v["worse"], v["better"], v["drop_difference"]
            print(f"{key}: worse outcome group in {w['count']}/{w['n']} experiments "
                  f"({w['rate']:.3f} [{w['ci'][0]:.3f}, {w['ci'][1]:.3f}]), better in "
                  f"{b['count']}; accuracy drop vs its golden run {d['mean']:+.4f} "
                  f"[{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}] more (fraction, mean over {d['n']} "
                  "experiments finite under both)")
        print(f"{len(rows)} experiments in {wall:.1f} s; files in {out}")
    return 0


def _golden_doc(golden) -> dict:
    last = golden.total_steps - 1
    return {"steps": golden.total_steps, "final_test_acc": golden.curve.test_acc[last],
            "seed_final_test_acc": [s[last] for s in golden.seed_test_acc],
            "wall_s": round(golden.wall_s, 2), "detections": len(golden.curve.detections)}


def _replay(args, spec) -> int:
    from dse.resilience.training import campaign as tc
    from dse.resilience.training.trainer import load_data

    path = Path(args.replay)
    if not path.is_file():
        raise InputError("replay file not found", file=path, field="--replay")
    rows = tc.read_rows(path)
    if not rows:
        raise InputError("no rows to replay", file=path, field="--replay")
    checked = []
    for row in rows:  # every row is checked before anything trains
        try:
            setup, fault, _ = tc.from_row(row)
            if args.model and setup.model != args.model:
                raise InputError(f"the row is from model {setup.model!r}, not {args.model!r}",
                                 field="model")
            data = load_data(setup.dataset)
            tc.check_against(fault, setup, data, tc.targets(setup, data))
        except InputError as exc:
            raise InputError(f"row {row.get('experiment', '?')}: {exc.reason}", file=path,
                             field=exc.field) from None
        checked.append((row, setup, data))
    out = Path(args.out)
    report, same_all = [], True
    for row, setup, data in checked:
        seeds = int(row.get("golden_seeds") or args.golden_seeds)
        golden = tc.golden_for(setup, data, out / "golden", seeds, checkpoint_every=None)
        new, _ = tc.run_one(golden, data, {k: row.get(k, "") for k in tc.COLUMNS}, spec)
        same = bool(row.get("curve_sha")) and all(
            new[k] == row[k] for k in ("curve_sha", "inj_values", "outcome"))
        same_all &= same or not row.get("curve_sha")
        report.append({"experiment": row["experiment"], "outcome": new["outcome"],
                       "recorded_outcome": row.get("outcome", ""), "curve_sha": new["curve_sha"],
                       "identical": same, "final_test_acc": new["final_test_acc"]})
    if args.json:
        print_json({"replayed": report, "identical": same_all})
    else:
        for r in report:
            print(f"experiment {r['experiment']}: {r['outcome']} "
                  f"(recorded {r['recorded_outcome'] or '-'}), "
                  f"{'bit-identical' if r['identical'] else 'DIFFERENT'}")
    return 0 if same_all else 1


def _say(args, text: str) -> None:
    if not args.json:
        print(text, file=sys.stderr)
