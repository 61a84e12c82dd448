"""The mapper's SDC-FIT estimate against measurement, and what the resilience-aware pick buys.

For each (layer, design) of ``digits_cnn``'s three conv layers on the four shipped designs:

1. **Calibrate** once: an adaptive stratified campaign (``mapped/adaptive.py``, seed 100) on the
   mapper's min-EDP mapping gives P(SDC | fault) per site class
   (:meth:`dse.resilience.mapped.estimate.Sensitivity.from_strata`), and the live fraction of
   each class on that mapping (``Sensitivity.with_liveness``).
2. **Pick mappings**: the min-EDP mapping; the resilience-aware pick (the estimate's EDP x SDC-FIT
   front of a hybrid search, ``select(front, "metric", edp_slack=0.10)``: lowest estimated SDC
   FIT within 10% of the best EDP); and ``--spread`` more sampled from the mapspace at evenly
   spaced EDP ranks (mapspace samples, one per distinct EDP), so the set spans the layer's
   mapping choices.
3. **Measure** every picked mapping with its own adaptive campaign (seed 1, other faults than
   the calibration's) to ``--precision`` (95% half-width / estimate) or ``--max-faults``.
4. **Compare** (``report``, from the JSON alone: calibration strata and every mapping as text):
   Spearman rank correlation between estimated and measured SDC FIT per (layer, design) and
   pooled; relative error |est - meas| / meas over the mappings the calibration did not run on;
   for the estimate without the live fraction (before) and with it (after).

Words are stored as bf16 (every level and the MAC register 16 bits): with the designs' int
formats SDC per fault is ~1e-4 and each campaign would need tens of thousands of faults. The
classifier layers are measured only for the min-EDP and resilience-aware mappings, so the network
figure (every layer, cycle-weighted, ``dse.resilience.network``) compares the two choices.

    python bench/estimate.py measure [--jobs 2]   # -> docs/estimate.json (slow: campaigns)
    python bench/estimate.py live                 # -> docs/estimate_live.json (a few minutes)
    python bench/estimate.py report               # -> docs/resilience.md section "estimate"

``live`` checks the estimate's live fraction (``exposure_batch.batch_live``) against the fault
injector itself on every stored conv mapping: per site class, faults drawn as a campaign draws
them (uniform step, instance, resident word; seed 7), and the share that the injector's reader
sets (``sites.storage_readers`` / ``sites.accumulated``) find live.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402
from resilience import layer_problem, sampled_mappings  # noqa: E402

from dse.arch import load_arch  # noqa: E402
from dse.mapper import search, select  # noqa: E402
from dse.model import evaluate  # noqa: E402
from dse.model.batch import mappings_to_arrays  # noqa: E402
from dse.problems.trained import load_model  # noqa: E402
from dse.resilience.inference import FastEngine  # noqa: E402
from dse.resilience.mapped.adaptive import LayerCampaign, adaptive_resilience  # noqa: E402
from dse.resilience.mapped.deltas import drawn_live_share  # noqa: E402
from dse.resilience.mapped.estimate import Sensitivity, sdc_fit_metric  # noqa: E402
from dse.resilience.mapped.exposure import exposures  # noqa: E402
from dse.resilience.mapped.exposure_batch import batch_live, site_classes  # noqa: E402
from dse.resilience.mapped.sites import MAC_SITE, Nest  # noqa: E402
from dse.resilience.network import network_sdc  # noqa: E402
from dse.resilience.strata import Plan  # noqa: E402
from dse.sweep.tasks import mapping_text, read_mapping_text  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
DATA = DOCS / "estimate.json"
LIVE = DOCS / "estimate_live.json"
MODEL = "digits_cnn"
CONV = ("features.0", "features.2", "features.5")
OTHER = ("classifier.1", "classifier.3")
DESIGNS = ("eyeriss_like", "nvdla_like", "simple_weight_stationary", "simple_output_stationary")
FMT, WORD_BITS, FIT_PER_MBIT = "bf16", 16, 1000.0
SLACK = 0.10


def _campaign(ctx: dict, mapping, seed: int, args) -> dict:
    """One adaptive campaign on ``mapping``: its estimate, interval, faults and strata."""
    t0 = time.perf_counter()
    camp = LayerCampaign(ctx["problem"], ctx["arch"], mapping, ctx["model"], ctx["layer"],
                         ctx["images"], ctx["labels"], seed=seed, fmt=FMT, engine=ctx["engine"])
    res = adaptive_resilience(camp, Plan(args.precision, 0.0, args.max_faults),
                              fit_per_mbit=FIT_PER_MBIT)
    stats = evaluate(ctx["problem"], ctx["arch"], mapping)
    return {"mapping": mapping_text(mapping, ctx["problem"]), "edp": stats.edp,
            "energy_pJ": stats.energy_pJ, "cycles": int(stats.cycles),
            "fit": res.fit.value, "fit_ci": [res.fit.lo, res.fit.hi], "faults": res.sdc.n,
            "resolved": res.resolved, "strata": [r.to_dict() for r in res.strata],
            "wall_s": time.perf_counter() - t0}


def _picks(ctx: dict, sens: Sensitivity, spread: int, conv: bool) -> list[tuple[str, object]]:
    """(role, mapping): min-EDP, the resilience-aware pick, and ``spread`` sampled ones."""
    problem, arch = ctx["problem"], ctx["arch"]
    metric = sdc_fit_metric(problem, arch, sens, word_bits=WORD_BITS)
    found = search(problem, arch, "edp", batch_metric=metric, search="hybrid", max_evals=3000,
                   workers=1, time_limit=None, seed=0)
    aware = select(found.front, "metric", edp_slack=SLACK)
    picks = [("min-EDP", ctx["best"]), ("aware", aware[0])]
    if conv:
        rows = sampled_mappings(problem, arch, 400, 0)
        for k in np.unique(np.linspace(0, len(rows) - 1, spread).round().astype(int)):
            picks.append(("sampled", rows[int(k)][3]))
    out, seen = [], set()
    for role, m in picks:
        text = mapping_text(m, problem)
        if text not in seen:
            seen.add(text)
            out.append((role, m))
    return out


def measure_group(job: tuple) -> dict:
    """Calibrate, pick and measure one (layer, design)."""
    layer, design, args = job
    torch.set_num_threads(1)
    model, x, y = load_model(MODEL)
    images, labels = x[: args.images], y[: args.images]
    arch = load_arch(design)
    problem = layer_problem(model, layer, images)
    best = search(problem, arch, "edp", search="hybrid", max_evals=3000, workers=1,
                  time_limit=None, seed=0).best
    ctx = dict(problem=problem, arch=arch, model=model, layer=layer, images=images,
               labels=labels, engine=FastEngine(model, images, labels), best=best)
    calib = _campaign(ctx, best, 100, args)
    sens = Sensitivity.from_strata(calib["strata"], FIT_PER_MBIT).with_liveness(
        problem, arch, best, word_bits=WORD_BITS)
    measured = []
    for role, m in _picks(ctx, sens, args.spread, layer in CONV):
        row = _campaign(ctx, m, 1, args)
        row["role"] = role
        measured.append(row)
        print(f"{layer:13s} {design:25s} {role:8s} edp {row['edp']:.3e} fit {row['fit']:.3g} "
              f"[{row['fit_ci'][0]:.3g}, {row['fit_ci'][1]:.3g}] n={row['faults']} "
              f"{row['wall_s']:.1f}s", flush=True)
    return {"layer": layer, "design": design, "calibration": calib, "mappings": measured}


def measure(args: argparse.Namespace) -> None:
    jobs = [(layer, design, args) for layer in (*CONV, *OTHER) for design in DESIGNS]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        groups = pool.map(measure_group, jobs, chunksize=1)
    meta = {"model": MODEL, "format": FMT, "images": args.images, "precision": args.precision,
            "max_faults": args.max_faults, "spread": args.spread, "jobs": args.jobs,
            "wall_s": time.perf_counter() - t0, "load": os.getloadavg()}
    DATA.write_text(json.dumps({"meta": meta, "groups": groups}) + "\n")
    print(f"wrote {DATA} in {meta['wall_s']:.0f}s, load {meta['load']}")


# ------------------------------------------------------------------------------------- report

def estimates(group: dict, live: bool) -> np.ndarray:
    """The batched estimate of every measured mapping of a group, from its calibration's stored
    strata and (``live``) its stored mapping text: P(SDC | live fault) x each mapping's live
    fraction, else P(SDC | fault) carried unchanged."""
    arch = load_arch(group["design"])
    model, x, _ = load_model(MODEL)
    problem = layer_problem(model, group["layer"], x[:1])
    sens = Sensitivity.from_strata(group["calibration"]["strata"], FIT_PER_MBIT)
    if live:
        calib = read_mapping_text(group["calibration"]["mapping"], arch, problem)
        sens = sens.with_liveness(problem, arch, calib, word_bits=WORD_BITS)
    maps = [read_mapping_text(r["mapping"], arch, problem) for r in group["mappings"]]
    arrays, scalar = mappings_to_arrays(problem, arch, maps)
    if scalar:
        raise SystemExit(f"{group['layer']} on {group['design']}: mappings {scalar} not batchable")
    return sdc_fit_metric(problem, arch, sens, word_bits=WORD_BITS)(arrays)


def _network(groups: list[dict], design: str, role: str) -> tuple[float, object]:
    """Network EDP and SDC FIT (all five layers) with each layer's ``role`` mapping."""
    rows = [_role(g, role) for g in groups if g["design"] == design]
    energy, cycles = sum(r["energy_pJ"] for r in rows), sum(r["cycles"] for r in rows)
    fig = network_sdc([(r["cycles"] / cycles, r["strata"]) for r in rows],
                      fit_per_mbit=FIT_PER_MBIT, confidence=0.95,
                      seconds_per_inference=cycles / 1e9)
    return energy * 1e-12 * cycles, fig.fit


