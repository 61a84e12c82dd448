"""Run a fault list, writing results as it goes, and resume it after a kill.

Files in the campaign directory:

- ``faultlist.csv``: the list to run (count columns empty);
- ``results.csv``: the same columns, one row appended and flushed per finished fault (INF/NaN
  outcomes are the part of ``n_injections`` not counted as masked / non-critical / critical);
- ``outcomes.csv``: per finished fault, the INF/NaN count and the SDC buckets, appended just before
  the fault's ``results.csv`` row.

A fault counts as done exactly when its ``results.csv`` row is complete, so a kill at any moment
loses at most the faults in flight and never repeats one; a half-written last line is cut off on
resume. When every fault is done, ``results.csv`` is rewritten in Injection order (atomically).

With ``workers > 1`` chunks of the list run in a pool of spawned processes, each holding its own
copy of the engine; only this process writes the files, as chunks finish. Outcomes do not depend
on who computed them (every engine is exact), so the files end the same.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dse.errors import InputError
from dse.resilience.faultlist import COLUMNS, Row, load, row_values, save, with_counts
from dse.resilience.outcomes import BUCKETS, NOT_RUN, rate
from dse.workers import process_pool

OUTCOME_COLUMNS = ("Injection", "inf_nan", *BUCKETS)


def _repair(path: Path) -> None:
    """Cut a half-written last line (no newline) left by a kill."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _read_outcomes(path: Path) -> dict[int, tuple[int, ...]]:
    if not path.exists():
        return {}
    _repair(path)
    out = {}
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    for rec in rows[1:]:
        try:
            out[int(rec[0])] = tuple(int(x) for x in rec[1:])
        except (ValueError, IndexError):
            raise InputError("malformed outcomes row", file=path,
                             field=OUTCOME_COLUMNS[0]) from None
    return out


def _done(results: Path, rows: Sequence[Row]) -> dict[int, Row]:
    """Finished rows of an earlier run; InputError when they belong to a different list."""
    if not results.exists():
        return {}
    _repair(results)
    first = rows[0].fault if rows else None
    kw = {} if first is None else {"target": first.target, "kind": first.kind, "fmt": first.fmt}
    done = {r.injection: r for r in load(results, allow_empty=True, **kw) if r.counts}
    by_id = {r.injection: r for r in rows}
    for inj, r in done.items():
        mine = by_id.get(inj)
        if mine is None or (mine.fault.layer, mine.fault.index, mine.fault.bits) != (
                r.fault.layer, r.fault.index, r.fault.bits):
            raise InputError(f"Injection {inj} does not match the fault list; use another --out",
                             file=results, field="Injection")
    return done


