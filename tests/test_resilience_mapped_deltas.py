"""Exact corrupted outputs from the footprint agree with the loop-nest simulator's values, and the
layer binding agrees with PyTorch."""

from __future__ import annotations

import itertools
import random

import numpy as np
import torch
from _sites_designs import DESIGNS, random_mapping, random_problem
from torch import nn

from dse.problems.problem import conv_problem
from dse.resilience.formats import number_format
from dse.resilience.mapped.deltas import (
    LayerOperands,
    bind_layer,
    operand_delta,
    output_positions,
    partial_sum,
    products,
    tile_element,
    word_change,
)
from dse.resilience.mapped.sites import Nest, mac_readers, storage_readers
from dse.resilience.oracles.loopsim import LoopSim, MacFault, StorageFault

INT8 = number_format("int8")


def _operands(problem, rng):
    tensors = {}
    for ds in ("Weights", "Inputs"):
        shape = [problem.rank_extent(r, problem.instance) for r in problem.dataspace(ds).projection]
        tensors[ds] = rng.integers(-4, 5, size=[1, *shape]).astype(float)
    shape = [problem.rank_extent(r, problem.instance) for r in problem.output.projection]
    out_index = np.arange(int(np.prod(shape))).reshape(shape)
    return LayerOperands(tensors, np.zeros([1, *shape]), out_index, {})


def _as_dicts(ops):
    return {
        name: {e: float(arr[(0, *e)]) for e in itertools.product(*map(range, arr.shape[1:]))}
        for name, arr in ops.tensors.items()
    }


def test_footprint_deltas_and_partial_sums_match_the_simulated_values():
    rng, nrng = random.Random(11), np.random.default_rng(11)
    checked = {"Weights": 0, "Inputs": 0, "Outputs": 0, "MAC": 0}
    for k in range(60):
        problem = random_problem(rng)
        mapping = random_mapping(problem, list(DESIGNS)[k % 4], rng)
        sim, nest, ops = LoopSim(problem, mapping), Nest(problem, mapping), _operands(problem, nrng)
        values = _as_dicts(ops)
        clean = sim.run(values).outputs
        level, ds = rng.choice([(i, d) for i, lm in enumerate(mapping.levels) for d in lm.keep])
        if k % 6 == 0:
            ds = "MAC"
        t = rng.randrange(nest.steps)
        seen: list[float] = []

        def corrupt(v, seen=seen):
            seen.append(v)
            return v + 3.0

        if ds == "MAC":
            pe = rng.randrange(nest.pes)
            faulty = sim.run(values, MacFault(pe, t, corrupt)).outputs
            readers = mac_readers(nest, pe, t)
            assert seen == [float(products(nest, ops, readers.steps, readers.pes)[0, 0])]
            expected = {
                int(i): 3.0 for i in output_positions(nest, ops, readers.steps, readers.pes)
            }
        else:
            inst = rng.randrange(nest.instances(level))
            element = tile_element(nest, level, ds, inst, t, nrng)
            faulty = sim.run(values, StorageFault(level, inst, ds, element, t, corrupt)).outputs
            readers = storage_readers(nest, level, ds, inst, element, t)
            if ds == "Outputs":
                assert seen == [partial_sum(nest, ops, level, inst, element, t)[0]]
                expected = {int(ops.out_index[element]): 3.0}
            else:
                idx, delta = operand_delta(nest, ops, ds, readers, np.array([3.0]))
                expected = dict(zip(idx.tolist(), delta[0].tolist(), strict=True))
        got = {int(ops.out_index[e]): faulty[e] - clean[e] for e in clean if faulty[e] != clean[e]}
        expected = {i: d for i, d in expected.items() if d != 0.0}
        assert got == expected
        checked[ds] += 1
    assert min(checked.values()) >= 5, checked