def _agreement(groups: list[dict], live: bool) -> dict:
    """Per conv (layer, design) and pooled: Spearman and relative errors of the estimate."""
    rows, rhos, errs, pooled_e, pooled_m = [], [], [], [], []
    for g in groups:
        if g["layer"] not in CONV:
            continue
        est = estimates(g, live)
        meas = np.array([r["fit"] for r in g["mappings"]])
        rel = np.array([abs(e - m) / m for e, m, r in zip(est, meas, g["mappings"], strict=True)
                        if r["role"] != "min-EDP" and m > 0])
        rho = spearmanr(est, meas).statistic
        rows.append((g, rho, rel, meas))
        rhos.append(rho)
        errs += list(rel)
        pooled_e += list(est)
        pooled_m += list(meas)
    return {"rows": rows, "rhos": np.array(rhos), "errs": np.array(errs),
            "pooled": spearmanr(pooled_e, pooled_m).statistic, "n": len(pooled_m)}


def _summary(a: dict) -> str:
    rhos, errs = a["rhos"], a["errs"]
    return (f"Spearman per (layer, design): median {np.median(rhos):.2f}, lowest {rhos.min():.2f} "
            f"({int((rhos >= 0.8).sum())} of {len(rhos)} at >= 0.8); pooled over all {a['n']} "
            f"mappings: {a['pooled']:.2f}. Relative error: median {np.median(errs):.0%}, worst "
            f"{errs.max():.0%}.")


