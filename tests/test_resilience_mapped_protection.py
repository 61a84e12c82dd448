"""Protection in a mapped campaign: SEC-DED on a level removes its single-bit SDCs (each fault
corrected, counted), parity turns them into detected errors, other levels are untouched."""

from __future__ import annotations

import numpy as np
import torch
from test_resilience_mapped_campaign import eyeriss_mapping

from dse.arch import load_arch
from dse.arch.protection import protect
from dse.problems.models import DigitsCNN
from dse.problems.problem import conv_problem
from dse.resilience.inference import FastEngine
from dse.resilience.mapped.campaign import LayerCapture, draw_campaign, run_faults
from dse.resilience.mapped.ecc import screen, tally
from dse.resilience.mapped.exposure import exposures
from dse.resilience.mapped.sites import Nest

PROBLEM = conv_problem(C=16, M=32, R=3, S=3, P=8, Q=8)


def _campaign(arch):
    torch.manual_seed(1)
    model = DigitsCNN().eval()
    images = torch.randn(8, 1, 8, 8)
    nest = Nest(PROBLEM, eyeriss_mapping())
    sites = exposures(nest, arch, word_bits=16)
    engine = FastEngine(model, images)
    capture = LayerCapture(engine, "features.2", PROBLEM)
    faults = draw_campaign(nest, sites, capture.ops, 40, seed=3, fmt="bf16")
    glb = [f for f in faults if sites[f.site].level_name == "shared_glb"]
    return engine, capture, sites, glb, faults


def test_secded_on_the_glb_corrects_every_single_bit_fault_there() -> None:
    plain = load_arch("eyeriss_like")
    engine, capture, sites, glb, _ = _campaign(plain)
    before = run_faults(engine, "features.2", capture, glb)
    assert before.any(), "unprotected, some global-buffer faults do flip the top-1"
    kept, status = screen(glb, sites, plain)
    assert tally(status)["unprotected"] == len(glb) and kept == glb

    secded = protect(plain, {"shared_glb": "secded"})
    kept, status = screen(glb, sites, secded)
    assert tally(status) == {"corrected": len(glb), "detected": 0, "escaped": 0, "unprotected": 0}
    after = run_faults(engine, "features.2", capture, kept)
    assert not after.any()  # 0 SDC from that level


def test_parity_flags_every_single_bit_fault_and_other_levels_are_untouched() -> None:
    arch = protect(load_arch("eyeriss_like"), {"shared_glb": "parity"})
    _, _, sites, glb, faults = _campaign(arch)
    kept, status = screen(faults, sites, arch)
    counts = tally(status)
    assert counts["detected"] == len(glb) and counts["corrected"] == 0
    assert counts["unprotected"] == len(faults) - len(glb)
    for f, k in zip(faults, kept, strict=True):
        if sites[f.site].level_name != "shared_glb":
            assert k is f
        else:
            assert not np.any(k.deltas)
