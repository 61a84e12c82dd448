"""What a map task stores: the kept mappings' map.yaml text."""

from __future__ import annotations

import pytest
import yaml

from dse.arch.loader import load_arch
from dse.mapper import search
from dse.model.mapfile import mapping_directives
from dse.problems.problem import conv_problem
from dse.sweep.tasks import keep_mappings, mapping_text, read_mapping_text


@pytest.mark.parametrize("design", ["eyeriss_like", "nvdla_like"])
def test_mapping_text_is_yaml_safe_dump_byte_for_byte(design: str) -> None:
    """The stored text comes from libyaml's emitter (where PyYAML has it): it must be exactly
    what ``yaml.safe_dump`` writes, or stored rows and their keys would change with the build."""
    arch = load_arch(design)
    problem = conv_problem(C=16, M=32, R=3, S=3, P=14, Q=14)
    result = search(problem, arch, search="hybrid", max_evals=300, time_limit=60, workers=1,
                    seed=3, top_k=8)
    kept = keep_mappings((result.best, result.best_stats), list(result.pareto), result.top,
                         use_pareto=True, top_k=8, problem=problem)
    assert len(kept) >= 3
    mappings = [result.best] + [m for m, _ in result.pareto] + [m for m, _ in result.top]
    for mapping in mappings:
        text = mapping_text(mapping, problem)
        assert text == yaml.safe_dump({"mapping": mapping_directives(mapping, problem)},
                                      sort_keys=False)
        assert read_mapping_text(text, arch, problem) == mapping


def test_mapping_text_quotes_awkward_names_as_safe_dump_does() -> None:
    """Names a design could carry that YAML must quote or escape (colons, leading blanks,
    booleans, numbers, non-ASCII, empty): the same text as the pure-Python emitter."""
    from dse.sweep import tasks

    names = ["a: b", " lead", "yes", "1e3", "Ünïcode", "", "x#y", "- dash", "null", "tab\there"]
    data = {"mapping": [{"target": n, "type": "datatype", "keep": [n, "W"], "bypass": []}
                        for n in names]}
    assert yaml.dump(data, Dumper=tasks._SAFE_DUMPER, sort_keys=False) == \
        yaml.safe_dump(data, sort_keys=False)
