"""Timeloop mapping files in and out, and mappings the hardware cannot run."""

from __future__ import annotations

import random

import pytest
import yaml
from _model_random import valid_mapping

from dse.arch import load_arch
from dse.errors import InputError, InvalidMapping
from dse.model import evaluate, evaluate_batch, read_mapping, write_mapping
from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.problems.problem import conv_problem

LAYER = conv_problem(C=64, M=64, R=3, S=3, P=56, Q=56)


@pytest.fixture(scope="module")
def eyeriss():
    return load_arch("eyeriss_like")


@pytest.mark.parametrize("design", ["eyeriss_like", "nvdla_like", "simple_weight_stationary"])
def test_written_mapping_reads_back_equal_with_inner_first_permutations(design, tmp_path):
    arch = load_arch(design)
    rng = random.Random(2)
    for k in range(5):
        mapping = valid_mapping(LAYER, arch, rng)
        path = write_mapping(mapping, tmp_path / f"m{k}.yaml", LAYER)
        back = read_mapping(path, arch, LAYER)
        # spatial loops of one level are unordered (distinct dims; X is written inner of Y)
        assert [(lm.level, lm.temporal, sorted(lm.spatial, key=str), lm.keep)
                for lm in back.levels] == [(lm.level, lm.temporal, sorted(lm.spatial, key=str),
                                            lm.keep) for lm in mapping.levels]
        assert write_mapping(back, tmp_path / "again.yaml", LAYER).read_text() == path.read_text()
        assert evaluate(LAYER, arch, back).energy_pJ == evaluate(LAYER, arch, mapping).energy_pJ
        doc = yaml.safe_load(path.read_text())["mapping"]
        dram = next(e for e in doc
                    if e["target"] == arch.levels[0].name and e["type"] == "temporal")
        outer_first = [lp.dim for lp in mapping.levels[0].temporal]
        inner_first = [d for d in dram["permutation"] if d in outer_first]
        assert inner_first == outer_first[::-1]


def _flat_mapping(arch, **where) -> Mapping:
    """Every loop at DRAM except those named: ``level=[(dim, factor, axis or None), ...]``."""
    placed: dict[str, int] = {}
    levels = []
    for lvl in arch.levels[1:]:
        loops = where.get(lvl.name, [])
        temporal = [Loop(d, f) for d, f, ax in loops if ax is None]
        spatial = [Loop(d, f, True, ax) for d, f, ax in loops if ax]
        for d, f, _ in loops:
            placed[d] = placed.get(d, 1) * f
        keep = frozenset() if lvl.dummy else frozenset(lvl.constraints.keep or ())
        levels.append(LevelMapping(lvl.name, temporal, spatial, keep))
    dram = [Loop(d, LAYER.instance[d] // placed.get(d, 1)) for d in LAYER.dimensions
            if LAYER.instance[d] // placed.get(d, 1) > 1]
    return Mapping([LevelMapping(arch.levels[0].name, dram, [],
                                 frozenset(ds.name for ds in LAYER.dataspaces))] + levels)


def _rejected(arch, mapping, level: str, words: str) -> None:
    with pytest.raises(InvalidMapping) as err:
        evaluate(LAYER, arch, mapping)
    assert err.value.level == level and words in str(err.value) and str(err.value).startswith(level)
    batch = evaluate_batch(LAYER, arch, [mapping])
    assert not batch.valid[0] and batch.reason[0].startswith(f"{level}:")


def test_baseline_of_the_invalid_cases_is_valid(eyeriss):
    mapping = _flat_mapping(eyeriss, psum_spad=[("M", 16, None)])
    assert evaluate(LAYER, eyeriss, mapping).cycles == LAYER.macs


def test_over_capacity_names_the_level(eyeriss):
    # psum_spad holds 16 outputs; M16 x P2 needs 32
    _rejected(eyeriss, _flat_mapping(eyeriss, psum_spad=[("M", 16, None), ("P", 2, None)]),
              "psum_spad", "capacity")


def test_over_fanout_names_the_level(eyeriss):
    # inter_PE_column_spatial fans out 14 on X
    _rejected(eyeriss, _flat_mapping(eyeriss, inter_PE_column_spatial=[("M", 16, "X")]),
              "inter_PE_column_spatial", "fanout")


def test_wrong_factor_product_names_the_level(eyeriss):
    mapping = _flat_mapping(eyeriss, psum_spad=[("M", 16, None)])
    mapping.levels[0].temporal = [lp for lp in mapping.levels[0].temporal if lp.dim != "P"]
    mapping.levels[0].temporal.append(Loop("P", 28))
    _rejected(eyeriss, mapping, "DRAM", "P")


@pytest.mark.parametrize("text, field", [
    ("mapping:\n  - target: nowhere\n    type: temporal\n    factors: C1\n", "mapping[0].target"),
    ("mapping:\n  - target: DRAM\n    type: temporal\n    factors: C-2\n", "mapping[0].factors"),
    ("mapping:\n  - target: DRAM\n    type: temporal\n    factors: C1\n    permutation: XYZ\n",
     "mapping[0].permutation"),
    ("mapping: 3\n", "mapping"),
])
def test_bad_mapping_file_names_file_and_field(text, field, tmp_path, eyeriss):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_mapping(path, eyeriss, LAYER)
    assert err.value.field == field and str(path) in str(err.value)