def report(args: argparse.Namespace) -> None:
    data = json.loads(DATA.read_text())
    meta, groups = data["meta"], data["groups"]
    before, after = _agreement(groups, live=False), _agreement(groups, live=True)
    lines = ["| layer | design | mappings | Spearman | median rel. error | worst rel. error | "
             "measured FIT range | faults per mapping (median) |",
             "|---|---|---:|---:|---:|---:|---|---:|"]
    for (g, rho0, rel0, meas), (_, rho, rel, _) in zip(before["rows"], after["rows"], strict=True):
        lines.append(f"| {g['layer']} | {g['design']} | {len(meas)} | {rho0:.2f} -> "
                     f"**{rho:.2f}** | {np.median(rel0):.0%} -> **{np.median(rel):.0%}** | "
                     f"{rel0.max():.0%} -> **{rel.max():.0%}** | {meas.min():.3g} - "
                     f"{meas.max():.3g} | {int(np.median([r['faults'] for r in g['mappings']]))} |")
    unresolved = sum(not r["resolved"] for g, *_ in after["rows"] for r in g["mappings"])
    body = [
        "## The SDC-FIT estimate against measurement",
        "",
        f"`{MODEL}`, its three conv layers on the four shipped designs, words stored as "
        f"**{meta['format']}** (every level and the MAC register; the designs' int formats give "
        f"SDC per fault near 1e-4, so each point would need tens of thousands of faults). "
        "Calibration: one adaptive campaign on the min-EDP mapping of each (layer, design) "
        "(seed 100). Measured: every mapping below by its own adaptive campaign (seed 1), "
        f"{meta['images']} test images per fault, until the 95% half-width is at most "
        f"{meta['precision']:.0%} of the estimate (cap {meta['max_faults']} faults; "
        f"{unresolved} of {after['n']} mappings stopped at the cap). Mappings per "
        "(layer, design): the min-EDP one, the resilience-aware pick, and "
        f"{meta['spread']} mapspace samples at evenly spaced EDP ranks. Relative error "
        "= |estimate - measured| / measured, over every mapping but the calibration one. "
        "Both estimates are recomputed here from what `docs/estimate.json` stores (the "
        "calibration strata and every mapping as text), no campaign re-run. In each cell, "
        "`before -> after`: *before*, P(SDC | fault) per class carried from the calibration "
        "mapping unchanged; *after*, P(SDC | live fault) per class from the calibration times "
        "each mapping's live fraction from its loop nest (`Sensitivity.with_liveness`, "
        "`exposure_batch.batch_live`). Nothing is fitted to the measured mappings: the only "
        "measured input is each group's calibration campaign; the live fractions come from the "
        "mappings alone. The resilience-aware picks were made during `measure` with the "
        "estimate of that time (without the live fraction).",
        "",
        *lines,
        "",
        f"Before: {_summary(before)}",
        "",
        f"**After** (with the live fraction): {_summary(after)}",
        "",
        *_live_paragraph(),
        *_aware_table(groups),
        "",
        f"Command: `python bench/estimate.py measure --jobs {meta['jobs']}` "
        f"({meta['wall_s'] / 60:.0f} min wall, load average {meta['load'][0]:.1f} / "
        f"{meta['load'][1]:.1f} / {meta['load'][2]:.1f} at the end, 2 cores shared), then "
        "`python bench/estimate.py report` (recomputes both estimates from the JSON, about "
        "ten seconds). Raw figures: `docs/estimate.json`, `docs/estimate_live.json`.",
    ]
    write_section("estimate", "\n".join(body), doc=DOCS / "resilience.md")
    print("\n".join(body))


