"""Level structures of the four shipped designs (names, kept dataspaces, fanouts) and random small
valid mappings over them, for the fault-site tests. Written from the reference map.txt files so the
tests do not depend on the arch loader."""

from __future__ import annotations

import random

from dse.model.mapping import LevelMapping, Loop, Mapping
from dse.problems.problem import Problem, conv_problem

ALL = ("Weights", "Inputs", "Outputs")
# (level name, kept dataspaces, fanout to the next level inward, axis of that fanout)
DESIGNS: dict[str, list[tuple[str, tuple[str, ...], int, str]]] = {
    "eyeriss_like": [
        ("DRAM", ALL, 1, "X"),
        ("shared_glb", ("Inputs", "Outputs"), 1, "X"),
        ("inter_PE_column_spatial", (), 3, "X"),
        ("inter_PE_spatial", (), 4, "Y"),
        ("ifmap_spad", ("Inputs",), 1, "X"),
        ("weights_spad", ("Weights",), 1, "X"),
        ("psum_spad", ("Outputs",), 1, "X"),
    ],
    "nvdla_like": [
        ("DRAM", ALL, 1, "X"),
        ("sdp", (), 1, "X"),
        ("cbuf", ("Weights", "Inputs"), 1, "X"),
        ("cacc", ("Outputs",), 1, "X"),
        ("inter_mac_cell_spatial", (), 3, "Y"),
        ("inter_lane_spatial", (), 4, "X"),
        ("weight_reg", ("Weights",), 1, "X"),
        ("input_reg", ("Inputs",), 1, "X"),
    ],
    "simple_weight_stationary": [
        ("DRAM", ALL, 1, "X"),
        ("shared_glb", ALL, 1, "X"),
        ("inter_PE_spatial", (), 6, "Y"),
        ("pe_spad", ("Weights",), 1, "X"),
        ("weight_reg", ("Weights",), 1, "X"),
        ("input_activation_reg", ("Inputs",), 1, "X"),
        ("output_activation_reg", ("Outputs",), 1, "X"),
    ],
    "simple_output_stationary": [
        ("DRAM", ALL, 1, "X"),
        ("shared_glb", ALL, 1, "X"),
        ("inter_PE_spatial", (), 6, "Y"),
        ("pe_spad", ("Outputs",), 1, "X"),
        ("weight_reg", ("Weights",), 1, "X"),
        ("input_activation_reg", ("Inputs",), 1, "X"),
        ("output_activation_reg", ("Outputs",), 1, "X"),
    ],
}


def _factors(n: int) -> list[int]:
    return [f for f in range(1, n + 1) if n % f == 0]


def random_problem(rng: random.Random) -> Problem:
    """A tiny conv layer (a few hundred MACs at most), sometimes strided or dilated."""
    return conv_problem(
        C=rng.choice([1, 2, 3]),
        M=rng.choice([1, 2, 4]),
        R=rng.choice([1, 2, 3]),
        S=rng.choice([1, 2]),
        P=rng.choice([2, 3, 4]),
        Q=rng.choice([1, 2]),
        Wstride=rng.choice([1, 1, 2]),
        Wdilation=rng.choice([1, 1, 2]),
    )


def random_mapping(
    problem: Problem, design: str, rng: random.Random, *, bypass: float = 0.2
) -> Mapping:
    """Split every dimension over the levels' temporal and spatial slots (spatial only where the
    design fans out, within its fanout), shuffle each level's loop order, and keep the design's
    dataspaces (sometimes bypassing one at an inner level)."""
    levels = DESIGNS[design]
    slots: dict[tuple[int, bool], list[Loop]] = {}
    room = {i: fan for i, (_, _, fan, _) in enumerate(levels)}
    for dim in problem.dimensions:
        left = problem.instance[dim]
        order = list(range(len(levels)))
        rng.shuffle(order)
        for i in order:
            spatial = room[i] > 1 and rng.random() < 0.5
            cap = room[i] if spatial else left
            f = rng.choice([f for f in _factors(left) if f <= cap])
            if i == order[-1] and not spatial:
                f = left
            if f > 1:
                axis = levels[i][3]
                slots.setdefault((i, spatial), []).append(
                    Loop(dim, f, spatial, axis if spatial else None)
                )
                if spatial:
                    room[i] //= f
                left //= f
        if left > 1:  # the last slot drawn was spatial and full: put the rest at DRAM
            slots.setdefault((0, False), []).append(Loop(dim, left))
    out = []
    for i, (name, keep, _, _) in enumerate(levels):
        temporal = slots.get((i, False), [])
        rng.shuffle(temporal)
        kept = set(keep)
        if i > 0 and kept and rng.random() < bypass:
            kept.discard(rng.choice(sorted(kept)))
        out.append(LevelMapping(name, temporal, slots.get((i, True), []), frozenset(kept)))
    return Mapping(out)
