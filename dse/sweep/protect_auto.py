"""``sweep --protect auto``: protect, per design, the storage level that carries most SDC FIT.

A designer asking "which buffer is worth an ECC?" wants the level whose faults cause most of the
network's silent corruptions on *this* design with *its* mappings. The base sweep measures every
layer's strata (layer x site class x bit group), so the network SDC FIT splits exactly by level:

    share(level) = sum_l c_l x sum_{s at level} M_ls x P_ls / sum_l c_l x sum_s M_ls x P_ls

(``c_l``: the layer's share of the inference's cycles, min-EDP mappings, as the network figure).
The level with the largest share that can take the scheme (an on-chip buffer; the MAC register
is not a storage level) gets SEC-DED per word, and that variant is swept beside the design:
re-mapped (its energy per access and area change) and re-scored by injection (its single-bit
faults are corrected by the code). Each design's variant runs as its own sweep in the same store
(``NAME.protect-auto.DESIGN``), so everything the base sweep stored is reused, and the merged
result reports the variants like any other design point.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

from dse.errors import InputError
from dse.sweep.config import SweepConfig, validate, write_config
from dse.sweep.run import SweepResult, run_sweep

#: The scheme ``--protect auto`` applies (single-bit faults corrected, double detected).
AUTO_SCHEME = "secded"


def level_shares(rows: list[dict[str, Any]], point: str) -> dict[str, float]:
    """Share of the design point's network SDC FIT per storage level (module docstring), summed
    over the scored models; rows are ``SweepResult.rows_with_strata()``. Empty when no layer of
    the point has strata (a classic or disabled resilience side)."""
    mine = [r for r in rows if r["point"] == point and r["rank"] == 0]
    fit: dict[str, float] = defaultdict(float)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in mine:
        by_model[r["model"]].append(r)
    for model_rows in by_model.values():
        cycles = sum(r["cycles"] * r["count"] for r in model_rows)
        for r in model_rows:
            share = r["cycles"] * r["count"] / cycles
            for s in r.get("strata") or ():
                if s["dataspace"] != "MAC" and s["n"]:
                    fit[s["level"]] += share * s["mbit"] * s["sdc"][0] / s["n"]
    total = sum(fit.values())
    return {k: v / total for k, v in sorted(fit.items(), key=lambda kv: -kv[1])} if total else {}


def choose_level(design: str, params: dict[str, Any], shares: dict[str, float]) -> str | None:
    """The level with the largest share that the design can protect with ``AUTO_SCHEME``."""
    from dse.arch import load_arch, make_variant

    base = load_arch(design)
    for level, share in shares.items():
        if share <= 0:
            break
        try:
            make_variant(base, **{**params, "protect": f"{level}={AUTO_SCHEME}"})
        except InputError:
            continue
        return level
    return None


def run_protect_auto(config: SweepConfig, *, progress: bool = True) -> SweepResult:
    """The base sweep, then per design point the variant protecting its top level; one merged
    result (rows, network rows, details, counts) with a note per design saying what was chosen
    and why."""
    if any(v.get("protect") not in (None, "none") for v in config.variant_params()):
        raise InputError("--protect auto chooses the protection itself: drop the other "
                         "protect variants", field="--protect")
    base = run_sweep(config, progress=progress)
    rows = base.rows_with_strata()
    notes, extra = list(base.notes), []
    for point in validate(config):
        params = dict(point.params)
        shares = level_shares(rows, point.label)
        level = choose_level(point.design, params, shares)
        if level is None:
            notes.append(f"protect auto: {point.label}: no measured SDC in a protectable level "
                         "(nothing to protect)")
            continue
        notes.append(f"protect auto: {point.label}: {level} carries {shares[level]:.0%} of the "
                     f"network SDC FIT -> {level}={AUTO_SCHEME}")
        extra.append(_variant_sweep(config, point.design, level, params, progress))
    write_config(config, Path(config.output) / "experiment.yaml")  # the sub-sweeps wrote theirs
    return _merge(base, extra, notes)


def _variant_sweep(config: SweepConfig, design: str, level: str, params: dict[str, Any],
                   progress: bool) -> SweepResult:
    """One protected variant as its own sweep in the same store (the base's work is reused);
    its name says what it protects, so a rerun that chooses another level is another sweep."""
    name = f"{config.name}.protect-auto.{Path(design).stem}.{level}"
    sub = dataclasses.replace(config, name=name, designs=[design],
                              variants=[{**params, "protect": f"{level}={AUTO_SCHEME}"}], grid={})
    return run_sweep(sub, progress=progress)


def _merge(base: SweepResult, extra: list[SweepResult], notes: list[str]) -> SweepResult:
    out = dataclasses.replace(base, notes=notes, computed=dict(base.computed),
                              reused=dict(base.reused), rows=list(base.rows),
                              network=list(base.network), details=dict(base.details),
                              failed=list(base.failed))
    for r in extra:
        out.rows += r.rows
        out.network += r.network
        out.details.update(r.details)
        out.failed += r.failed
        out.wall_s += r.wall_s
        for key in out.computed:
            out.computed[key] += r.computed.get(key, 0)
            out.reused[key] += r.reused.get(key, 0)
    return out


__all__ = ["AUTO_SCHEME", "choose_level", "level_shares", "run_protect_auto"]
