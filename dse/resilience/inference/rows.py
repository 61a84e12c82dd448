"""Rows of a batched forward pass: fixed-shape chunks, strides, output patches.

CPU kernels may pick a different algorithm (and summation order) for a different batch size or
memory layout, so a row's result can change in the last bit with the batch it is computed in. The
engines therefore run every operation on exactly ``block`` rows, padding the last chunk with copies
of its first row, with the strides the reference run had.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from dse.errors import InputError

Patch = tuple  # (image | None, positions LongTensor (K,), values Tensor (K,) or (N, K))


def output_tensor(out: Any) -> torch.Tensor:
    """The tensor to classify from a model output: itself, a dict's ``"out"`` (torchvision
    segmentation models) or first value, or a tuple's first element."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return output_tensor(out["out"] if "out" in out else next(iter(out.values())))
    if isinstance(out, (tuple, list)):
        return output_tensor(out[0])
    raise InputError(f"cannot classify a model output of type {type(out).__name__}", field="model")


def pad(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with copies of its first row appended up to ``rows`` rows."""
    if t.shape[0] >= rows:
        return t
    return torch.cat([t, t[:1].expand(rows - t.shape[0], *t.shape[1:])])


def strided(t: torch.Tensor, stride: tuple[int, ...] | None = None) -> torch.Tensor:
    """``t`` laid out with ``stride`` (default: plain row-major). Kernels choose their algorithm
    from the strides too (a 1-channel NCHW tensor can pass for channels-last), so every tensor an
    op sees must be laid out exactly as in the reference run."""
    if stride is None:
        stride = torch.empty(t.shape, device="meta").stride()
    if t.stride() == tuple(stride):
        return t
    return torch.empty_strided(t.shape, stride, dtype=t.dtype, device=t.device).copy_(t)


def holds_tensor(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, dict):
        v = list(v.values())
    return isinstance(v, (tuple, list)) and any(holds_tensor(x) for x in v)


def chunk_slices(n: int, block: int) -> Iterable[slice]:
    return (slice(s, min(s + block, n)) for s in range(0, n, block))


def patch_rows(patches: Sequence[Patch], n_images: int) -> list[tuple]:
    """Expand patches into rows (image, positions, values)."""
    rows = []
    for image, positions, values in patches:
        pos = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
        vals = torch.as_tensor(values)
        images = range(n_images) if image is None else [int(image)]
        for i in images:
            if not 0 <= i < n_images:
                raise InputError(f"image {i} is outside 0..{n_images - 1}", field="image")
            v = vals[i] if (image is None and vals.dim() == 2) else vals.reshape(-1)
            rows.append((i, pos, v))
    return rows


def apply_patches(values: torch.Tensor, rows: Sequence[tuple]) -> torch.Tensor:
    """``values`` (one row per patch row) with each row's elements replaced (one indexed write for
    all rows; a row that names a position twice keeps its last value, as a loop would)."""
    out = values.clone(memory_format=torch.contiguous_format)
    flat = out.view(out.shape[0], -1)
    if not rows:
        return out
    pos = torch.cat([r[1].cpu() for r in rows])
    if pos.numel() and (pos.min() < 0 or pos.max() >= flat.shape[1]):
        raise InputError(f"patch position outside the layer output of {flat.shape[1]} elements",
                         field="positions")
    row = torch.repeat_interleave(torch.arange(len(rows)),
                                  torch.tensor([len(r[1]) for r in rows]))
    vals = torch.cat([r[2].reshape(-1).to(flat.device, flat.dtype) for r in rows])
    key = row * flat.shape[1] + pos
    if len(torch.unique(key)) < len(key):  # keep the last write of a repeated position
        last = {k: i for i, k in enumerate(key.tolist())}
        keep = torch.tensor(sorted(last.values()))
        row, pos, vals = row[keep], pos[keep], vals[keep.to(vals.device)]
    flat[row.to(flat.device), pos.to(flat.device)] = vals
    return out
