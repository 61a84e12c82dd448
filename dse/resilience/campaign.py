"""Run a fault list through an engine, writing outcome counts as it goes, and resume after a kill.

Files in the campaign directory:

- ``faultlist.csv``: the list to run, in the fault CSV form (:mod:`dse.resilience.fault`);
- ``results.csv``: the same columns plus the outcome spec's count columns (``n_injections`` and
  one per class, :attr:`OutcomeSpec.columns`), one row appended and flushed per finished fault.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dse.errors import InputError
from dse.resilience import fault as faultcsv
from dse.resilience.fault import Fault
from dse.resilience.outcomes import OutcomeSpec
from dse.workers import process_pool


@dataclass(frozen=True)
class Row:
    """One fault-list row: the fault and, once run, its counts in the spec's column order."""

    injection: int
    fault: Fault
    counts: tuple[int, ...] | None = None


def numbered(faults: Sequence[Fault]) -> list[Row]:
    return [Row(i, f) for i, f in enumerate(faults)]


def save_list(rows: Sequence[Row], path: str | Path) -> None:
    """The fault list alone (no counts), atomically."""
    faultcsv.write_csv(path, [(r.injection, r.fault) for r in rows])


def load_list(path: str | Path, defaults: Mapping[str, str] | None = None) -> list[Row]:
    """The rows of a fault CSV (count columns, if any, are ignored); InputError when empty."""
    rows = [Row(inj, f) for inj, f, _ in faultcsv.read_csv(path, defaults)]
    if not rows:
        raise InputError("fault list has no rows", file=path)
    return rows


def save_results(rows: Sequence[Row], spec: OutcomeSpec, path: str | Path) -> None:
    faultcsv.write_csv(path, [(r.injection, r.fault) for r in rows], spec.columns,
                       [r.counts or ("",) * len(spec.columns) for r in rows])


def load_results(path: str | Path, spec: OutcomeSpec) -> list[Row]:
    """Rows of a results file, counts parsed (None where the row has not run)."""
    out = []
    for inj, f, rest in faultcsv.read_csv(path):
        missing = [c for c in spec.columns if c not in rest]
        if missing:
            raise InputError(f"no column {missing[0]} (outcome spec {spec.name})", file=path,
                             field=missing[0])
        texts = [rest[c].strip() for c in spec.columns]
        counts = None
        if any(texts):
            try:
                counts = tuple(int(t) for t in texts)
            except ValueError:
                raise InputError(f"Injection {inj}: malformed counts {texts}", file=path,
                                 field="n_injections") from None
        out.append(Row(inj, f, counts))
    return out