def _aware_table(groups: list[dict]) -> list[str]:
    """Min-EDP vs resilience-aware mapping: per layer and design, and for the whole network."""
    out = [f"**Resilience-aware mapping** (lowest estimated SDC FIT within {SLACK:.0%} of the "
           "search's best EDP) against the min-EDP mapping, both measured (SDC FIT of the chip "
           "while the layer runs, raw 1000 FIT/Mbit; \"apart\" = the 95% intervals do not "
           "overlap):", "",
           "| layer | design | EDP cost | min-EDP SDC FIT [95%] | aware SDC FIT [95%] | "
           "cut | apart |", "|---|---|---:|---|---|---:|---|"]
    for g in groups:
        base, aware = _role(g, "min-EDP"), _role(g, "aware")
        out.append(f"| {g['layer']} | {g['design']} | {aware['edp'] / base['edp'] - 1:+.1%} | "
                   f"{_fit(base['fit'], base['fit_ci'])} | {_fit(aware['fit'], aware['fit_ci'])}"
                   f" | {base['fit'] / max(aware['fit'], 1e-300):.2f}x | "
                   f"{aware['fit_ci'][1] < base['fit_ci'][0]} |")
    out += ["", "Whole network (all five layers, each with its min-EDP or its aware mapping; "
            "network EDP = total energy x total cycles; SDC FIT cycle-weighted over layers, "
            "`dse.resilience.network`):", "",
            "| design | EDP cost | min-EDP SDC FIT [95%] | aware SDC FIT [95%] | cut | apart |",
            "|---|---:|---|---|---:|---|"]
    for design in DESIGNS:
        e0, f0 = _network(groups, design, "min-EDP")
        e1, f1 = _network(groups, design, "aware")
        out.append(f"| {design} | {e1 / e0 - 1:+.1%} | {_fit(f0.value, (f0.lo, f0.hi))} | "
                   f"{_fit(f1.value, (f1.lo, f1.hi))} | {f0.value / max(f1.value, 1e-300):.2f}x"
                   f" | {f1.hi < f0.lo} |")
    return out


def _role(group: dict, role: str) -> dict:
    """The measured mapping of ``role`` (the aware pick may be the min-EDP mapping itself)."""
    rows = group["mappings"]
    return next((r for r in rows if r["role"] == role), rows[0])


