"""Rebuild the builtin energy tables (``dse/arch/data/*.csv``) from Accelergy's own figures.

Run ``python -m dse.arch.energy_fit ../shared/reference`` to regenerate. Inputs: the Accelergy
grid (``accelergy/grid.csv``) and the reference designs' ERTs (``timeloop/ert_summary.csv``).
What is fitted, and why it is enough (every relation below is exact on the grid):

* ``SRAM`` (CACTI) is not smooth in depth/width (sub-array organisation), so its figures are kept
  as a table over technology × banks × depth × width, plus the SRAM part of the reference designs'
  off-grid buffers (their ERT minus the address generators), and interpolated log-log between.
* Address generators (``intadder``) are linear in their bit count ``ceil(log2(depth))``: fitted
  from ``smartbuffer_SRAM - SRAM``.
* Register files are registers plus one comparator per entry: read = width·r + depth·c, write =
  width·w + depth·c, leak = depth·(width·l_r + l_c), fitted per node.
* Standalone registers are linear in width; MACs linear in adder and multiplier widths; DRAM is a
  per-bit constant by type.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from dse.arch.energy import DATA, LINEAR_CSV, SRAM_CSV, nbits
from dse.arch.energy import sram as sram_energy

ACTIONS = ("read", "write", "leak")
ANCHOR_TOLERANCE = 0.005  # carry an off-grid reference figure only if the grid misses it by more


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _lstsq(features: list[list[float]], values: list[float]) -> list[float]:
    coef, *_ = np.linalg.lstsq(np.array(features, float), np.array(values, float), rcond=None)
    return [float(round(c, 12)) for c in coef]


def fit(reference: Path) -> tuple[list[dict], list[dict]]:
    grid = _rows(reference / "accelergy" / "grid.csv")
    by = defaultdict(dict)  # (class, tech, banks, depth, width, extra) -> {action: pJ}
    for r in grid:
        key = (r["component_class"], r["technology"], r["n_banks"], r["depth"], r["width"],
               r["extra_attributes"] if r["component_class"] in ("DRAM", "intmac") else "")
        by[key][r["action"]] = float(r["energy_pJ"])
        by[key]["area"] = float(r["area_um2"])
    techs = sorted({k[1] for k in by})
    sram: list[dict] = []
    linear: list[dict] = []
    for (cls, tech, banks, depth, width, _), acts in sorted(by.items()):
        if cls == "SRAM":
            for action in (*ACTIONS, "area"):
                sram.append({"technology": tech, "n_banks": int(float(banks)),
                             "depth": int(float(depth)), "width": int(float(width)),
                             "action": action, "energy_pJ": acts[action], "source": "grid"})
    for tech in techs:
        # address generators: smartbuffer_SRAM minus its SRAM (banks 1: n_banks is not passed on)
        feats, add, leak2, area2 = [], [], [], []
        for (cls, t, banks, depth, width, _), acts in by.items():
            if cls != "smartbuffer_SRAM" or t != tech or float(banks) != 1:
                continue
            base = by[("SRAM", t, banks, depth, width, "")]
            feats.append([1.0, nbits(float(depth))])
            add.append(acts["read"] - base["read"])
            leak2.append(acts["leak"] - base["leak"])
            area2.append(acts["area"] - base["area"])
        linear.append(_model(tech, "adder_add", _lstsq(feats, add)))
        linear.append(_model(tech, "adder_leak_pair", _lstsq(feats, leak2)))
        linear.append(_model(tech, "adder_area_pair", _lstsq(feats, area2)))
        # register files: width·r + depth·c (read), width·w + depth·c (write), leak per entry
        fr, vr, fw, vw, fl, vl, va = [], [], [], [], [], [], []
        for (cls, t, _b, depth, width, _), acts in by.items():
            if cls != "regfile" or t != tech:
                continue
            d, w = float(depth), float(width)
            fr.append([w, d])
            vr.append(acts["read"])
            fw.append([w, d])
            vw.append(acts["write"])
            fl.append([d * w, d])
            vl.append(acts["leak"])
            va.append(acts["area"])
        r_bit, cmp_r = _lstsq(fr, vr)
        w_bit, cmp_w = _lstsq(fw, vw)
        l_bit, l_cmp = _lstsq(fl, vl)
        linear.append(_model(tech, "regfile_read", [0.0, r_bit, cmp_r]))
        linear.append(_model(tech, "regfile_write", [0.0, w_bit, cmp_w]))
        linear.append(_model(tech, "regfile_leak", [0.0, l_bit, l_cmp]))
        linear.append(_model(tech, "regfile_area", [0.0, *_lstsq(fl, va)]))
        # standalone registers (class storage, subclass aladdin_register): linear in width
        for action in ("read", "write", "leak", "area"):
            f, v = [], []
            for (cls, t, _b, _d, width, _), acts in by.items():
                if cls == "aladdin_register" and t == tech:
                    f.append([1.0, float(width)])
                    v.append(acts[action])
            linear.append(_model(tech, f"register_{action}", _lstsq(f, v)))
        # MACs: linear in adder and multiplier widths
        for action in ("compute", "leak", "area"):
            f, v = [], []
            for (cls, t, _b, _d, _w, extra), acts in by.items():
                if cls == "intmac" and t == tech:
                    widths = dict(p.split("=") for p in extra.split(";"))
                    f.append([1.0, float(widths["adder_width"]), float(widths["multiplier_width"])])
                    v.append(acts[action])
            linear.append(_model(tech, f"mac_{action}", _lstsq(f, v)))
    # DRAM: energy per bit by type (independent of node)
    per_bit: dict[str, list[float]] = defaultdict(list)
    for (cls, _t, _b, _d, width, extra), acts in by.items():
        if cls == "DRAM":
            per_bit[extra.split("=")[1]].append(acts["read"] / float(width))
    for dram_type, values in sorted(per_bit.items()):
        linear.append(_model("any", f"dram_{dram_type}", [0.0, float(np.median(values)), 0.0]))
    sram.extend(_ert_anchors(reference, linear, sram))
    return sram, linear


def _model(tech: str, name: str, coef: list[float]) -> dict:
    coef = list(coef) + [0.0] * (3 - len(coef))
    return {"technology": tech, "model": name, "c0": coef[0], "c1": coef[1], "c2": coef[2]}


def _ert_anchors(reference: Path, linear: list[dict], sram: list[dict]) -> list[dict]:
    """The SRAM part of the reference designs' smartbuffer_SRAM buffers that lie off the grid
    (their Accelergy ERT minus the address generators), so the table carries those figures too."""
    from dse.arch.loader import load_arch  # local: the fit runs offline, after the package loads

    models = {(m["technology"], m["model"]): m for m in linear}
    grid_table: dict = defaultdict(lambda: defaultdict(list))
    for r in sram:
        grid_table[(r["technology"], r["n_banks"], r["action"])][r["width"]].append(
            (r["depth"], r["energy_pJ"]))
    grid_table = {k: {w: sorted(v) for w, v in ws.items()} for k, ws in grid_table.items()}
    on_grid = {(r["technology"], r["n_banks"], r["depth"], r["width"]) for r in sram}
    from dse.arch.ert import read_art

    ert = defaultdict(dict)
    for r in _rows(reference / "timeloop" / "ert_summary.csv"):
        ert[(r["arch"], r["component"].split("[")[0])][r["action"]] = float(r["energy_pJ"])
    anchors = []
    cases = sorted((reference / "timeloop" / "cases").iterdir())
    seen_arch = set()
    for case in cases:
        design = case.name.split("__")[0]
        if design in seen_arch:
            continue
        seen_arch.add(design)
        arch = load_arch(case / "inputs" / "arch.yaml", energy="none")
        arts = sorted((case / "mapper").glob("*ART.yaml"))
        art = read_art(arts[0]) if arts else {}
        for lvl in arch.levels:
            if lvl.component_class != "smartbuffer_SRAM" or lvl.technology is None:
                continue
            key = (lvl.technology, 1, lvl.depth, lvl.width)
            if key in on_grid or (design, lvl.name) not in ert:
                continue
            on_grid.add(key)
            nb = nbits(lvl.depth)
            add = models[(lvl.technology, "adder_add")]
            pair = models[(lvl.technology, "adder_leak_pair")]
            acts = ert[(design, lvl.name)]
            sub = {"read": acts["read"] - (add["c0"] + add["c1"] * nb),
                   "write": acts["write"] - (add["c0"] + add["c1"] * nb),
                   "leak": acts["leak"] - (pair["c0"] + pair["c1"] * nb)}
            if lvl.name in art:
                area = models[(lvl.technology, "adder_area_pair")]
                sub["area"] = art[lvl.name] - (area["c0"] + area["c1"] * nb)
            misses = [abs(sram_energy(lvl.technology, 1, lvl.depth, lvl.width, a, grid_table)
                          - v) / v for a, v in sub.items() if a != "leak"]
            if max(misses) <= ANCHOR_TOLERANCE:
                continue
            for action, value in sub.items():
                anchors.append({"technology": lvl.technology, "n_banks": 1, "depth": lvl.depth,
                                "width": lvl.width, "action": action,
                                "energy_pJ": round(value, 9), "source": f"ert:{design}"})
    return anchors


def write_tables(sram: list[dict], linear: list[dict]) -> None:
    DATA.mkdir(exist_ok=True)
    for path, rows in ((SRAM_CSV, sram), (LINEAR_CSV, linear)):
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)




# ---------------------------------------------------------------------------------------------
# Checking the tables against Accelergy (used by the tests and by the docs/energy.md report)


def grid_level(row: dict[str, str]):
    """A StorageLevel or ComputeLevel for one grid.csv configuration."""
    from dse.arch.spec import ComputeLevel, StorageLevel

    cls, extra = row["component_class"], row["extra_attributes"]
    attrs = dict(p.split("=", 1) for p in extra.split(";") if "=" in p)
    if cls == "intmac":
        return ComputeLevel(name="mac", component_class="intmac", technology=row["technology"],
                            attributes={k: int(v) for k, v in attrs.items()
                                        if k.endswith("_width")})
    if cls == "aladdin_register":
        cls, attrs = "storage", {"subclass": "aladdin_register"}
    depth = int(float(row["depth"])) if row["depth"] else None
    return StorageLevel(name=cls, component_class=cls, depth=depth, width=int(row["width"]),
                        word_bits=int(row["datawidth"]), n_banks=int(float(row["n_banks"] or 1)),
                        technology=row["technology"], attributes=attrs)


def grid_errors(reference: Path) -> list[dict]:
    """Relative error of the builtin estimate for every grid row with a non-negligible energy
    (leak figures below 1e-4 pJ carry 1-2 significant digits after Accelergy's rounding), and
    of the area (µm²) of every grid configuration (as action ``"area"``)."""
    from dse.arch.energy import compute_energy, storage_energy
    from dse.arch.spec import ComputeLevel

    out = []
    cache: dict = {}
    for r in _rows(reference / "accelergy" / "grid.csv"):
        key = tuple(r[k] for k in ("component_class", "technology", "depth", "width",
                                   "datawidth", "n_banks", "extra_attributes"))
        fresh = key not in cache
        if fresh:
            lvl = grid_level(r)
            cache[key] = (compute_energy(lvl, r["technology"]) if isinstance(lvl, ComputeLevel)
                          else storage_energy(lvl, r["technology"]))
        checks = [(r["action"], float(r["energy_pJ"]))]
        if fresh:  # one area check per configuration
            checks.append(("area", float(r["area_um2"])))
        for action, ref in checks:
            est = cache[key][action]
            err = abs(est - ref) / ref if ref >= 1e-4 else None
            out.append({**r, "action": action, "reference": ref, "estimate": est,
                        "rel_error": err})
    return out


def sram_leave_one_out(reference: Path) -> list[float]:
    """Interpolation error for SRAM sizes the table has not seen: each interior depth of each
    (node, banks, width, action) is predicted from the table without it."""
    from dse.arch.energy import interp_loglog

    series = defaultdict(list)
    for r in _rows(SRAM_CSV):
        if r["source"] == "grid":
            key = (r["technology"], r["n_banks"], r["width"], r["action"])
            series[key].append((int(r["depth"]), float(r["energy_pJ"])))
    errors = []
    for pts in series.values():
        pts.sort()
        for i in range(1, len(pts) - 1):
            depth, ref = pts[i]
            if ref < 1e-4:
                continue
            est = interp_loglog(pts[:i] + pts[i + 1:], depth)
            errors.append(abs(est - ref) / ref)
    return errors


def anchors_from_grid_only() -> list[dict]:
    """How far the grid alone would have put the off-grid reference buffers (the rows the table
    carries from ert_summary.csv): the honest error for a size Accelergy was never asked about."""
    grid_only: dict = defaultdict(lambda: defaultdict(list))
    anchors = []
    for r in _rows(SRAM_CSV):
        if r["source"] == "grid":
            key = (r["technology"], int(r["n_banks"]), r["action"])
            grid_only[key][int(r["width"])].append((int(r["depth"]), float(r["energy_pJ"])))
        else:
            anchors.append(r)
    table = {k: {w: sorted(v) for w, v in ws.items()} for k, ws in grid_only.items()}
    out = []
    for r in anchors:
        ref = float(r["energy_pJ"])
        est = sram_energy(r["technology"], int(r["n_banks"]), int(r["depth"]), int(r["width"]),
                   r["action"], table)
        out.append({**r, "grid_only_pJ": est,
                    "rel_error": abs(est - ref) / ref if ref >= 1e-4 else None})
    return out


def _stats(values: list[float]) -> str:
    if not values:
        return "| – | – | – |"
    arr = np.array(values)
    return f"| {np.median(arr):.2e} | {np.percentile(arr, 90):.2e} | {arr.max():.2e} |"


def report(reference: Path) -> str:
    """docs/energy.md: how the builtin estimator is built and how far it is from Accelergy."""
    from dse.arch.designs import list_designs
    from dse.arch.energy import builtin_energy
    from dse.arch.ert import read_art
    from dse.arch.loader import load_arch

    lines = [
        "# Energy and area tables: builtin estimator vs Accelergy", "",
        "Generated by `python -m dse.arch.energy_fit ../shared/reference --report docs/energy.md`"
        " (the same command with no `--report` rebuilds `dse/arch/data/*.csv`).", "",
        "dse prices every action with Accelergy when it is installed and configured (see",
        "`dse/arch/accelergy_backend.py`; energy_source=`accelergy`). Otherwise the builtin",
        "estimator (`dse/arch/energy.py`, energy_source=`builtin`) composes each component class",
        "the way its Accelergy class does, from compact tables fitted to Accelergy 0.4's own",
        "output (`../shared/reference/accelergy/grid.csv`, `../shared/reference/timeloop/"
        "ert_summary.csv`):", "",
        "* `smartbuffer_SRAM` = CACTI SRAM (table over node x banks x depth x width, log-log",
        "  interpolation) + 2 address generators (linear in `ceil(log2 depth)` bits);",
        "* `smartbuffer_RF` = register file of `max(64,d) x max(32,w)`, dynamic energy scaled by",
        "  `(w/w')(d/d')^0.78`, leakage by area, + address generators;",
        "* `regfile` = width x register + depth x comparator; `storage`/`aladdin_register` =",
        "  linear in width; `intmac` = linear in adder / multiplier width; `DRAM` = pJ/bit by type",
        "  (LPDDR4 8, LPDDR 40, DDR3 70, GDDR5 14, HBM2 3.9).",
        "* Nodes other than 65/45/32/7 nm: linear interpolation in feature size (outside: scaled",
        "  in proportion to feature size). Unknown classes are an error naming the level.",
        "* `inter_*_spatial` dummy levels get Accelergy's dummy table (1 pJ read/write/update, as",
        "  in the nvdla_like ERT); they bypass everything, so they are never charged.", "",
        "All errors are relative, |builtin - Accelergy| / Accelergy. Leak figures under 1e-4 pJ",
        "are skipped in the statistics: Accelergy rounds to 6 decimals, leaving 1-2 digits.", "",
        "## Shipped designs vs the reference ERT (`ert_summary.csv`)", "",
        "| design | component-actions | max energy error | components | max area error (ART) |",
        "|---|---|---|---|---|",
    ]
    ert = _rows(reference / "timeloop" / "ert_summary.csv")
    for design in list_designs():
        arch = builtin_energy(load_arch(design, energy="none"))
        errs = []
        for r in (r for r in ert if r["arch"] == design):
            name = r["component"].split("[")[0]
            node = arch.compute if name == arch.compute.name else arch.level(name)
            ref, est = float(r["energy_pJ"]), node.energy[r["action"]]
            errs.append(abs(est - ref) / ref if ref >= 1e-4 else 0.0)
        case = next((reference / "timeloop" / "cases").glob(f"{design}__*"))
        art = read_art(next((case / "mapper").glob("*ART.yaml")))
        area_errs = []
        for name, ref in art.items():
            node = arch.compute if name == arch.compute.name else arch.level(name)
            area_errs.append(abs(node.area_um2 - ref) / ref if ref > 0 else node.area_um2)
        lines.append(f"| {design} | {len(errs)} | {max(errs):.2e} | {len(area_errs)} | "
                     f"{max(area_errs):.2e} |")
    rows = grid_errors(reference)
    errs = [r["rel_error"] for r in rows if r["rel_error"] is not None]
    lines += ["", "## The Accelergy grid (`grid.csv`, 10,048 rows)", "",
              f"All energies >= 1e-4 pJ and all areas > 0: n = {len(errs)}, median "
              f"{np.median(errs):.2e}, max {max(errs):.2e} (bounds: median <= 3%, max <= 10%).",
              "", "| class | action | n | median | p90 | max |", "|---|---|---|---|---|---|"]
    groups: dict = defaultdict(list)
    for r in rows:
        if r["rel_error"] is not None:
            groups[(r["component_class"], r["action"])].append(r["rel_error"])
    for (cls, action), values in sorted(groups.items()):
        lines.append(f"| {cls} | {action} | {len(values)} {_stats(values)}")
    loo = sram_leave_one_out(reference)
    lines += ["", "## Sizes Accelergy was not asked about", "",
              "The SRAM figures are CACTI's and are not smooth in depth (sub-array organisation",
              "changes), so between tabulated sizes the table is only a guide. Leave-one-out over",
              "the grid (each interior depth predicted from its neighbours):", "",
              "| held-out points | median | p90 | max |", "|---|---|---|---|",
              f"| {len(loo)} {_stats(loo)}", "",
              "So reference-design SRAM buffers that lie off the grid and that the grid misses by",
              f"more than {ANCHOR_TOLERANCE:.1%} are carried in the table from their Accelergy",
              "ERT (rows with source `ert:<design>` in `dse/arch/data/sram_energy.csv`). From",
              "the grid alone they would have been:", "",
              "| node | depth x width | action | Accelergy (SRAM part; pJ or µm²) | grid only "
              "| error |",
              "|---|---|---|---|---|---|"]
    for r in anchors_from_grid_only():
        err = "–" if r["rel_error"] is None else f"{r['rel_error']:.1%}"
        lines.append(f"| {r['technology']} | {r['depth']} x {r['width']} | {r['action']} | "
                     f"{float(r['energy_pJ']):.6g} | {r['grid_only_pJ']:.6g} | {err} |")
    lines += ["", "Register files, registers, MACs, DRAM and the address generators follow",
              "their fitted relations exactly (see the grid table), so off-grid sizes of those",
              "(e.g. eyeriss_like's 12- and 192-entry spads) need no carried figures."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    args = sys.argv[1:]
    out = None
    if "--report" in args:
        i = args.index("--report")
        out = Path(args[i + 1])
        del args[i:i + 2]
    ref = Path(args[0] if args else "../shared/reference")
    if out is None:
        write_tables(*fit(ref))
        print(f"wrote {SRAM_CSV} and {LINEAR_CSV}")
    else:
        out.write_text(report(ref))
        print(f"wrote {out}")
