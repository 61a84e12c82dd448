"""Helpers shared by the fault-injection tests: a per-session model cache and fault draws."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from dse.resilience.fault import Fault
from dse.resilience.formats import number_format


@pytest.fixture(scope="session")
def fi_cache(tmp_path_factory) -> Path:
    """One trained-model cache for the session (so each default model trains once)."""
    path = tmp_path_factory.getbasetemp() / "dse-cache"
    path.mkdir(exist_ok=True)
    old = os.environ.get("DSE_CACHE")
    os.environ["DSE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DSE_CACHE", None)
    else:
        os.environ["DSE_CACHE"] = old


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def draw_bits(rng: np.random.Generator, fmt: str, k: int = 1) -> tuple[int, ...]:
    """Bits biased towards the top of the word (exponent / sign / int8 high bits), where faults
    change outcomes, while still covering low bits."""
    width = number_format(fmt).width
    p = np.linspace(1, 4, width)
    return tuple(int(b) for b in rng.choice(width, size=k, replace=False, p=p / p.sum()))


def _fmt(fmt: str, per_channel: bool) -> str:
    return f"{fmt}:channel" if per_channel else fmt


def _when(image: int | None) -> str:
    return "permanent" if image is None else "inference"


def weight_faults(model: nn.Module, n: int, fmt: str, kind: str, seed: int,
                  images: int | None = None, per_channel: bool = False,
                  k: int = 1) -> list[Fault]:
    rng = np.random.default_rng(seed)
    layers = weighted_layers(model)
    out = []
    for _ in range(n):
        name, mod = layers[rng.integers(len(layers))]
        index = tuple(int(rng.integers(s)) for s in mod.weight.shape)
        image = None if images is None else int(rng.integers(images))
        out.append(Fault.of(name, index, draw_bits(rng, fmt, k), role="weight", kind=kind,
                            fmt=_fmt(fmt, per_channel), when=_when(image), at=image))
    return out


def activation_faults(shapes: dict[str, tuple[int, ...]], n: int, fmt: str, kind: str, seed: int,
                      images: int, per_channel: bool = False) -> list[Fault]:
    rng = np.random.default_rng(seed)
    names = sorted(shapes)
    out = []
    for i in range(n):
        name = names[rng.integers(len(names))]
        index = tuple(int(rng.integers(s)) for s in shapes[name])
        image = None if i % 2 else int(rng.integers(images))
        out.append(Fault.of(name, index, draw_bits(rng, fmt), role="output", kind=kind,
                            fmt=_fmt(fmt, per_channel), when=_when(image), at=image))
    return out
