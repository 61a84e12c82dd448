"""Crowded, realistic result rows for the report's figure and table tests: long design-point
labels (design variants), 13 energy components, three technology nodes, two models."""

from __future__ import annotations

import json
import random

COMPONENTS = ["mac", "DRAM", "shared_glb", "pe_spad", "weight_reg", "input_activation_reg",
              "output_activation_reg", "ifmap_spad", "weights_spad", "psum_spad", "cbuf",
              "cacc", "input_reg"]


def crowded_rows(points: int = 8, layers: int = 12) -> list[dict]:
    rng = random.Random(7)
    rows = []
    for p in range(points):
        design = ("eyeriss_like", "simple_weight_stationary", "nvdla_like")[p % 3]
        label = (f"{design}[depth.shared_glb={8192 * (1 + p % 2)},pe_x=8,pe_y=8,"
                 f"word_bits={8 * (1 + p // 4)}]")
        tech = ("32nm", "45nm", "7nm")[p % 3]
        scale = 10 ** rng.uniform(-1, 2)
        for model in ("digits_cnn", "cifar_resnet20"):
            for layer in range(layers):
                for rank in range(2):
                    e = scale * 1e5 * (1 + layer) * (1 + 0.3 * rank) * rng.uniform(0.5, 2)
                    c = int(scale * 1e4 * (layer + 1) * (1 + 0.1 * rank))
                    sdc = 10 ** rng.uniform(-5, -1)
                    comps = {name: e * w for name, w in zip(
                        COMPONENTS, (rng.random() for _ in COMPONENTS), strict=False)}
                    total = sum(comps.values())
                    rows.append(dict(
                        sweep="s", point=label, model=model, layer_index=layer,
                        layer=f"layer{layer // 3}.{layer % 3}.conv{1 + layer % 2}",
                        layer_path=f"layer{layer // 3}.{layer % 3}.conv{1 + layer % 2}",
                        count=1 + layer % 3, rank=rank, energy_pJ=e, cycles=c,
                        utilization=rng.uniform(0.1, 1.0), edp=e * 1e-12 * c, macs=50000,
                        components=json.dumps({k: v * e / total for k, v in comps.items()}),
                        sdc_rate=sdc, sdc_lo=sdc * 0.6, sdc_hi=sdc * 1.5, technology=tech))
    return rows
