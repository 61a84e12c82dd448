"""Run a spiking fault list resumably, and write its table per target and its plot.

Files in the campaign directory: ``faultlist.csv`` (the list, written before anything runs),
``results.csv`` (the list's columns plus :data:`~dse.resilience.snn.outcomes.COUNTS` and
``n_injections``, one row appended and flushed per finished fault: a killed run loses at most the
faults in flight and a rerun skips the rest; a half-written last line is cut on resume),
``table.csv`` / ``table.txt`` (the seed's table per target) and ``sdc1.png``.

With ``workers > 1`` chunks run in spawned processes, each with its own engine rebuilt from the
model's zoo name or import path and its state dict (snntorch neurons hold local functions that do
not pickle); outcomes do not depend on who computed them (the engines are exact), so the files end
the same.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import os
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dse.errors import InputError
from dse.resilience.snn.faultlist import FAULT_COLUMNS, fault_values, parse_row
from dse.resilience.snn.network import SnnFault, faulty_param
from dse.resilience.snn.outcomes import COUNTS, RATES, classify
from dse.workers import process_pool

RESULT_COLUMNS = (*FAULT_COLUMNS, "n_injections", *COUNTS)


def _repair(path: Path) -> None:
    """Cut a half-written last line (no newline) left by a kill."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def read_results(path: Path, faults: Sequence[SnnFault],
                 ahead: bool = False) -> dict[int, np.ndarray]:
    """Counts of the faults an earlier run finished; InputError when they are another list's.
    ``ahead``: rows past the end of ``faults`` are left for later (a growing adaptive list)."""
    if not path.exists():
        return {}
    _repair(path)
    lines = list(csv.reader(path.read_text().splitlines()))
    done: dict[int, np.ndarray] = {}
    first = faults[0] if faults else None
    for n, rec in enumerate(lines[1:], start=2):
        if len(rec) != len(RESULT_COLUMNS):
            raise InputError(f"line {n}: {len(rec)} fields, expected {len(RESULT_COLUMNS)}",
                             file=path)
        inj, fault = parse_row(rec, path, n, first.kind, first.fmt)
        if ahead and inj >= len(faults):
            continue
        if inj >= len(faults) or faults[inj] != fault:
            raise InputError(f"Injection {inj} does not match the fault list; use another --out",
                             file=path, field="Injection")
        try:
            done[inj] = np.array([int(v) for v in rec[len(FAULT_COLUMNS) + 1:]], dtype=np.int64)
        except ValueError:
            raise InputError(f"line {n}: malformed counts", file=path) from None
    return done