def _fit(value: float, ci) -> str:
    return f"{value:.3g} [{ci[0]:.3g}, {ci[1]:.3g}]"


def live_check(args: argparse.Namespace) -> None:
    """Closed-form live fraction vs the injector's draws on every stored conv mapping."""
    data = json.loads(DATA.read_text())
    model, x, _ = load_model(MODEL)
    rng, rows, t0 = np.random.default_rng(7), [], time.perf_counter()
    for g in data["groups"]:
        if g["layer"] not in CONV:
            continue
        arch = load_arch(g["design"])
        problem = layer_problem(model, g["layer"], x[:1])
        maps = [read_mapping_text(r["mapping"], arch, problem)
                for r in [g["calibration"], *g["mappings"]]]
        arrays, _ = mappings_to_arrays(problem, arch, maps)
        classes = site_classes(problem, arch, word_bits=WORD_BITS)
        closed = batch_live(problem, arch, arrays, classes)
        column = {(c.level_name, c.dataspace): j for j, c in enumerate(classes)}
        for b, m in enumerate(maps):
            nest = Nest(problem, m)
            for site in exposures(nest, arch, word_bits=WORD_BITS):
                if site.dataspace == MAC_SITE:
                    continue
                rows.append({"layer": g["layer"], "design": g["design"], "mapping": b,
                             "level": site.level_name, "dataspace": site.dataspace,
                             "draws": args.draws,
                             "injector": drawn_live_share(nest, site, args.draws, rng),
                             "closed": float(closed[b, column[(site.level_name,
                                                               site.dataspace)]])})
    LIVE.write_text(json.dumps({"wall_s": time.perf_counter() - t0, "load": os.getloadavg(),
                                "rows": rows}) + "\n")
    print(f"wrote {LIVE}: {len(rows)} (mapping, class) pairs")
    print("\n".join(_live_summary(rows)))


def _live_paragraph() -> list[str]:
    """The live-fraction check (``live``), if it has been run."""
    if not LIVE.exists():
        return []
    data = json.loads(LIVE.read_text())
    draws = data["rows"][0]["draws"]
    return ["**The live fraction against the injector** (`python bench/estimate.py live`: on "
            "every mapping above and its calibration, per site class, "
            f"{draws} faults drawn as a campaign draws them and the share the injector's reader "
            "sets find live, against `batch_live`; "
            f"{data['wall_s'] / 60:.0f} min, load {data['load'][0]:.1f}):", "",
            *[f"- {line}" for line in _live_summary(data["rows"])], ""]


def _live_summary(rows: list[dict]) -> list[str]:
    """Agreement of closed form and injector, split into exact classes and sliding windows."""
    out = []
    for name, pick in (("weights and partial sums", lambda r: r["dataspace"] != "Inputs"),
                       ("inputs (conv windows)", lambda r: r["dataspace"] == "Inputs")):
        sel = [r for r in rows if pick(r)]
        diff = np.array([r["injector"] - r["closed"] for r in sel])
        closed = np.array([r["closed"] for r in sel])
        n = np.array([r["draws"] for r in sel])
        se = np.sqrt(np.maximum(closed * (1 - closed), 1 / n) / n)
        middle = int(((closed > 0.05) & (closed < 0.95)).sum())
        out.append(f"{name}: {len(sel)} (mapping, class) pairs ({middle} with a live "
                   "fraction between 0.05 and 0.95), "
                   f"injector - closed form: mean {diff.mean():+.3f}, largest |.| "
                   f"{np.abs(diff).max():.3f}, beyond 3 binomial standard errors: "
                   f"{int((np.abs(diff) > 3 * se).sum())} (chance alone: about "
                   f"{0.0027 * len(sel):.1f})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--jobs", type=int, default=2)
    m.add_argument("--images", type=int, default=64)
    m.add_argument("--precision", type=float, default=0.3)
    m.add_argument("--max-faults", type=int, default=6000)
    m.add_argument("--spread", type=int, default=8)
    sub.add_parser("report")
    lv = sub.add_parser("live")
    lv.add_argument("--draws", type=int, default=300)
    args = ap.parse_args()
    {"measure": measure, "report": report, "live": live_check}[args.cmd](args)


if __name__ == "__main__":
    main()