def fault_counts(codes: np.ndarray, buckets: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(n, masked, non_critical, critical) and (inf_nan, buckets...) of one fault's images."""
    run = codes[codes != NOT_RUN]
    main = (len(run), int((run == 0).sum()), int((run == 1).sum()), int((run == 2).sum()))
    extra = (int((run == 3).sum()), *(int((buckets == i).sum()) for i in range(len(BUCKETS))))
    return main, extra


def run_campaign(engine, rows: Sequence[Row], out_dir: str | Path, *, chunk: int = 32,
                 progress: bool = False, workers: int = 1) -> list[Row]:
    """Run every row not yet in ``out_dir/results.csv``; return all rows with counts.
    ``workers > 1`` runs chunks of ``chunk`` faults in that many processes (module doc)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results, outcomes = out / "results.csv", out / "outcomes.csv"
    done = _done(results, rows)
    pending = [r for r in rows if r.injection not in done]
    new_file = not results.exists() or results.stat().st_size == 0
    if not outcomes.exists() or outcomes.stat().st_size == 0:
        outcomes.write_text(",".join(OUTCOME_COLUMNS) + "\n")
    with open(results, "a", newline="") as res_fh, open(outcomes, "a", newline="") as out_fh:
        res_w, out_w = csv.writer(res_fh), csv.writer(out_fh)
        if new_file:
            res_w.writerow(COLUMNS)
            res_fh.flush()
        bar = tqdm(total=len(rows), initial=len(done), disable=not progress, unit="fault")
        parts = [pending[s : s + chunk] for s in range(0, len(pending), chunk)]
        for part, codes, buckets in _outcomes(engine, parts, workers):
            for i, r in enumerate(part):
                main, extra = fault_counts(codes[i], buckets[i])
                out_w.writerow([r.injection, *extra])
                out_fh.flush()
                done[r.injection] = with_counts(r, main)
                res_w.writerow(row_values(done[r.injection]))
                res_fh.flush()
            os.fsync(res_fh.fileno())
            bar.update(len(part))
        bar.close()
    final = [done[r.injection] for r in rows]
    save(final, results)
    return final


def _outcomes(engine, parts: list[list[Row]],
              workers: int) -> Iterator[tuple[list[Row], np.ndarray, np.ndarray]]:
    """(rows, outcome codes, SDC buckets) of each part, in this process or from a pool, as they
    finish."""
    if workers <= 1 or len(parts) <= 1:
        for part in parts:
            res = engine.run([r.fault for r in part])
            yield part, res.codes, res.buckets
        return
    setup = (type(engine), engine.model, engine.images, engine.labels, engine.block)
    pool = process_pool(min(workers, len(parts)), _start_engine, setup)
    try:
        futures = {pool.submit(_run_part, [r.fault for r in part]): part for part in parts}
        for fut in cf.as_completed(futures):
            yield futures[fut], *fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_ENGINE = None  # a pool worker's own engine (set up once per worker by _start_engine)


def _start_engine(cls, model, images, labels, block: int) -> None:
    global _ENGINE
    _ENGINE = cls(model, images, labels, block=block)


def _run_part(faults: list) -> tuple[np.ndarray, np.ndarray]:
    res = _ENGINE.run(faults)
    return res.codes, res.buckets


def summarize_rows(rows: Sequence[Row], extras: dict[int, tuple[int, ...]] | None = None,
                   confidence: float = 0.95) -> dict:
    """Overall, per-layer and per-bit outcome counts with SDC-1 and masked rates (Wilson
    intervals at ``confidence``)."""

    def block(members: Sequence[Row]) -> dict:
        c = np.array([r.counts for r in members], dtype=np.int64).reshape(-1, 4).sum(axis=0)
        n, masked, non_crit, crit = (int(x) for x in c)
        out = {"faults": len(members), "injections": n, "masked": masked,
               "non_critical": non_crit, "critical": crit, "inf_nan": n - masked - non_crit - crit}
        if extras:
            e = np.array([extras.get(r.injection, (0,) * 5) for r in members]).sum(axis=0)
            out.update({b: int(e[1 + i]) for i, b in enumerate(BUCKETS)})
        for name, k in (("sdc1", crit), ("masked", masked)):
            r = rate(k, n, confidence)
            out[f"{name}_rate"], out[f"{name}_ci"] = r.rate, list(r.ci)
        return out

    def grouped(key, order=None) -> dict:
        groups: dict = {}
        for r in rows:
            groups.setdefault(key(r), []).append(r)
        return {k: block(groups[k]) for k in sorted(groups, key=order)} if order else {
            k: block(v) for k, v in groups.items()}

    return {"overall": block(rows), "per_layer": grouped(lambda r: r.fault.layer),
            "per_bit": grouped(lambda r: ";".join(str(b) for b in r.fault.bits),
                               order=lambda b: [int(x) for x in b.split(";")])}


def read_extras(out_dir: str | Path) -> dict[int, tuple[int, ...]]:
    return _read_outcomes(Path(out_dir) / "outcomes.csv")


def plot_summary(summary: dict, path: str | Path, title: str = "") -> None:
    """PNG: SDC-1 rate with its interval per layer (left) and per bit position (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, label in ((axes[0], "per_layer", "layer"), (axes[1], "per_bit", "bit")):
        groups = summary[key]
        names = list(groups)
        if key == "per_bit":
            names.sort(key=lambda b: [int(x) for x in b.split(";")])
        rates = np.array([groups[k]["sdc1_rate"] for k in names])
        lo = rates - np.array([groups[k]["sdc1_ci"][0] for k in names])
        hi = np.array([groups[k]["sdc1_ci"][1] for k in names]) - rates
        ax.bar(range(len(names)), rates, yerr=[lo.clip(0), hi.clip(0)], capsize=2, color="tab:red")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_xlabel(label)
        ax.set_ylabel("SDC-1 rate")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
