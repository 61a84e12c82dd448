"""One fault during training: when (epoch, step), where (layer, pass, operand, element) and what
(fault model, number format, bits, run length) — and the hooks that put it there.

Passes and operands (every one reached with hooks only, no model edits):

- ``forward``: ``output`` (forward hook replaces the layer output), ``input`` (forward pre-hook),
  ``weight`` (the stored weight is corrupted in place before the step's forward: a memory fault
  that stays until training overwrites it);
- ``backward``: ``grad_out`` (the activation gradient the layer's backward reads: a tensor hook on
  its output), ``grad_in`` (the activation gradient it passes back: a full backward hook; layers
  whose input needs no gradient have none), ``grad_wt`` (the weight gradient: a tensor hook on the
  parameter);
- ``optimizer``: ``state`` (one of the optimizer's state tensors of the layer's weight — Adam's
  first or second moment, SGD's momentum, RMSprop's square average, Adagrad's sum — chosen by the
  fault's seed; corrupted between ``backward`` and ``step``; there is no state before step 1).

Fault models (seed 002's software fault models plus the fault core's bit faults): ``bitflip``,
``stuck0``, ``stuck1`` on ``bits`` of the value stored in ``fmt`` (fp32 / bf16 / fp16); ``random``
(a random finite ``fmt`` word); ``copy`` (a valid value copied from another element of the same
tensor); ``zero``; ``value`` (the given ``values``, e.g. a huge number). ``extent`` 1, 16 (a faulty
MAC group) or 64 (a buffer line) corrupts that many contiguous elements (row-major order, clipped
at the tensor's end) starting at ``pos``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.resilience import fault as core_fault
from dse.resilience import formats
from dse.validate import resolve

OPERANDS = {"forward": ("output", "input", "weight"),
            "backward": ("grad_out", "grad_in", "grad_wt"),
            "optimizer": ("state",)}
PASSES = tuple(OPERANDS)
FAULT_MODELS = tuple(core_fault.KINDS)  # the fault core's kinds, seed 002's among them
BIT_MODELS = tuple(k for k, v in core_fault.KINDS.items() if v.uses_bits)
ROLES = {"output": "output", "input": "input", "weight": "weight", "grad_out": "gradient",
         "grad_in": "gradient", "grad_wt": "gradient", "state": "state"}
FAULT_FORMATS = ("fp32", "bf16", "fp16")
EXTENTS = (1, 16, 64)


@dataclass(frozen=True)
class TrainFault:
    """One experiment's fault (module doc). ``pos`` indexes the target tensor (batch dimension
    included for activations and their gradients); ``seed`` draws what the fault model needs at
    injection time (random word, copy source, optimizer state tensor)."""

    epoch: int
    step: int
    layer: str
    pass_: str
    operand: str
    fmodel: str = "bitflip"
    pos: tuple[int, ...] = ()
    fmt: str = "fp32"
    bits: tuple[int, ...] = ()
    extent: int = 1
    values: tuple[float, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        resolve(self.pass_, PASSES, "pass", what="pass")
        resolve(self.operand, OPERANDS[self.pass_], "operand", what=f"{self.pass_} operand")
        resolve(self.fmodel, FAULT_MODELS, "fmodel", what="fault model")
        resolve(self.fmt, FAULT_FORMATS, "fmt", what="format")
        if self.extent not in EXTENTS:
            raise InputError(f"extent must be one of {list(EXTENTS)}, got {self.extent}",
                             field="extent")
        if self.fmodel == "value" and len(self.values) != 1:
            raise InputError("fault model 'value' needs one value", field="inj_values")
        if self.fmodel not in BIT_MODELS:
            object.__setattr__(self, "bits", ())
        self.core((1,) * len(self.pos), word=0 if self.needs_word else None)  # checks the bits
        if self.epoch < 0 or self.step < 0:
            raise InputError("epoch and step must be >= 0", field="target_step")
        object.__setattr__(self, "pos", tuple(int(i) for i in self.pos))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        object.__setattr__(self, "bits", tuple(int(b) for b in self.bits))

    @property
    def needs_word(self) -> bool:
        return core_fault.KINDS[self.fmodel].word_from is not None

    def core(self, shape: tuple[int, ...], word: int | None = None) -> core_fault.Fault:
        """This fault in the fault core's description (role, kind, format, run, training step
        of the epoch)."""
        return core_fault.Fault.of(self.layer, self.pos, self.bits, role=ROLES[self.operand],
                                   kind=self.fmodel, fmt=self.fmt, when="step", at=self.step,
                                   run=self.extent, word=word)


def corrupt_run(t: torch.Tensor, fault: TrainFault, rng: np.random.Generator) -> torch.Tensor:
    """A copy of ``t`` with the fault's run of elements corrupted through the fault core
    (:func:`dse.resilience.fault.corrupt`; values stay in ``t``'s dtype). The word of a
    ``random`` / ``copy`` / ``value`` fault is resolved here, when the fault strikes."""
    out = t.clone().contiguous()  # keeps the autograd graph of a forward activation: the
    flat = out.view(-1)  # corrupted elements become constants, the others still pass gradients
    with torch.no_grad():
        core = fault.core(tuple(t.shape), word=_word(flat, tuple(t.shape), fault, rng))
        run = core_fault.run_positions(core, tuple(t.shape))
        new = core_fault.corrupt(flat[run].detach(), core)
    flat[run] = new
    return out


def _word(flat: torch.Tensor, shape: tuple[int, ...], fault: TrainFault,
          rng: np.random.Generator) -> int | None:
    source = core_fault.KINDS[fault.fmodel].word_from
    if source == "draw":
        return int(random_words(fault.fmt, 1, rng)[0])
    if source == "given":
        return int(formats.encode(torch.tensor([fault.values[0]]), fault.fmt)[0])
    if source == "tensor":
        start = int(np.ravel_multi_index(fault.pos, shape))
        others = [i for i in range(flat.numel()) if not start <= i < start + fault.extent]
        src = int(rng.choice(others)) if others else start
        return int(formats.encode(flat[src:src + 1].float(), fault.fmt)[0])
    return None


def random_words(fmt: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` stored words of ``fmt`` drawn uniformly over the words of finite values."""
    width = formats.word_bits(fmt)
    out = np.empty(0, dtype=np.int64)
    while out.size < n:
        words = rng.integers(0, 1 << width, size=n, dtype=np.int64)
        vals = formats.decode(torch.from_numpy(words), fmt)
        out = np.concatenate([out, words[torch.isfinite(vals).numpy()]])
    return out[:n]


def random_finite(fmt: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random finite values of ``fmt`` (uniform over its finite words), as float32."""
    return formats.decode(torch.from_numpy(random_words(fmt, n, rng)), fmt).numpy()


@dataclass
class Injector:
    """Arms one fault on a model and optimizer for one step; records the values it wrote."""

    fault: TrainFault
    written: list[float] = field(default_factory=list)
    original: list[float] = field(default_factory=list)  # the values the fault replaced
    fired: bool = False

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.fault.seed)

    def _apply(self, t: torch.Tensor) -> torch.Tensor:
        out = corrupt_run(t, self.fault, self._rng)
        start = int(np.ravel_multi_index(self.fault.pos, tuple(t.shape)))
        run = slice(start, start + self.fault.extent)
        self.written = [float(v) for v in out.detach().reshape(-1)[run].float()]
        self.original = [float(v) for v in t.detach().reshape(-1)[run].float()]
        self.fired = True
        return out

    @contextmanager
    def armed(self, model: nn.Module) -> Iterator[None]:
        """Hooks for the forward and backward passes of the step (removed on exit)."""
        f = self.fault
        module = layer_module(model, f.layer)
        handles = []
        if self.fired:
            pass
        elif f.operand == "weight":
            with torch.no_grad():
                w = weight_of(module, f.layer)
                w.copy_(self._apply(w))
        elif f.operand == "output":
            handles.append(module.register_forward_hook(self._once(self._out)))
        elif f.operand == "input":
            handles.append(module.register_forward_pre_hook(self._once(self._in)))
        elif f.operand == "grad_out":
            handles.append(module.register_forward_hook(self._once(self._grad_out)))
        elif f.operand == "grad_in":
            handles.append(module.register_full_backward_hook(self._once(self._grad_in)))
        elif f.operand == "grad_wt":
            handles.append(weight_of(module, f.layer).register_hook(self._once(self._apply)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _once(self, fn):
        def hook(*args):
            return None if self.fired else fn(*args)
        return hook

    def _out(self, module, inputs, output):
        return self._apply(output)

    def _in(self, module, inputs):
        return (self._apply(inputs[0]), *inputs[1:])

    def _grad_out(self, module, inputs, output):
        output.register_hook(self._once(self._apply))

    def _grad_in(self, module, grad_in, grad_out):
        if grad_in[0] is None:
            raise InputError(f"layer {self.fault.layer!r} passes no input gradient back (its "
                             "input needs none); use grad_out or grad_wt", field="operand")
        return (self._apply(grad_in[0]), *grad_in[1:])

    def optimizer_state(self, model: nn.Module, opt: torch.optim.Optimizer) -> None:
        """Corrupt the optimizer state of the layer's weight (between backward and step)."""
        if self.fault.operand != "state" or self.fired:
            return
        w = weight_of(layer_module(model, self.fault.layer), self.fault.layer)
        keys = state_keys(opt, w)
        if not keys:
            raise InputError(f"the optimizer holds no state for {self.fault.layer!r} at this step "
                             "(there is none before step 1, and none for plain SGD)",
                             field="target_step")
        key = keys[int(np.random.default_rng(self.fault.seed + 1).integers(len(keys)))]
        with torch.no_grad():
            opt.state[w][key].copy_(self._apply(opt.state[w][key]))


def state_keys(opt: torch.optim.Optimizer, w: torch.Tensor) -> list[str]:
    """The optimizer's float state tensors for parameter ``w`` shaped like it, sorted by name."""
    st = opt.state.get(w, {})
    return sorted(k for k, v in st.items() if isinstance(v, torch.Tensor) and v.shape == w.shape)


def layer_module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise InputError(f"unknown layer {name!r}", field="target_layer") from None


def weight_of(module: nn.Module, name: str) -> torch.Tensor:
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor):
        raise InputError(f"layer {name!r} has no weight", field="target_layer")
    return w


def target_layers(model: nn.Module) -> list[str]:
    """Layers a campaign picks from: every conv and linear layer (the MAC layers), in order."""
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear))]
