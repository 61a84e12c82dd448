"""``dse evaluate``: Timeloop's numbers on the command line, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CASES, REFERENCE, needs_shared

from dse.cli import main

CASE = CASES[0] if CASES else ""


pytestmark = needs_shared


def _args(case: str, mapping=None) -> list[str]:
    root = REFERENCE / "cases" / case
    return ["evaluate", "--arch", str(root / "model" / "timeloop_input.yaml"),
            "--ert", str(root / "model" / "timeloop-model.ERT.yaml"),
            "--problem", str(root / "inputs" / "problem.yaml"),
            "--mapping", str(mapping or root / "model" / "mapping.yaml")]


def _levels_csv(case: str) -> dict[tuple[str, str], dict[str, str]]:
    import csv
    with open(REFERENCE / "levels.csv") as fh:
        return {(r["level"], r["dataspace"]): r for r in csv.DictReader(fh)
                if r["case"] == case and r["tool"] == "model"}


def test_json_output_has_timeloops_counts(capsys):
    assert main(_args(CASE) + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"energy_pJ", "cycles", "utilization", "macs", "edp", "levels"} <= set(doc)
    rows = _levels_csv(CASE)
    assert doc["energy_pJ"] == pytest.approx(sum(float(r["energy_pJ"]) for r in rows.values()),
                                             rel=1e-9)
    for lv in doc["levels"]:
        row = rows[(lv["level"], lv["dataspace"])]
        assert (lv["reads"], lv["updates"], lv["fills"]) == (
            int(row["reads"]), int(row["updates"]), int(row["fills"]))
    assert doc["edp"] == pytest.approx(doc["energy_pJ"] * 1e-12 * doc["cycles"])


def test_text_summary_reads_like_timeloops(capsys):
    assert main(_args(CASE)) == 0
    out = capsys.readouterr().out
    assert "Summary Stats" in out and "Cycles:" in out and "fJ/Compute" in out


def test_invalid_mapping_is_one_line_naming_the_level(tmp_path):
    root = REFERENCE / "cases" / CASE
    text = (root / "model" / "mapping.yaml").read_text()
    # DRAM's first factor of a non-unit dim doubled: the product is wrong
    bad = tmp_path / "bad.yaml"
    import yaml
    doc = yaml.safe_load(text)
    for entry in doc["mapping"]:
        if entry["target"] == "DRAM" and entry["type"] == "temporal":
            entry["factors"] = " ".join(f"{t[0]}{int(t[1:]) * 2}" if i == 0 else t
                                        for i, t in enumerate(entry["factors"].split()))
    bad.write_text(yaml.safe_dump(doc))
    proc = subprocess.run([sys.executable, "-m", "dse", *_args(CASE, bad)], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "DRAM" in lines[0] and "multiply" in lines[0]
    assert proc.stdout == ""


def test_missing_mapping_file_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dse", *_args(CASE, tmp_path / "none.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "none.yaml" in proc.stderr


@pytest.mark.parametrize("arch", ["design", "v04"])
def test_arch_by_design_name_or_v04_file(arch, capsys):
    root = REFERENCE / "cases" / CASE
    args = _args(CASE)
    args[2] = CASE.split("__")[0] if arch == "design" else str(root / "inputs" / "arch.yaml")
    del args[3:5]  # no --ert: the design's own energies
    assert main(args + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = _levels_csv(CASE)
    assert {(lv["level"], lv["dataspace"]) for lv in doc["levels"]} == set(rows) - {
        ("mac", "(compute)")}
    assert doc["energy_pJ"] > 0 and doc["macs"] == int(rows[("mac", "(compute)")]["computes"])
