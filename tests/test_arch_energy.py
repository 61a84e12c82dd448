"""The builtin energy estimator against Accelergy's own figures."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
from conftest import REFERENCE, SHARED, needs_shared

from dse.arch import estimate_energy, list_designs, load_arch
from dse.arch.energy import builtin_energy, interp_loglog, storage_energy
from dse.arch.energy_fit import grid_errors, sram_leave_one_out
from dse.arch.spec import StorageLevel
from dse.errors import InputError

GRID = SHARED / "reference" / "accelergy" / "grid.csv"


@needs_shared
@pytest.mark.parametrize("design", ["eyeriss_like", "nvdla_like", "simple_output_stationary",
                                    "simple_weight_stationary"])
def test_builtin_ert_of_shipped_design_within_1pct_of_accelergy(design: str) -> None:
    arch = builtin_energy(load_arch(design, energy="none"))
    assert arch.energy_source == "builtin"
    rows = [r for r in csv.DictReader(open(REFERENCE / "ert_summary.csv")) if r["arch"] == design]
    assert len(rows) >= 20
    for r in rows:
        name = r["component"].split("[")[0]
        target = arch.compute if name == arch.compute.name else arch.level(name)
        ref, est = float(r["energy_pJ"]), target.energy[r["action"]]
        assert est == pytest.approx(ref, rel=0.01, abs=2e-6), (name, r["action"])


@pytest.mark.skipif(not GRID.is_file(), reason=f"Accelergy grid not found at {GRID}")
def test_builtin_estimates_on_the_accelergy_grid() -> None:
    rows = grid_errors(SHARED / "reference")
    errors = [r["rel_error"] for r in rows if r["rel_error"] is not None]
    assert len(errors) > 9000
    assert statistics.median(errors) <= 0.03
    assert max(errors) <= 0.10


@pytest.mark.skipif(not GRID.is_file(), reason=f"Accelergy grid not found at {GRID}")
def test_sram_interpolation_between_grid_depths_is_measured() -> None:
    """CACTI is not smooth in depth: held-out grid depths are predicted only roughly. The figures
    are recorded in docs/energy.md; this guards against the interpolation getting worse."""
    errors = sram_leave_one_out(SHARED / "reference")
    assert len(errors) > 500
    assert statistics.median(errors) < 0.10


def test_all_shipped_designs_estimate_without_accelergy() -> None:
    for name in list_designs():
        arch = estimate_energy(load_arch(name, energy="none"), prefer_accelergy=False)
        assert arch.compute.energy["compute"] > 0
        for lvl in arch.levels:
            assert set(lvl.energy) >= {"read", "write", "update", "leak"}


def test_energy_grows_with_buffer_size_and_shrinks_with_node() -> None:
    def glb(depth: int, tech: str) -> float:
        lvl = StorageLevel(name="glb", component_class="smartbuffer_SRAM", depth=depth, width=64,
                           word_bits=8, technology=tech)
        return storage_energy(lvl, tech)["read"]

    assert glb(1024, "45nm") < glb(16384, "45nm") < glb(65536, "45nm")
    assert glb(4096, "7nm") < glb(4096, "32nm") < glb(4096, "45nm") < glb(4096, "65nm")
    between = glb(4096, "40nm")  # interpolated between 32 and 45 nm
    assert glb(4096, "32nm") < between < glb(4096, "45nm")


def test_interp_loglog_is_exact_for_power_laws() -> None:
    pts = [(16.0, 2.0 * 16 ** 0.78), (64.0, 2.0 * 64 ** 0.78)]
    assert interp_loglog(pts, 32.0) == pytest.approx(2.0 * 32 ** 0.78)
    assert interp_loglog(pts, 8.0) == pytest.approx(2.0 * 8 ** 0.78)


@pytest.mark.parametrize("kwargs, field", [
    (dict(component_class="magic_buffer", depth=64), "glb.class"),
    (dict(component_class="SRAM", depth=64, technology="fast"), "glb.technology"),
    (dict(component_class="DRAM", attributes={"type": "SDR"}), "glb.type"),
])
def test_estimator_rejects_what_it_cannot_price(kwargs: dict, field: str) -> None:
    lvl = StorageLevel(name="glb", width=64, **kwargs)
    with pytest.raises(InputError, match=field):
        storage_energy(lvl, lvl.technology or ("45nm" if lvl.component_class != "DRAM" else None))


@needs_shared
def test_native_spec_with_an_ert_beside_it_uses_that_ert(reference_dir: Path) -> None:
    mapper = reference_dir / "cases/eyeriss_like__resnet18_conv1/mapper"
    arch = load_arch(mapper / "timeloop_input.yaml")
    assert arch.energy_source == "ERT file"
    assert arch.level("shared_glb").energy["read"] == pytest.approx(18.183829)
    assert load_arch("eyeriss_like").energy_source == "builtin"


@pytest.mark.skipif(not GRID.is_file(), reason=f"Accelergy grid not found at {GRID}")
def test_shipped_tables_are_what_the_fit_produces_from_the_reference() -> None:
    from dse.arch.energy import LINEAR_CSV, SRAM_CSV
    from dse.arch.energy_fit import fit

    sram_rows, linear_rows = fit(SHARED / "reference")
    shipped_sram = list(csv.DictReader(open(SRAM_CSV)))
    shipped_linear = list(csv.DictReader(open(LINEAR_CSV)))
    assert len(shipped_sram) == len(sram_rows) and len(shipped_linear) == len(linear_rows)
    for got, want in zip(shipped_linear, linear_rows, strict=True):
        assert got["model"] == want["model"]
        assert float(got["c1"]) == pytest.approx(want["c1"], rel=1e-9, abs=1e-12)
    for got, want in zip(shipped_sram, sram_rows, strict=True):
        assert float(got["energy_pJ"]) == pytest.approx(want["energy_pJ"], rel=1e-9)


@needs_shared
@pytest.mark.parametrize("design", ["eyeriss_like", "nvdla_like", "simple_weight_stationary"])
def test_builtin_area_matches_the_reference_art(design: str) -> None:
    from dse.arch.ert import read_art

    arch = builtin_energy(load_arch(design, energy="none"))
    case = next((REFERENCE / "cases").glob(f"{design}__*"))
    art = read_art(next((case / "mapper").glob("*ART.yaml")))
    assert len(art) >= 7
    for name, ref in art.items():
        node = arch.compute if name == arch.compute.name else arch.level(name)
        assert node.area_um2 == pytest.approx(ref, rel=0.01, abs=1e-6), name