def _repair(path: Path) -> None:
    """Cut a half-written last line (no newline) left by a kill."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _done(results: Path, rows: Sequence[Row], spec: OutcomeSpec) -> dict[int, Row]:
    """Finished rows of an earlier run; InputError when they belong to a different list."""
    if not results.exists() or results.stat().st_size == 0:
        return {}
    _repair(results)
    done = {r.injection: r for r in load_results(results, spec) if r.counts}
    by_id = {r.injection: r for r in rows}
    for inj, r in done.items():
        if inj not in by_id or by_id[inj].fault != r.fault:
            raise InputError(f"Injection {inj} does not match the fault list; use another --out",
                             file=results, field="Injection")
    return done


def run_campaign(engine, rows: Sequence[Row], out_dir: str | Path, *, chunk: int = 32,
                 progress: bool = False, workers: int = 1) -> list[Row]:
    """Run every row not yet in ``out_dir/results.csv``; return all rows with counts (in the
    engine's outcome spec columns). ``workers > 1`` runs chunks of ``chunk`` faults in that many
    processes (module doc)."""
    spec = engine.spec
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    done = _done(results, rows, spec)
    pending = [r for r in rows if r.injection not in done]
    new_file = not results.exists() or results.stat().st_size == 0
    with open(results, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow([*faultcsv.COLUMNS, *spec.columns])
            fh.flush()
        bar = tqdm(total=len(rows), initial=len(done), disable=None if progress else True, unit="fault")
        parts = [pending[s : s + chunk] for s in range(0, len(pending), chunk)]
        for part, counts in _counts(engine, parts, workers):
            for r, c in zip(part, counts, strict=True):
                done[r.injection] = replace(r, counts=tuple(int(x) for x in c))
                writer.writerow([*faultcsv.to_record(r.injection, r.fault), *c])
                fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(part))
        bar.close()
    final = [done[r.injection] for r in rows]
    save_results(final, spec, results)
    return final


def _counts(engine, parts: list[list[Row]], workers: int) -> Iterator[tuple[list[Row], np.ndarray]]:
    """(rows, their counts) of each part, in this process or from a pool, as they finish."""
    if workers <= 1 or len(parts) <= 1:
        for part in parts:
            yield part, engine.run([r.fault for r in part]).counts()
        return
    setup = (type(engine), engine.model, engine.images, engine.targets, engine.settings())
    pool = process_pool(min(workers, len(parts)), _start_engine, setup)
    try:
        futures = {pool.submit(_run_part, [r.fault for r in part]): part for part in parts}
        for fut in cf.as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_ENGINE = None  # a pool worker's own engine (set up once per worker by _start_engine)


def _start_engine(cls, model, images, targets, settings: dict) -> None:
    global _ENGINE
    _ENGINE = cls(model, images, targets, **settings)


def _run_part(faults: list[Fault]) -> np.ndarray:
    return _ENGINE.run(faults).counts()


def summarize_rows(rows: Sequence[Row], spec: OutcomeSpec, confidence: float = 0.95) -> dict:
    """Overall, per-layer and per-bit totals of every class, each with its rate and interval
    (:meth:`OutcomeSpec.summarize`)."""

    def block(members: Sequence[Row]) -> dict:
        return spec.summarize(np.array([r.counts for r in members]), confidence)

    def grouped(key, order=None) -> dict:
        groups: dict = {}
        for r in rows:
            groups.setdefault(key(r), []).append(r)
        names = sorted(groups, key=order) if order else list(groups)
        return {k: block(groups[k]) for k in names}

    return Summary({"outcome": spec.name, "classes": list(spec.classes), "overall": block(rows),
                    "per_layer": grouped(lambda r: r.fault.where.layer),
                    "per_bit": grouped(lambda r: ";".join(str(b) for b in r.fault.what.bits)
                                       or "-", order=_bit_order)})


class Summary(dict):
    """What :func:`summarize_rows` returns: the JSON document ``summary.json`` holds, and
    ``to_frame()``: one row for the campaign, one per layer, one per bit (``group``), each
    with its faults, (fault, image) pairs, and per class the pairs and the share of the pairs
    with its interval (the fault as sampling unit)."""

    def to_frame(self):
        from dse.frames import frame

        def row(group: str, key: str, s: dict) -> dict:
            out = {"group": group, "key": key, "faults": s["faults"],
                   "fault_image_pairs": s["fault_image_pairs"]}
            for cls in self["classes"]:
                out |= {f"{cls}_pairs": s[cls]["count"], f"{cls}_per_pair": s[cls]["rate"],
                        f"{cls}_per_pair_lo": s[cls]["ci"][0],
                        f"{cls}_per_pair_hi": s[cls]["ci"][1]}
            return out

        return frame([row("overall", "all", self["overall"])]
                     + [row("layer", k, s) for k, s in self["per_layer"].items()]
                     + [row("bit", k, s) for k, s in self["per_bit"].items()])


def _bit_order(key: str) -> list[int]:
    return [int(x) for x in key.split(";")] if key != "-" else [-1]


def plot_summary(summary: dict, spec: OutcomeSpec, path: str | Path, title: str = "") -> None:
    """PNG: the spec's headline rate with its interval per layer (left) and per bit position
    (right). A panel whose non-zero rates span a decade or more gets a symmetric-log axis, so
    the low bits stay visible next to an exponent bit (zero stays zero)."""
    import matplotlib.pyplot as plt

    from dse.figures import save_figure

    cls = spec.headline
    level = f"{100 * summary['overall']['confidence']:g}%"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, key, label in ((axes[0], "per_layer", "layer"), (axes[1], "per_bit", "bit")):
        groups = summary[key]
        names = list(groups)
        rates = np.array([groups[k][cls]["rate"] for k in names])
        lo = rates - np.array([groups[k][cls]["ci"][0] for k in names])
        hi = np.array([groups[k][cls]["ci"][1] for k in names]) - rates
        ax.bar(range(len(names)), rates, yerr=[lo.clip(0), hi.clip(0)], capsize=2, color="tab:red")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_xlabel(label)
        positive = rates[rates > 0]
        scale = ""
        if positive.size and positive.max() > 10 * positive.min():
            ax.set_yscale("symlog", linthresh=float(positive.min()))
            scale = ", symlog"
        top = max(float(np.nanmax(rates + hi.clip(0))) if len(rates) else 0.0, 0.0)
        if top > 0:  # room for the whole interval: an upper bound is part of the figure
            ax.set_ylim(0, top * (1.6 if scale else 1.08))
        ax.set_ylabel(f"{cls} per pair ({level} CI{scale})")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{title}\n{cls} per pair = share of (fault, image) pairs whose outcome is "
                 f"{cls}; interval with the fault as the sampling unit", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path.parent, path.stem)
    path.with_suffix(".svg").unlink(missing_ok=True)  # the campaign keeps the PNG only
