"""Tiles behind the exposures agree with real Timeloop runs, and the level structures used by the
random-mapping tests are those of the shipped designs."""

from __future__ import annotations

import re

import pytest
import yaml
from _sites_designs import DESIGNS
from conftest import CASES, REFERENCE, needs_shared

from dse.arch import load_arch
from dse.model import read_mapping
from dse.problems.problem import conv_problem
from dse.resilience.mapped.sites import Nest


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_test_level_structures_are_the_shipped_designs(design):
    arch = load_arch(design)
    assert [lvl.name for lvl in arch.levels] == [name for name, *_ in DESIGNS[design]]
    for lvl, (_, keep, _, _) in zip(arch.levels, DESIGNS[design], strict=True):
        if lvl.constraints.keep is not None:
            assert set(lvl.constraints.keep) == set(keep)


def _utilized(map_txt: str) -> dict[tuple[str, str], int]:
    """``level [ DS:n (n) ... ]`` headers of a Timeloop map.txt -> utilized capacity per tile."""
    out = {}
    for level, body in re.findall(r"^(\w+) \[ (.*?)\]", map_txt, re.M):
        for ds, n in re.findall(r"(\w+):(\d+) \(\d+\)", body):
            out[(level, ds)] = int(n)
    return out


@needs_shared
@pytest.mark.parametrize("case", CASES)
def test_tile_words_equal_timeloop_utilized_capacity(case):
    root = REFERENCE / "cases" / case
    inst = yaml.safe_load((root / "inputs" / "problem.yaml").read_text())["problem"]["instance"]
    problem = conv_problem(**{k: int(v) for k, v in inst.items()})
    arch = load_arch(case.split("__")[0])
    mapping = read_mapping(root / "model" / "mapping.yaml", arch, problem)
    nest = Nest(problem, mapping)
    want = _utilized((root / "model" / "timeloop-model.map.txt").read_text())
    got = {
        (lm.level, ds): nest.tile_words(i, ds)
        for i, lm in enumerate(mapping.levels)
        for ds in lm.keep
    }
    assert got == want
