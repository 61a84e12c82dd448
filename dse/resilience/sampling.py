"""Statistical fault lists: which tensors faults go into, how many faults each stratum needs
(Leveugle et al., DATE 2009, at the granularities of Ruospo et al., DATE 2023), and seeded draws.
The list's file form is :mod:`dse.resilience.fault`'s CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.resilience.fault import KINDS, Fault, run_positions
from dse.resilience.formats import number_format
from dse.resilience.stats import sample_size

MODES = ("network", "layer", "bit")


def fault_layers(model: nn.Module) -> list[str]:
    """Layers faults go into: every Conv / Linear module, in definition order."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return [name for name, m in model.named_modules() if isinstance(m, kinds)]


def tensor_shapes(model: nn.Module, layers: Sequence[str], role: str,
                  sample: torch.Tensor | None = None) -> dict[str, tuple[int, ...]]:
    """Shape faults index per layer: the weight or bias tensor, or one image's output (needs
    ``sample`` images to run the model once)."""
    mods = dict(model.named_modules())
    if role in ("weight", "bias"):
        return {name: tuple(getattr(mods[name], role).shape) for name in layers
                if getattr(mods[name], role, None) is not None}
    if role != "output":
        raise InputError(f"fault lists are drawn over weight, bias or output tensors, not {role}",
                         field="role")
    shapes: dict[str, tuple[int, ...]] = {}

    def grab(name: str):
        def hook(_m, _i, out) -> None:
            shapes.setdefault(name, tuple(out.shape[1:]))
        return hook

    hooks = [mods[name].register_forward_hook(grab(name)) for name in layers]
    device = next(model.parameters()).device
    x = sample[:2] if len(sample) > 1 else sample.repeat(2, *[1] * (sample.dim() - 1))
    try:
        with torch.no_grad():
            model(x.to(device))
    finally:
        for h in hooks:
            h.remove()
    return shapes


def plan(shapes: dict[str, tuple[int, ...]], bits: Sequence[int], margin: float,
         confidence: float, mode: str = "network") -> dict[tuple[str, int | None], int]:
    """Number of faults per stratum: (None, None) for network-wise, (layer, None) layer-wise,
    (layer, bit) bit-wise (Ruospo et al., DATE 2023), each by Leveugle's formula."""
    if mode not in MODES:
        raise InputError(f"unknown sampling mode {mode!r}; expected one of {list(MODES)}",
                         field="mode")
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    if mode == "network":
        return {(None, None): sample_size(sum(sizes.values()) * len(bits), margin, confidence)}
    if mode == "layer":
        return {(k, None): sample_size(n * len(bits), margin, confidence) for k, n in sizes.items()}
    return {(k, b): sample_size(n, margin, confidence) for k, n in sizes.items() for b in bits}


def generate(shapes: dict[str, tuple[int, ...]], *, role: str = "weight",
             kind: str = "bitflip", fmt: str = "fp32", bits: Sequence[int] | None = None,
             n_bits: int = 1, margin: float = 0.01, confidence: float = 0.99,
             mode: str = "network", n_faults: int | None = None, seed: int = 0,
             model: str = "") -> list[Fault]:
    """Draw permanent faults without replacement from each stratum's population (element x first
    bit; elements alone for kinds without bits, whose bit-wise strata are then per layer).

    ``n_faults`` overrides the sample size (network-wise). Multi-bit faults (``n_bits`` > 1)
    add distinct further bits drawn from ``bits``; a ``random`` fault's word is drawn uniformly.
    Same arguments and seed, same list.
    """
    form = number_format(fmt)
    uses_bits = KINDS[kind].uses_bits if kind in KINDS else True  # Fault() names a bad kind
    bits = list(range(form.width)) if bits is None else [int(b) for b in bits]
    bad = [b for b in bits if not 0 <= b < form.width]
    if bad:
        raise InputError(f"bit {bad[0]} is outside the {form.width}-bit {form} word", field="bit")
    if uses_bits and not 1 <= n_bits <= len(bits):
        raise InputError(f"n_bits must be in 1..{len(bits)}", field="n_bits")
    if not shapes:
        raise InputError("the model has no Conv or Linear layer to inject into", field="model")
    rng = np.random.default_rng(seed)
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    pool: list[int | None] = list(bits) if uses_bits else [None]
    if n_faults is not None:
        strata = {(None, None): n_faults}
    else:
        strata = plan(shapes, bits if uses_bits else [0], margin, confidence,
                      mode if uses_bits or mode != "bit" else "layer")
    faults = []
    for (layer, bit), n in strata.items():
        layers = list(sizes) if layer is None else [layer]
        bit_pool = pool if bit is None else [bit]
        offsets = np.cumsum([0] + [sizes[k] * len(bit_pool) for k in layers])
        picks = rng.choice(int(offsets[-1]), size=min(n, int(offsets[-1])), replace=False)
        for p in np.sort(picks):
            li = int(np.searchsorted(offsets, p, side="right") - 1)
            elem, b = divmod(int(p - offsets[li]), len(bit_pool))
            name = layers[li]
            index = tuple(int(i) for i in np.unravel_index(elem, shapes[name]))
            chosen = [] if bit_pool[b] is None else [bit_pool[b]]
            if uses_bits and n_bits > 1:
                rest = [x for x in bits if x != chosen[0]]
                chosen += [int(x) for x in rng.choice(rest, size=n_bits - 1, replace=False)]
            word = int(rng.integers(2 ** form.width)) if getattr(KINDS.get(kind), "word_from",
                                                                None) == "draw" else None
            faults.append(Fault.of(name, index, chosen, role=role, kind=kind, fmt=form,
                                   word=word, model=model))
    return faults


def check_against(faults: Sequence[Fault], shapes: dict[str, tuple[int, ...]],
                  injections: Sequence[int] | None = None, path: str | None = None) -> None:
    """InputError for the first fault whose layer, index or run does not exist in the model."""
    for i, f in enumerate(faults):
        inj = injections[i] if injections is not None else i
        if f.where.layer not in shapes:
            raise InputError(f"Injection {inj}: unknown layer {f.where.layer!r}", file=path,
                             field="Layer")
        try:
            run_positions(f, shapes[f.where.layer])
        except InputError as exc:
            raise InputError(f"Injection {inj}: {exc.reason}", file=path,
                             field=exc.field) from None