def run(engine, faults: Sequence[SnnFault], labels: torch.Tensor, out_dir: str | Path, *,
        chunk: int = 256, workers: int = 1, progress: bool = False, ahead: bool = False,
        model_spec: tuple[str, dict] | None = None) -> np.ndarray:
    """Counts (faults, len(COUNTS)) for every fault, running those not yet in ``results.csv``
    (``ahead``: see :func:`read_results`). ``model_spec`` (zoo name or import path, builder
    options) lets worker processes rebuild the model (``workers > 1``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    done = read_results(path, faults, ahead)
    pending = [i for i in range(len(faults)) if i not in done]
    images = engine.x.shape[1]
    with open(path, "a", newline="") as fh:
        w = csv.writer(fh)
        if fh.tell() == 0:
            w.writerow(RESULT_COLUMNS)
        bar = tqdm(total=len(faults), initial=len(done), disable=None if progress else True, unit="fault")
        parts = [pending[s:s + chunk] for s in range(0, len(pending), chunk)]
        for part, scores in _scores(engine, faults, parts, workers, model_spec):
            counts = classify(engine.golden.scores, scores, labels)
            for i, c in zip(part, counts, strict=True):
                done[i] = c
                w.writerow([*fault_values(i, faults[i]), images, *c.tolist()])
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(part))
        bar.close()
    return np.stack([done[i] for i in range(len(faults))]) if faults else np.zeros((0, len(COUNTS)))


def _scores(engine, faults: Sequence[SnnFault], parts: list[list[int]], workers: int,
            model_spec: tuple[str, dict] | None) -> Iterator[tuple[list[int], torch.Tensor]]:
    if workers <= 1 or len(parts) <= 1 or model_spec is None:
        for part in parts:
            yield part, engine.scores([faults[i] for i in part])
        return
    state = {k: v.detach().clone() for k, v in engine.model.state_dict().items()}
    pool = process_pool(min(workers, len(parts)), _start,
                         (type(engine), model_spec, state, engine.x))
    try:
        futures = {pool.submit(_part, [faults[i] for i in part]): part for part in parts}
        for fut in cf.as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_ENGINE = None  # a pool worker's own engine


def _start(cls, model_spec: tuple[str, dict], state: dict, x: torch.Tensor) -> None:
    from dse.problems import zoo

    global _ENGINE
    model = zoo.get_model(model_spec[0], **model_spec[1])
    model.load_state_dict(state)
    _ENGINE = cls(model.eval(), x)


def _part(faults: list[SnnFault]) -> torch.Tensor:
    return _ENGINE.scores(faults)


def beta_facts(model, faults: Sequence[SnnFault]) -> dict[str, dict[str, int]]:
    """Per beta site: faults whose faulty beta the forward clamp to [0, 1] changes (``clamped``)
    and those it turns back into the golden clamped beta (``clamp_masked``: masked by the clamp,
    whatever the images)."""
    out: dict[str, dict[str, int]] = {}
    for f in faults:
        if f.target != "beta":
            continue
        module = model.get_submodule(f.layer)
        bad = faulty_param(module, f)[f.index]
        good = module.beta.detach()[f.index]
        entry = out.setdefault(f.site, {"clamped": 0, "clamp_masked": 0})
        entry["clamped"] += int(not 0 <= float(bad) <= 1)
        entry["clamp_masked"] += int(bool(bad != good) and
                                     bool(bad.clamp(0, 1) == good.clamp(0, 1)))
    return out


def by_site(faults: Sequence[SnnFault], counts: np.ndarray) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(faults):
        groups.setdefault(f.site, []).append(i)
    return {s: counts[idx] for s, idx in groups.items()}


def by_bit(faults: Sequence[SnnFault], counts: np.ndarray) -> dict[int, np.ndarray]:
    groups: dict[int, list[int]] = {}
    for i, f in enumerate(faults):
        groups.setdefault(f.bits[0], []).append(i)
    return {b: counts[groups[b]] for b in sorted(groups)}


def _cell(value) -> str:
    """Significant figures, never rounded to zero (a rate of 3e-6 stays 3e-6)."""
    from dse.units import estimate, num

    if isinstance(value, tuple):
        return estimate(*value)
    return num(value) if isinstance(value, float) else str(value)


def write_table(tab: dict[str, dict], out: Path, title: str) -> str:
    """``table.csv`` (rate, lo, hi columns) and ``table.txt`` (the seed's layout: one column per
    target, one row per figure); returns the text."""
    rows = ["faults", "fault_image_pairs", *RATES, "acc", "clamped", "clamp_masked"]
    with open(out / "table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["site", "faults", "fault_image_pairs",
                    *[f"{r}{s}" for r in RATES for s in ("", "_lo", "_hi")], "acc", "clamped",
                    "clamp_masked"])
        for site, r in tab.items():
            w.writerow([site, r["faults"], r["fault_image_pairs"], *[v for k in RATES for v in r[k]],
                        r["acc"], r.get("clamped", ""), r.get("clamp_masked", "")])
    sites = list(tab)
    cells = [_cell(v) for s in sites for v in tab[s].values()]
    width = max(*(len(c) + 2 for c in cells), *(len(s) + 2 for s in sites))
    per = max(1, (100 - 18) // width)  # as many sites side by side as fit 100 columns
    lines = [*textwrap.wrap(title, 100), "rates: share of (fault, image) pairs, "
             "[interval] with the fault as the unit", ""]
    for start in range(0, len(sites), per):
        part = sites[start:start + per]
        lines.append(f"{'':18s}" + "".join(f"{s:>{width}s}" for s in part))
        for name in rows:
            if all(name not in tab[s] for s in part):
                continue
            lines.append(f"{name:18s}" + "".join(
                f"{_cell(tab[s][name]) if name in tab[s] else '':>{width}s}" for s in part))
        lines.append("")
    text = "\n".join(lines)
    (out / "table.txt").write_text(text)
    return text


def plot(tab: dict[str, dict], per_bit: dict[int, tuple], path: Path, title: str,
         confidence: float = 0.99) -> None:
    """PNG: SDC-1 per (fault, image) pair with its interval per target (left) and per bit position
    (right). A panel whose non-zero rates span a decade or more gets a symmetric-log axis, so
    a mantissa bit stays visible beside the exponent's top bit (zero stays zero); labels are
    checked for overlap as every dse figure is (:func:`dse.figures.save_figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dse.figures import save_figure

    level = f"{100 * confidence:g}% CI"
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    panels = ((axes[0], list(tab), [tab[s]["SDC_1"] for s in tab], "target (layer.target)"),
              (axes[1], [str(b) for b in per_bit], list(per_bit.values()), "bit position"))
    for ax, names, vals, label in panels:
        rate = np.array([v[0] for v in vals])
        err = [np.clip(rate - [v[1] for v in vals], 0, None),
               np.clip(np.array([v[2] for v in vals]) - rate, 0, None)]
        ax.bar(range(len(names)), rate, yerr=err, capsize=2, color="tab:red")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_xlabel(label)
        positive = rate[rate > 0]
        scale = ""
        if positive.size and positive.max() > 10 * positive.min():
            ax.set_yscale("symlog", linthresh=float(positive.min()))
            scale = ", symlog"
        top = max(float(np.nanmax(rate + err[1])) if len(rate) else 0.0, 0.0)
        if top > 0:  # room for the whole interval: an upper bound is part of the figure
            ax.set_ylim(0, top * (1.6 if scale else 1.08))
        ax.set_ylabel(f"SDC-1 per pair ({level}{scale})")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{title}\nSDC-1 per pair = share of (fault, image) pairs whose top-1 "
                 "class changed; interval with the fault as the sampling unit", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path.parent, path.stem)
    path.with_suffix(".svg").unlink(missing_ok=True)  # the campaign keeps the PNG only