def test_bit_flip_moves_a_fixed_point_word_by_a_power_of_two():
    # hand-computed int8 codes (scale given): the word change the one corruption module reports
    assert word_change(np.array(1.5), 0, INT8, 0.5) == -0.5  # code 3 -> 2
    assert word_change(np.array(1.5), 2, INT8, 0.5) == 2.0  # code 3 -> 7
    assert word_change(np.array(1.5), 7, INT8, 0.5) == -64.0  # sign bit: 3 -> -125
    assert word_change(np.array(-0.5), 7, INT8, 0.5) == 64.0  # -1 -> 127
    assert word_change(np.array(-0.5), 3, INT8, 0.5) == -4.0  # -1 (all ones) -> -9
    assert list(word_change(np.array([100.0, -100.0]), 6, INT8, 1.0)) == [-64.0, 64.0]
    assert list(word_change(np.array([1.5, 2.0]), 0, INT8, 0.5, "stuck1")) == [0.0, 0.5]  # 3, 4
    assert list(word_change(np.array([1.5, 2.0]), 0, INT8, 0.5, "stuck0")) == [-0.5, 0.0]
    assert list(word_change(np.array([1.0, -1.0]), 7, INT8, 1.0, "stuck1")) == [-128.0, 0.0]


def test_layer_binding_reproduces_torch_conv_and_linear():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2)
    problem = conv_problem(C=2, M=3, R=3, S=3, P=4, Q=4, G=2, Wstride=2, Hstride=2)
    x = torch.randn(3, 4, 7, 7)  # three images
    ops = bind_layer(problem, conv, x)
    want = (conv(x) - conv.bias.reshape(1, -1, 1, 1)).detach().double().reshape(3, -1)
    assert np.allclose(
        ops.outputs.reshape(3, -1), want[:, ops.out_index.reshape(-1)].numpy(), atol=1e-6
    )
    w = ops.tensors["Weights"][0]  # ranks C, M, R, S, G
    assert w[1, 2, 0, 2, 1] == conv.weight[1 * 3 + 2, 1, 2, 0].item()
    assert np.array_equal(
        conv.weight.detach().double().reshape(-1).numpy()[ops.index["Weights"]], w
    )
    padded = torch.nn.functional.pad(x[1:2].double(), (1, 1, 1, 1)).reshape(-1).numpy()
    assert np.array_equal(padded[ops.index["Inputs"]], ops.tensors["Inputs"][1])
    lin = nn.Linear(5, 3)
    xl = torch.randn(2, 5)
    ops = bind_layer(conv_problem(C=5, M=3), lin, xl)
    want = (lin(xl) - lin.bias).detach().double().reshape(2, -1)
    assert np.allclose(
        ops.outputs.reshape(2, -1), want[:, ops.out_index.reshape(-1)].numpy(), atol=1e-6
    )


def test_stuck_pe_deltas_match_the_simulated_outputs():
    """A product-register bit stuck in one PE for the whole layer: the campaign's per-output
    deltas equal the loop simulator's outputs with that PE's every product corrupted alike."""
    from dse.resilience.mapped.campaign import stuck_pe_fault
    from dse.resilience.mapped.exposure import SiteExposure

    rng, nrng = random.Random(4), np.random.default_rng(4)
    changed = 0
    for k in range(16):
        problem = random_problem(rng)
        mapping = random_mapping(problem, list(DESIGNS)[k % 4], rng)
        sim, nest, ops = LoopSim(problem, mapping), Nest(problem, mapping), _operands(problem, nrng)
        site = SiteExposure(nest.nlev, "mac", "MAC", 8, nest.pes, 1, 1.0)
        kind = ("stuck0", "stuck1")[k % 2]
        fault = stuck_pe_fault(nest, site, 0, ops, 1.0, nrng, "int", kind)
        values = _as_dicts(ops)
        clean = sim.run(values).outputs

        def corrupt(v, bit=fault.bit, kind=kind):
            return v + float(word_change(np.array(v), bit, INT8, 1.0, kind))

        faulty = sim.run(values, MacFault(fault.instance, None, corrupt)).outputs
        got = {int(ops.out_index[e]): faulty[e] - clean[e] for e in clean if faulty[e] != clean[e]}
        want = {int(i): d for i, d in zip(fault.positions, fault.deltas[0], strict=True) if d}
        assert got == want
        assert fault.footprint == len(mac_readers(nest, fault.instance, None).outputs)
        changed += len(got) > 1
    assert changed >= 4
