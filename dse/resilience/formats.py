"""Number formats a value can be stored in, and exact bit-level faults on that representation.

The network always computes in float32. A value *stored* in format F is the float32 value
``decode_F(encode_F(v))``; a fault changes bits of ``encode_F(v)``. When the fault leaves the
encoding unchanged (a stuck-at equal to the stored bit), the value is left exactly as it was, so
such a fault is masked by construction instead of showing up as a rounding change from the format
conversion.

Bit numbering: bit 0 is the least significant bit of the stored word; for fp32 bit 31 is the sign,
30..23 the exponent; for fp16 15 sign, 14..10 exponent; for bf16 15 sign, 14..7 exponent; int8 is
two's complement (bit 7 is the sign) of the symmetric quantization ``q = clamp(round(v / s), ±127)``
with ``s = max|v| / 127`` over the tensor or over each channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dse.errors import InputError

FORMATS: dict[str, int] = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8}
FAULT_KINDS = ("bitflip", "stuck0", "stuck1")


def word_bits(fmt: str) -> int:
    """Width in bits of one stored word of ``fmt``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown number format {fmt!r}; expected one of {sorted(FORMATS)}",
                         field="format")
    return FORMATS[fmt]


def check_bits(fmt: str, bits: Sequence[int]) -> tuple[int, ...]:
    """The bit positions as a tuple, after checking they exist in ``fmt`` and are distinct."""
    width = word_bits(fmt)
    out = tuple(int(b) for b in bits)
    if not out:
        raise InputError("a fault needs at least one bit", field="bit")
    bad = [b for b in out if not 0 <= b < width]
    if bad:
        raise InputError(f"bit {bad[0]} is outside the {width}-bit {fmt} word (0..{width - 1})",
                         field="bit")
    if len(set(out)) != len(out):
        raise InputError(f"repeated bit in {list(out)}", field="bit")
    return out


def quant_scale(values: torch.Tensor, per_channel: bool = False, axis: int = 0) -> torch.Tensor:
    """Symmetric int8 step ``max|v| / 127``, one per tensor or one per index of ``axis``, shaped to
    broadcast against ``values``. A zero range gets step 1 so zeros stay zeros."""
    v = values.detach().float().abs()
    if per_channel:
        dims = [d for d in range(v.dim()) if d != axis]
        peak = v.amax(dim=dims, keepdim=True) if dims else v
    else:
        peak = v.max().reshape([1] * v.dim())
    return torch.where(peak > 0, peak / 127.0, torch.ones_like(peak))


def _encode(values: np.ndarray, fmt: str, scale: np.ndarray | None) -> np.ndarray:
    """Stored words as unsigned integers (uint32 for fp32, uint16 for 16-bit, uint8 for int8)."""
    if fmt == "fp32":
        return values.astype(np.float32).view(np.uint32)
    if fmt == "fp16":
        return values.astype(np.float16).view(np.uint16)
    if fmt == "bf16":
        t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(torch.bfloat16)
        return t.view(torch.int16).numpy().view(np.uint16)
    q = np.clip(np.round(values.astype(np.float32) / scale), -127, 127).astype(np.int8)
    return q.view(np.uint8)


def _decode(words: np.ndarray, fmt: str, scale: np.ndarray | None) -> np.ndarray:
    if fmt == "fp32":
        return words.view(np.float32)
    if fmt == "fp16":
        return words.view(np.float16).astype(np.float32)
    if fmt == "bf16":
        t = torch.from_numpy(words.view(np.int16).copy()).view(torch.bfloat16)
        return t.float().numpy()
    return (words.view(np.int8).astype(np.float32) * scale).astype(np.float32)


def corrupt(values: torch.Tensor, fmt: str, bits: Sequence[int], kind: str = "bitflip",
            scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """``values`` (float32, any shape) after the fault ``kind`` on ``bits`` of their ``fmt`` words.

    ``scale`` is the int8 step, broadcastable to ``values`` (required for int8, ignored otherwise).
    Elements whose stored word the fault does not change come back bit-identical.
    """
    bits = check_bits(fmt, bits)
    if kind not in FAULT_KINDS:
        raise InputError(f"unknown fault kind {kind!r}; expected one of {list(FAULT_KINDS)}",
                         field="fault")
    v = values.detach().to(torch.float32).cpu().numpy()
    s = None
    if fmt == "int8":
        if scale is None:
            raise InputError("int8 faults need the quantization scale", field="format")
        s = np.broadcast_to(torch.as_tensor(scale, dtype=torch.float32).numpy(), v.shape)
    words = _encode(v, fmt, s)
    mask = words.dtype.type(sum(1 << b for b in bits))
    if kind == "bitflip":
        faulty = words ^ mask
    elif kind == "stuck0":
        faulty = words & ~mask
    else:
        faulty = words | mask
    decoded = _decode(np.ascontiguousarray(faulty), fmt, s).reshape(v.shape)
    out = np.where(faulty == words, v, decoded).astype(np.float32)
    return torch.from_numpy(out).to(values.dtype)
