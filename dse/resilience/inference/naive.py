"""The reference engine: corrupt the model, re-run the whole network on every image, restore.

Every fast path is checked against it (fast == naive per fault and image). A weight or bias fault
swaps the layer's tensor for a faulty copy; an output fault is a forward hook that replaces output
elements. The model runs in eval mode unless told otherwise, with gradients off unless ``grad``:
rows never interact in eval mode, so a row's result depends only on its own values (see
:mod:`dse.resilience.inference.rows` for why every op still sees ``block`` rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from dse.devices import resolve_device
from dse.errors import InputError
from dse.frames import Framed
from dse.resilience import outcomes
from dse.resilience.fault import Fault
from dse.resilience.inference.rows import (
    Patch,
    apply_patches,
    chunk_slices,
    output_tensor,
    pad,
    patch_rows,
    strided,
)
from dse.resilience.inference.targets import (
    check_supported,
    faulty_activation,
    faulty_params,
    layer_module,
)
from dse.resilience.outcomes import OutcomeSpec


@dataclass
class EngineResult(Framed):
    """Outcome labels of every (fault, image): (faults, images, axes of ``spec``), label -1
    where the image was not run (a fault for one inference touches one image).
    ``to_frame()``: one row per fault, its pairs run and pairs per outcome class."""

    labels: np.ndarray
    spec: OutcomeSpec
    wall_s: float
    propagated: np.ndarray | None = None  # per fault: images run past the faulty layer (fast)

    def counts(self) -> np.ndarray:
        """(faults, ``spec.columns``) counts: run pairs, then each class."""
        return self.spec.tally(self.labels)

    def frame_rows(self) -> list[dict]:
        return [{"fault": i, "fault_image_pairs": int(c[0]),
                 **{f"{cls}_pairs": int(k) for cls, k in zip(self.spec.classes, c[1:],
                                                             strict=True)}}
                for i, c in enumerate(self.counts())]


class NaiveEngine:
    """Reference engine: corrupt, re-run the whole network on all images, restore.

    ``outcome`` names the outcome spec (default top-1 classification), ``device`` where the model
    and images live (the model is moved there), ``eval_mode`` / ``grad`` the mode the model runs
    in (defaults: eval, no gradients; the fast engine is exact only in eval mode).
    """

    def __init__(self, model: nn.Module, images: torch.Tensor,
                 targets: torch.Tensor | None = None, *, outcome: str | OutcomeSpec = "top1",
                 device: str | torch.device = "cpu", block: int | None = None,
                 eval_mode: bool = True, grad: bool = False):
        if len(images) == 0:
            raise InputError("no images to inject into", field="images")
        self.device = resolve_device(device)
        self.spec = outcomes.get(outcome)
        self.eval_mode, self.grad = eval_mode, grad
        self.model = model.to(self.device).train(not eval_mode)
        self.images = images.detach().to(self.device)
        self.targets = targets
        self.n = len(images)
        self.block = block or max(2, min(self.n, 128))
        self._layer_golden: dict[str, torch.Tensor] = {}
        self.golden = self._forward()

    def golden_accuracy(self) -> float | None:
        """Top-1 accuracy of the fault-free model on the engine's images (None without labels):
        the baseline a reader needs beside any failure rate, since SDC counts changed
        predictions, right or wrong."""
        if self.targets is None or self.golden.dim() != 2:
            return None
        hits = self.golden.argmax(1).cpu() == torch.as_tensor(self.targets).cpu()
        return float(hits.float().mean())

    def settings(self) -> dict:
        """Keyword arguments that rebuild this engine elsewhere (a worker process)."""
        return {"outcome": self.spec.name, "device": str(self.device), "block": self.block,
                "eval_mode": self.eval_mode, "grad": self.grad}

    def classify(self, golden: torch.Tensor, faulty: torch.Tensor) -> np.ndarray:
        return self.spec.classify(golden, faulty)

    # -- full re-inference -------------------------------------------------------------------
    def _forward(self, hook: Callable | None = None, module: nn.Module | None = None,
                 images: Sequence[int] | None = None) -> torch.Tensor:
        """Outputs of ``images`` (default all) in chunks of ``block`` rows; ``hook(inputs, out,
        rows)`` may rewrite ``module``'s output, where rows are the image indices of the chunk."""
        idx = torch.arange(self.n) if images is None else torch.as_tensor(images)
        outs = []
        for sl in chunk_slices(len(idx), self.block):
            rows = idx[sl]
            handle = None
            if hook is not None:
                handle = module.register_forward_hook(
                    lambda _m, i, o, rows=rows: hook(i, o, rows))
            try:
                with torch.set_grad_enabled(self.grad):
                    out = output_tensor(self.model(self._input(rows)))
            finally:
                if handle is not None:
                    handle.remove()
            outs.append(out[: len(rows)].detach())
        return torch.cat(outs)

    def _input(self, rows: torch.Tensor) -> torch.Tensor:
        """The input chunk of images ``rows``: padded to ``block`` rows, row-major."""
        return strided(pad(self.images[rows.to(self.device)], self.block))

    def layer_output(self, path: str) -> torch.Tensor:
        """Golden output of layer ``path`` for every image (N, ...); InputError unless the layer
        is called exactly once per forward and returns a tensor."""
        if path not in self._layer_golden:
            self._layer_golden[path] = self._capture(path, with_input=False)[1]
        return self._layer_golden[path]

    def layer_io(self, path: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Golden (first input, output) of layer ``path`` for every image, as this engine's
        golden run computes them (the mapping-aware campaign binds its operands to these)."""
        inputs, outputs = self._capture(path, with_input=True)
        self._layer_golden.setdefault(path, outputs)
        return inputs, self._layer_golden[path]

    def _capture(self, path: str, with_input: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        module = layer_module(self.model, path)
        seen: list[tuple] = []

        def grab(inputs, out, rows):
            if not isinstance(out, torch.Tensor):
                raise InputError(f"layer {path!r} does not return a tensor", field="Layer")
            x = inputs[0][: len(rows)].detach().clone() if with_input else None
            seen.append((x, out[: len(rows)].detach().clone()))

        self._forward(grab, module)
        n_chunks = -(-self.n // self.block)
        if len(seen) != n_chunks:
            raise InputError(f"layer {path!r} runs {len(seen) // n_chunks} times per forward; "
                             "faults need a layer that runs once", field="Layer")
        return (torch.cat([s[0] for s in seen]) if with_input else None,
                torch.cat([s[1] for s in seen]))

    # -- faults --------------------------------------------------------------------------------
    def fault_patches(self, fault: Fault) -> list[Patch]:
        """An output fault as output patches (one per image it touches)."""
        pos, values = faulty_activation(self.layer_output(fault.where.layer), fault)
        return [(i, pos, values[i]) for i in self._images_of(fault)]

    def _images_of(self, fault: Fault) -> list[int]:
        check_supported(fault)
        image = fault.image
        if image is None:
            return list(range(self.n))
        if not 0 <= image < self.n:
            raise InputError(f"image {image} is outside 0..{self.n - 1}", field="image")
        return [image]

    def _param_fault(self, fault: Fault) -> np.ndarray:
        module = layer_module(self.model, fault.where.layer)
        weight, bias = faulty_params(module, fault)
        images = self._images_of(fault)
        saved = module.weight.data, None if module.bias is None else module.bias.data
        module.weight.data = weight
        if bias is not None:
            module.bias.data = bias
        try:
            out = self._forward()
        finally:
            module.weight.data = saved[0]
            if saved[1] is not None:
                module.bias.data = saved[1]
        return self.classify(self.golden[images], out[images])

    def run(self, faults: Sequence[Fault], *, progress: bool = False) -> EngineResult:
        """Outcome labels of every (fault, image)."""
        t0 = time.perf_counter()
        labels = outcomes.empty_labels(self.spec, len(faults), self.n)
        for f, fault in enumerate(tqdm(faults, disable=None if progress else True, unit="fault")):
            images = self._images_of(fault)
            if fault.where.role == "output":
                got = self._patch_labels(fault.where.layer, self.fault_patches(fault))
            else:
                got = self._param_fault(fault)
            labels[f, images] = got
        return EngineResult(labels, self.spec, time.perf_counter() - t0)

    # -- output patches ----------------------------------------------------------------------
    def run_output_patches(self, layer_path: str, patches: Sequence[Patch], *,
                           progress: bool = False) -> np.ndarray:
        """Replace elements of layer ``layer_path``'s output and run the rest of the network.

        Each patch is ``(image, positions, values)``: ``image`` an image index, or None for
        every image; ``positions`` flat indices into one image's output of that layer (C-order,
        batch dim excluded); ``values`` the new values, shape (K,), or for ``image=None`` also
        (N, K) with one row per image. The layer must run once per forward.

        Returns the outcome labels (rows, axes of the spec), one row per (patch, image),
        patch-major, images ascending (one per patch for single-image patches).
        """
        return self._patch_labels(layer_path, patches, progress=progress)

    def _patch_labels(self, layer_path: str, patches: Sequence[Patch], *,
                      progress: bool = False) -> np.ndarray:
        module = layer_module(self.model, layer_path)
        self.layer_output(layer_path)
        rows = patch_rows(patches, self.n)
        labels = np.empty((len(rows), len(self.spec.axes)), dtype=np.int8)
        for r, row in enumerate(tqdm(rows, disable=None if progress else True, unit="patch")):
            image = row[0]

            def hook(_inputs, out, chunk_rows, row=row, image=image):
                hit = (chunk_rows == image).nonzero().flatten().to(out.device)
                if len(hit) == 0:
                    return None
                patched = out.clone()
                patched[: len(chunk_rows)][hit] = apply_patches(out[hit], [row] * len(hit))
                return patched

            out = self._forward(hook, module, images=[image])
            labels[r] = self.classify(self.golden[[image]], out)[0]
        return labels
