"""What a spiking network offers to faults, and its golden run recorded step by step.

Targets (seed 003's list): ``weight`` and ``bias`` of every Conv / Linear layer; ``beta`` and
``threshold`` of every snntorch ``Leaky`` / ``Synaptic`` neuron layer (parameters when learnable,
buffers otherwise: both are reached the same way); and per neuron layer its ``membrane`` potential
(the stored state ``mem``) and its ``spikes`` (the output tensor), one neuron of every image.

A fault is permanent (every time step) or transient (at one step, ``step``). Faults reach the
network through forward hooks and parameter edits only, so the user's model code is never changed;
both hidden-state styles work because a neuron's state is read and written through its ``mem``
attribute, which snntorch uses whether the caller passes ``mem`` or ``init_hidden=True`` keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from dse.errors import InputError
from dse.resilience import fault as core
from dse.resilience import formats
from dse.resilience.fault import KINDS, What, When

SYNAPSE_TARGETS = ("weight", "bias")
NEURON_TARGETS = ("beta", "threshold", "membrane", "spikes")
TARGETS = SYNAPSE_TARGETS + NEURON_TARGETS
# CLI spelling (the issue's) -> target
TARGET_NAMES = {"weights": "weight", "biases": "bias", "beta": "beta", "threshold": "threshold",
                "membrane": "membrane", "spikes": "spikes"}
FORMATS = ("fp32", "fp16", "bf16")  # formats whose stored word needs no scale
FAULT_KINDS = tuple(k for k, kind in KINDS.items() if kind.uses_bits)  # the core's bit kinds
# The core's tensor role of each target (the core has no neuron-parameter role: beta and threshold
# are parameters of their layer, as weights are).
CORE_ROLES = {"weight": "weight", "bias": "bias", "beta": "weight", "threshold": "weight",
              "membrane": "state", "spikes": "output"}
_SYNAPSES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def neuron_states(module: nn.Module) -> tuple[str, ...]:
    """The state attributes of an snntorch neuron layer (empty for anything else)."""
    kind = type(module).__name__
    if not type(module).__module__.startswith("snntorch"):
        return ()
    return {"Leaky": ("mem",), "Synaptic": ("syn", "mem")}.get(kind, ())


def neuron_layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if neuron_states(m)]


def check_spiking(model: nn.Module) -> None:
    """InputError when the model has no snntorch Leaky / Synaptic layer."""
    if not neuron_layers(model):
        raise InputError(f"{type(model).__name__} has no spiking layer (snntorch Leaky or Synaptic)",
                         field="model")


@dataclass(frozen=True)
class SnnFault:
    """One fault: ``index`` into the layer's ``target`` tensor (one image's neurons for membrane and
    spikes); ``step`` None = permanent over all steps, else only at that time step."""

    layer: str
    target: str
    index: tuple[int, ...]
    bits: tuple[int, ...]
    kind: str = "bitflip"
    fmt: str = "fp32"
    step: int | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise InputError(f"unknown target {self.target!r}; expected one of {list(TARGETS)}",
                             field="target")
        if self.kind not in FAULT_KINDS:
            raise InputError(f"unknown fault {self.kind!r}; expected one of {list(FAULT_KINDS)}",
                             field="fault")
        if self.fmt not in FORMATS:
            raise InputError(f"format {self.fmt!r} is not supported for spiking targets; use one of "
                             f"{list(FORMATS)}", field="format")
        width = formats.word_bits(self.fmt)
        object.__setattr__(self, "bits", What(self.kind, tuple(self.bits)).bits)
        bad = [b for b in self.bits if not 0 <= b < width]
        if bad:
            raise InputError(f"bit {bad[0]} is outside the {width}-bit {self.fmt} word "
                             f"(0..{width - 1})", field="bit")
        object.__setattr__(self, "index", tuple(int(i) for i in self.index))
        if self.step is not None and self.step < 0:
            raise InputError(f"step must be >= 0, got {self.step}", field="Step")

    @property
    def site(self) -> str:
        """``layer.target``: the seed's column name."""
        return f"{self.layer}.{self.target}"

    @property
    def core(self) -> core.Fault:
        """The same fault in the core's description (for its corruption and CSV tools)."""
        return core.Fault(core.Where(self.layer, self.index, CORE_ROLES[self.target]),
                          What(self.kind, self.bits), formats.number_format(self.fmt), self.when)

    @property
    def when(self) -> When:
        """The core's time of the fault: permanent, or one ``time_step``."""
        return When() if self.step is None else When("time_step", self.step)

    def acts(self, step: int) -> bool:
        return self.step is None or self.step == step


