"""The campaign's faulty layer outputs (deltas on the footprint) equal a whole-layer recompute."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dse.arch import load_arch
from dse.errors import InvalidMapping
from dse.model import LevelMapping, Loop, Mapping
from dse.problems.models import DigitsCNN
from dse.problems.problem import conv_problem
from dse.resilience.inference import FastEngine
from dse.resilience.mapped.campaign import (
    LayerCapture,
    draw_campaign,
    draw_fault,
    live_floor,
    mapping_resilience,
    patched_outputs,
    run_faults,
    site_scales,
    site_summary,
)
from dse.resilience.mapped.exposure import exposures
from dse.resilience.mapped.sites import Nest
from dse.resilience.oracles.reinference import naive_layer_output, naive_sdc1
from dse.resilience.stats import z_value

ALL = frozenset({"Weights", "Inputs", "Outputs"})


def eyeriss_mapping() -> Mapping:
    """A valid Eyeriss-like mapping of DigitsCNN's features.2 (16 -> 32 channels, 3x3, 8x8)."""
    return Mapping(
        [
            LevelMapping("DRAM", [Loop("M", 2)], [], ALL),
            LevelMapping(
                "shared_glb",
                [Loop("C", 4), Loop("Q", 8), Loop("P", 2)],
                [],
                frozenset({"Inputs", "Outputs"}),
            ),
            LevelMapping("inter_PE_column_spatial", [], [Loop("P", 4, True, "X")], frozenset()),
            LevelMapping(
                "inter_PE_spatial",
                [],
                [Loop("M", 4, True, "Y"), Loop("S", 3, True, "Y")],
                frozenset(),
            ),
            LevelMapping("ifmap_spad", [], [], frozenset({"Inputs"})),
            LevelMapping("weights_spad", [Loop("R", 3), Loop("C", 4)], [], frozenset({"Weights"})),
            LevelMapping("psum_spad", [Loop("M", 4)], [], frozenset({"Outputs"})),
        ]
    )


def test_footprint_deltas_equal_whole_layer_recompute_for_every_site_class():
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    images = torch.randn(3, 1, 8, 8)
    problem = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)
    nest = Nest(problem, eyeriss_mapping())
    sites = exposures(nest, load_arch("eyeriss_like"))
    assert {(s.level_name, s.dataspace) for s in sites} == {
        ("shared_glb", "Inputs"),
        ("shared_glb", "Outputs"),
        ("ifmap_spad", "Inputs"),
        ("weights_spad", "Weights"),
        ("psum_spad", "Outputs"),
        ("mac", "MAC"),
    }
    capture = LayerCapture(FastEngine(model, images), "features.2", problem)
    scales = site_scales(sites, capture.ops, 8)
    rng = np.random.default_rng(5)
    multi = 0
    for i, site in enumerate(sites):
        for _ in range(10):
            fault = draw_fault(nest, site, i, capture.ops, scales[i], rng)
            pos, values = patched_outputs(capture, fault)
            for image in range(len(images)):
                naive = naive_layer_output(capture, fault, image).reshape(-1)
                clean = capture.outputs[image].reshape(-1)
                fast = clean.clone()
                fast[pos] = values[image]
                changed = set(torch.nonzero(naive != clean).reshape(-1).tolist())
                assert changed <= set(fault.positions.tolist())
                assert torch.allclose(fast, naive, rtol=1e-5, atol=1e-6)
            multi += fault.footprint > 1
    assert multi > 5  # multicast / reused words were exercised, not only single outputs


def test_campaign_outcomes_equal_naive_full_reinference_and_summarize():
    torch.manual_seed(1)
    model = DigitsCNN().eval()
    images = torch.randn(8, 1, 8, 8)
    problem = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)
    arch = load_arch("eyeriss_like")
    nest = Nest(problem, eyeriss_mapping())
    sites = exposures(nest, arch, word_bits=16)
    engine = FastEngine(model, images)
    capture = LayerCapture(engine, "features.2", problem)
    faults = draw_campaign(nest, sites, capture.ops, 20, seed=3, fmt="bf16")
    fast = run_faults(engine, "features.2", capture, faults)
    naive = naive_sdc1(model, "features.2", capture, images, faults)
    assert fast.shape == (len(faults), 8) and np.array_equal(fast, naive)
    assert fast.any()  # some faults do flip the top-1 of this (untrained) model
    result = site_summary(sites, faults, fast, z_value(0.95), 1000.0, live_floor(capture))
    assert sum(s.exposure_share for s in result.per_site) == pytest.approx(1.0)
    assert result.sdc1_ci[0] <= result.sdc1_rate <= result.sdc1_ci[1]
    assert result.sdc1_rate == pytest.approx(
        sum(s.exposure_share * s.sdc1_rate for s in result.per_site)
    )
    # the public entry point gives the same numbers from the same seed
    again = mapping_resilience(
        problem,
        arch,
        eyeriss_mapping(),
        model,
        "features.2",
        images,
        n_faults=20,
        seed=3,
        fmt="bf16",
    )
    assert again.to_dict() == result.to_dict()


def test_an_invalid_mapping_is_refused_naming_the_level():
    model = DigitsCNN().eval()
    problem = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)
    bad = eyeriss_mapping()
    bad.levels[0] = LevelMapping("DRAM", [Loop("M", 4)], [], ALL)  # M factors multiply to 64
    with pytest.raises(InvalidMapping):
        mapping_resilience(problem, load_arch("eyeriss_like"), bad, model, "features.2",
                           torch.zeros(2, 1, 8, 8), n_faults=1)
    no_backing = eyeriss_mapping()
    no_backing.levels[0] = LevelMapping("DRAM", [Loop("M", 2)], [], frozenset({"Weights"}))
    with pytest.raises(InvalidMapping, match="DRAM"):
        mapping_resilience(problem, load_arch("eyeriss_like"), no_backing, model, "features.2",
                           torch.zeros(2, 1, 8, 8), n_faults=1)
