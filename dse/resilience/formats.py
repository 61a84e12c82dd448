"""Number formats a value can be stored in: encode to words, decode back, and the word change a
fault makes. Torch-native, on whatever device the values are.

The network computes in float32 (or whatever dtype it has). A value *stored* in format F is
``decode(encode(v))``; a fault changes bits of ``encode(v)``. Where a fault leaves the word as it
was (a stuck-at equal to the stored bit), :func:`corrupt` returns the value bit-identical, so such
a fault is masked by construction instead of showing up as a rounding change of the format.

Formats (names as the CLI and the fault CSV spell them):

- ``fp32``, ``fp16``, ``bf16``: IEEE-754 binary32 / binary16 and bfloat16 (round to nearest even
  on encode). Bit 0 is the least significant bit of the word; fp32 bit 31 is the sign, 30..23 the
  exponent; fp16 15 sign, 14..10 exponent; bf16 15 sign, 14..7 exponent.
- ``intN`` (N = 2..32, e.g. ``int8``, ``int16``): signed N-bit fixed point, two's complement (bit
  N-1 is the sign), suffix ``:channel`` for one scale per channel (``int8:channel``).

**The fixed-point scale rule** (the one rule every campaign uses, :func:`fixed_scale`)::

    scale = max|x| / (2^(N-1) - 1)        code = clamp(round(x / scale), -2^(N-1), 2^(N-1) - 1)

with ``max|x|`` over the tensor (or over each channel), ``round`` half to even, and a tensor of
zeros given scale 1 so zeros stay zeros. The stored value is ``code * scale``. Flipping bit k < N-1
changes the code by ±2^k, flipping the sign bit by ∓2^(N-1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dse.errors import InputError

# float format -> (width, storage dtype, integer view of the same width)
_FLOATS: dict[str, tuple[int, torch.dtype, torch.dtype]] = {
    "fp32": (32, torch.float32, torch.int32),
    "fp16": (16, torch.float16, torch.int16),
    "bf16": (16, torch.bfloat16, torch.int16),
}
FIXED_WIDTHS = range(2, 33)
FORMAT_NAMES = (*_FLOATS, "intN")  # for help texts: intN is any N in FIXED_WIDTHS

WordOp = Callable[[torch.Tensor], torch.Tensor]  # words (int64, 0 <= w < 2^width) -> words


@dataclass(frozen=True)
class NumberFormat:
    """How a value is stored: ``name`` (fp32 / fp16 / bf16 / intN), its word ``width`` in bits,
    whether it is ``fixed`` point, and for fixed point whether the scale is per ``channel``."""

    name: str
    width: int
    fixed: bool = False
    per_channel: bool = False

    def __str__(self) -> str:
        return self.name + (":channel" if self.per_channel else "")


def number_format(spec: str | NumberFormat) -> NumberFormat:
    """Parse a format name (``fp16``, ``int8``, ``int16:channel``); InputError naming the field
    ``format`` for anything else. The one place format names are checked."""
    if isinstance(spec, NumberFormat):
        return spec
    text = str(spec).strip().lower()
    name, _, rule = text.partition(":")
    if rule not in ("", "channel", "tensor"):
        raise InputError(f"unknown scale rule {rule!r} in {spec!r}; expected :tensor or :channel",
                         field="format")
    if name in _FLOATS:
        if rule == "channel":
            raise InputError(f"{name} has no scale; ':channel' is for intN formats",
                             field="format")
        return NumberFormat(name, _FLOATS[name][0])
    if name.startswith("int") and name[3:].isdigit() and int(name[3:]) in FIXED_WIDTHS:
        return NumberFormat(name, int(name[3:]), True, rule == "channel")
    raise InputError(f"unknown number format {spec!r}; expected fp32, fp16, bf16 or intN "
                     f"(N = {FIXED_WIDTHS[0]}..{FIXED_WIDTHS[-1]}, e.g. int8)", field="format")


def word_bits(spec: str | NumberFormat) -> int:
    """Width in bits of one stored word of the format."""
    return number_format(spec).width


def fixed_scale(values: torch.Tensor, width: int, per_channel: bool = False,
                axis: int = 0) -> torch.Tensor:
    """The scale rule (module doc): ``max|x| / (2^(width-1) - 1)`` over the tensor, or over each
    index of ``axis``, shaped to broadcast against ``values``; a zero range gets scale 1."""
    v = values.detach().abs()
    if per_channel and v.dim() > 0:
        dims = [d for d in range(v.dim()) if d != axis]
        peak = v.amax(dim=dims, keepdim=True) if dims else v
    else:
        peak = v.max().reshape([1] * v.dim())
    return torch.where(peak > 0, peak / (2 ** (width - 1) - 1), torch.ones_like(peak))


def _codes(values: torch.Tensor, width: int, scale: torch.Tensor | float) -> torch.Tensor:
    top = 2 ** (width - 1)
    return torch.clamp(torch.round(values / scale), -top, top - 1).to(torch.int64)


def encode(values: torch.Tensor, fmt: str | NumberFormat,
           scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """Stored words of ``values`` as int64 in [0, 2^width). Fixed point needs ``scale``
    (broadcastable to ``values``; the division is done in the values' dtype)."""
    f = number_format(fmt)
    mask = (1 << f.width) - 1
    if f.fixed:
        if scale is None:
            raise InputError(f"{f} faults need the fixed-point scale", field="format")
        return _codes(values, f.width, scale) & mask
    _, dtype, ints = _FLOATS[f.name]
    return values.to(dtype).view(ints).to(torch.int64) & mask


def _signed(words: torch.Tensor, width: int) -> torch.Tensor:
    top = 1 << (width - 1)
    return torch.where(words >= top, words - (1 << width), words)


def decode(words: torch.Tensor, fmt: str | NumberFormat,
           scale: torch.Tensor | float | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values of stored ``words`` (int64, as :func:`encode` gives) as ``dtype``."""
    f = number_format(fmt)
    if f.fixed:
        if scale is None:
            raise InputError(f"{f} faults need the fixed-point scale", field="format")
        return _signed(words, f.width).to(dtype) * scale
    _, storage, ints = _FLOATS[f.name]
    return _signed(words, f.width).to(ints).view(storage).to(dtype)


def corrupt(values: torch.Tensor, fmt: str | NumberFormat, op: WordOp,
            scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """``values`` after ``op`` on their stored words: decoded faulty words where ``op`` changed
    the word, the original values (bit-identical) where it did not. Same dtype and device."""
    words = encode(values, fmt, scale)
    faulty = op(words)
    decoded = decode(faulty, fmt, scale, values.dtype)
    return torch.where(faulty == words, values, decoded)


def word_delta(values: torch.Tensor, fmt: str | NumberFormat, op: WordOp,
               scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """Change of each stored word's value under ``op`` (faulty decoded minus clean decoded, float64):
    the perturbation the mapping-aware campaign injects into an unquantized model. For fixed point
    this is (faulty code - clean code) x scale."""
    f = number_format(fmt)
    words = encode(values, f, scale)
    faulty = op(words)
    if f.fixed:
        change = (_signed(faulty, f.width) - _signed(words, f.width)).to(torch.float64)
        return change * torch.as_tensor(scale, dtype=torch.float64, device=values.device)
    return decode(faulty, f, dtype=torch.float64) - decode(words, f, dtype=torch.float64)