def corrupt_fault(values: torch.Tensor, fault: SnnFault) -> torch.Tensor:
    """``values`` stored in the fault's format with the fault applied (bit-identical where the
    stored word does not change), by the core's corruption module and fault kinds."""
    return core.corrupt(values, fault.core)


def corrupt_rows(values: torch.Tensor, faults: list[SnnFault]) -> torch.Tensor:
    """Per row ``i``, ``values[i]`` with ``faults[i]`` applied (grouped by bits and kind)."""
    out = values.clone()
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(faults):
        groups.setdefault((f.bits, f.kind, f.fmt), []).append(i)
    for rows in groups.values():
        idx = torch.tensor(rows)
        out[idx] = corrupt_fault(values[idx], faults[rows[0]])
    return out


def faulty_param(module: nn.Module, fault: SnnFault) -> torch.Tensor:
    """The module's ``fault.target`` tensor with the fault applied (a new tensor)."""
    value = getattr(module, fault.target).detach()
    out = value.clone()
    out[fault.index] = corrupt_fault(value[fault.index].reshape(1), fault)[0]
    return out


@contextmanager
def swapped(module: nn.Module, name: str, value: torch.Tensor) -> Iterator[None]:
    """``module.<name>`` holds ``value`` inside the block (parameters through ``.data``, so they
    stay parameters), the original afterwards."""
    current = getattr(module, name)
    if isinstance(current, nn.Parameter):
        old = current.data
        current.data = value
        try:
            yield
        finally:
            current.data = old
    else:
        setattr(module, name, value)
        try:
            yield
        finally:
            setattr(module, name, current)


def reset_states(model: nn.Module) -> None:
    """Empty every neuron state, so the next forward starts from zeros whatever the style (an
    ``init_hidden`` model would otherwise carry state over from its last call)."""
    for m in model.modules():
        for attr in neuron_states(m):
            setattr(m, attr, torch.zeros(0))


def run_neuron(module: nn.Module, inp: torch.Tensor,
               state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One step of a neuron layer from ``state``: (spikes, new state). Called as the user's model
    calls it, with the state in the module's attributes, so the arithmetic is the model's own."""
    attrs = neuron_states(module)
    for attr, value in zip(attrs, state, strict=True):
        setattr(module, attr, value)
    out = module(inp)
    spk = out[0] if isinstance(out, tuple) else out
    return spk, tuple(getattr(module, a) for a in attrs)


def target_shapes(model: nn.Module, neuron_shapes: dict[str, tuple[int, ...]],
                  targets: tuple[str, ...] = TARGETS) -> dict[tuple[str, str], tuple[int, ...]]:
    """(layer, target) -> shape of the tensor its faults index, for every layer having it.
    ``neuron_shapes`` are one image's neuron shapes per neuron layer (from a golden run)."""
    out: dict[tuple[str, str], tuple[int, ...]] = {}
    for name, m in model.named_modules():
        if isinstance(m, _SYNAPSES):
            for t in SYNAPSE_TARGETS:
                if t in targets and isinstance(getattr(m, t, None), torch.Tensor):
                    out[(name, t)] = tuple(getattr(m, t).shape)
        elif neuron_states(m):
            for t in ("beta", "threshold"):
                if t in targets and isinstance(getattr(m, t, None), torch.Tensor):
                    out[(name, t)] = tuple(getattr(m, t).shape)
            for t in ("membrane", "spikes"):
                if t in targets and name in neuron_shapes:
                    out[(name, t)] = neuron_shapes[name]
    return out


def check_fault(fault: SnnFault, shapes: dict[tuple[str, str], tuple[int, ...]],
                steps: int) -> None:
    """InputError when the layer lacks the target, the index is outside it, or the step is past
    the number of time steps."""
    layers = {layer for layer, _ in shapes}
    if fault.layer not in layers:
        raise InputError(f"unknown layer {fault.layer!r} (layers: {', '.join(sorted(layers))})",
                         field="Layer")
    shape = shapes.get((fault.layer, fault.target))
    if shape is None:
        have = sorted(t for layer, t in shapes if layer == fault.layer)
        raise InputError(f"layer {fault.layer!r} has no {fault.target} (it has {', '.join(have)})",
                         field="Layer")
    if len(fault.index) != len(shape) or any(not 0 <= i < s for i, s in
                                             zip(fault.index, shape, strict=True)):
        raise InputError(f"index {fault.index} is outside {fault.site} of shape {shape}",
                         field="TensorIndex")
    if fault.step is not None and not 0 <= fault.step < steps:
        raise InputError(f"step {fault.step} is past the {steps} time steps (0..{steps - 1})",
                         field="Step")


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
