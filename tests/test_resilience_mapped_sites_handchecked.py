"""Fault footprints worked out by hand on tiny mappings of the four designs' level structures.

Each case states the expected outputs from the loop nest alone; both the analytical footprint and
the loop-nest simulator must give exactly that set.
"""

from __future__ import annotations

from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.problems.problem import conv_problem
from dse.resilience.mapped.sites import Nest, footprint
from dse.resilience.oracles.loopsim import LoopSim, StorageFault

ALL = frozenset({"Weights", "Inputs", "Outputs"})


def _out(m: int, q: int, p: int) -> tuple[int, ...]:
    return (0, m, q, p, 0)  # Outputs ranks: N, M, Q, P, G


def _both(problem, mapping, level, ds, instance, element, time):
    nest = Nest(problem, mapping)
    level_i = [lm.level for lm in mapping.levels].index(level)
    analytical = set(footprint(nest, level_i, ds, instance, element, time))
    simulated = (
        LoopSim(problem, mapping)
        .run(fault=StorageFault(level_i, instance, ds, element, time))
        .tainted
    )
    assert analytical == simulated
    return analytical


def _eyeriss(glb, column=(), row=(), ifmap=(), weights=(), psum=()):
    return Mapping(
        [
            LevelMapping("DRAM", [], [], ALL),
            LevelMapping("shared_glb", list(glb), [], frozenset({"Inputs", "Outputs"})),
            LevelMapping("inter_PE_column_spatial", [], list(column), frozenset()),
            LevelMapping("inter_PE_spatial", [], list(row), frozenset()),
            LevelMapping("ifmap_spad", list(ifmap), [], frozenset({"Inputs"})),
            LevelMapping("weights_spad", list(weights), [], frozenset({"Weights"})),
            LevelMapping("psum_spad", list(psum), [], frozenset({"Outputs"})),
        ]
    )


def test_eyeriss_weight_spad_word_reaches_its_pe_outputs_for_the_rest_of_its_residency():
    # PE (q, s) keeps C2 x M2 weights while the global buffer walks P (irrelevant to weights);
    # step = p*4 + c*2 + m. Weight (c=1, m=0, s=1) of PE q=0 is used at steps 2, 6, 10.
    problem = conv_problem(C=2, M=2, S=2, P=3, Q=2)
    mapping = _eyeriss(
        glb=[Loop("P", 3)],
        column=[Loop("Q", 2, True, "X")],
        row=[Loop("S", 2, True, "Y")],
        weights=[Loop("C", 2)],
        psum=[Loop("M", 2)],
    )
    pe = 0 * 2 + 1  # q = 0, s = 1
    weight = (1, 0, 0, 1, 0)  # ranks C, M, R, S, G
    assert _both(problem, mapping, "weights_spad", "Weights", pe, weight, 0) == {
        _out(0, 0, 0),
        _out(0, 0, 1),
        _out(0, 0, 2),
    }
    # struck at step 7, after its use at step 6: only p = 2 is still to come
    assert _both(problem, mapping, "weights_spad", "Weights", pe, weight, 7) == {_out(0, 0, 2)}


def test_eyeriss_glb_ifmap_word_is_multicast_to_every_pe_that_fetches_it_later():
    # M3 across the PE rows; the ifmap spad holds a 4-wide window (P2 x R3) that slides by 2 when
    # the glb's P loop advances at step 6.
    problem = conv_problem(C=1, M=3, R=3, P=4)
    mapping = _eyeriss(
        glb=[Loop("P", 2)],
        row=[Loop("M", 3, True, "Y")],
        weights=[Loop("R", 3)],
        psum=[Loop("P", 2)],
    )
    column_w = 4  # input column 4 enters the spads at step 6, from the corrupted glb copy
    hit = _both(problem, mapping, "shared_glb", "Inputs", 0, (0, 0, column_w, 0, 0), 0)
    assert hit == {_out(m, 0, p) for m in range(3) for p in (2, 3)}  # p + r = 4, all 3 PEs
    # column 3 already sits (clean) in every spad since step 0 and is kept when the window slides
    assert _both(problem, mapping, "shared_glb", "Inputs", 0, (0, 0, 3, 0, 0), 0) == set()


def test_nvdla_weight_register_word_serves_every_q_and_p_until_replaced():
    # One weight per MAC (lanes C2 x cells M2); the register walks Q3 and, since DRAM's P loop is
    # irrelevant to weights, keeps the same weight for both P values: step = p*3 + q.
    problem = conv_problem(C=2, M=2, P=2, Q=3)
    mapping = Mapping(
        [
            LevelMapping("DRAM", [Loop("P", 2)], [], ALL),
            LevelMapping("sdp", [], [], frozenset()),
            LevelMapping("cbuf", [], [], frozenset({"Weights", "Inputs"})),
            LevelMapping("cacc", [], [], frozenset({"Outputs"})),
            LevelMapping("inter_mac_cell_spatial", [], [Loop("M", 2, True, "Y")], frozenset()),
            LevelMapping("inter_lane_spatial", [], [Loop("C", 2, True, "X")], frozenset()),
            LevelMapping("weight_reg", [Loop("Q", 3)], [], frozenset({"Weights"})),
            LevelMapping("input_reg", [], [], frozenset({"Inputs"})),
        ]
    )
    mac = 1 * 2 + 0  # m = 1, c = 0
    weight = (0, 1, 0, 0, 0)
    assert _both(problem, mapping, "weight_reg", "Weights", mac, weight, 0) == {
        _out(1, q, p) for q in range(3) for p in range(2)
    }
    assert _both(problem, mapping, "weight_reg", "Weights", mac, weight, 4) == {
        _out(1, 1, 1),
        _out(1, 2, 1),
    }


def test_psum_register_fault_reaches_exactly_its_own_output_with_later_accumulations():
    problem = conv_problem(C=2, M=2, R=3, P=3)
    mapping = _eyeriss(
        glb=[Loop("P", 3)],
        row=[Loop("M", 2, True, "Y")],
        weights=[Loop("C", 2)],
        psum=[Loop("R", 3)],
    )
    # PE m=1 accumulates output (m=1, p=1) over steps 6..11; struck mid-way at step 8
    assert _both(problem, mapping, "psum_spad", "Outputs", 1, _out(1, 0, 1), 8) == {_out(1, 0, 1)}
    # the corrupted partial sum is carried to the end: the final output moves by exactly +5
    sim = LoopSim(problem, mapping)
    clean = sim.run().outputs
    faulty = sim.run(
        fault=StorageFault(6, 1, "Outputs", _out(1, 0, 1), 8, corrupt=lambda v: v + 5.0)
    ).outputs
    assert {e: faulty[e] - clean[e] for e in clean if faulty[e] != clean[e]} == {_out(1, 0, 1): 5.0}
