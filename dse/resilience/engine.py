"""Fault-injection engines: a naive reference and a fast engine with bit-identical outcomes.

Both engines classify every (fault, image) against the golden (fault-free) run of the same images
and return the same :class:`EngineResult`.

**Fixed batch shape.** CPU kernels may pick a different algorithm (and summation order) for a
different batch size, so a row's result can change in the last bit with the batch it is computed
in (measured here: a batch of 1 and small Linear batches differ from a batch of 100). Both engines
therefore run every operation on exactly ``block`` rows, padding the last chunk with copies of its
first row, and hand it operands laid out with the strides the reference run had (kernels also
choose by strides: a 1-channel NCHW tensor can pass for channels-last). Rows never interact (eval
mode), so a row's result then depends only on its own values.

**NaiveEngine** corrupts the model (weights in place, or a forward hook that replaces output
elements), re-runs the whole network on every image, and restores it.

**FastEngine** traces the model with ``torch.fx`` into a graph of modules and functions, runs it
once on clean images and keeps every node's output (the golden cache). A fault at layer L changes
only the nodes downstream of L's node in the graph, so only those run, in topological order; every
other input they read (a skip connection, a branch, a shape) comes from the golden cache, gathered
for the rows' images. This is exact for any graph ``torch.fx`` can trace, with skip connections
(ResNet), inverted residuals (MobileNetV2) and parallel branches (DeepLabv3's ASPP) alike: a node's
inputs are either downstream of the fault (recomputed) or not (identical to golden by construction).
Further savings, all exact:

- a weight fault recomputes only the faulty layer's output (for Conv2d / Linear only the one output
  channel the weight feeds, from the cached layer input; a delta added to the golden output would
  not be bit-identical). The faulty channels of up to ``out_channels`` faults of one layer come from
  one op of the layer's own shape (row j holding fault j's weights and bias), so the kernel is the
  golden run's; this is used where a check at first use shows that a channel's bits do not depend
  on its row (the golden weights rolled by one row give the golden channels rolled), else a
  one-channel op where that is checked bit-identical, else the full layer;
- many faults of one layer run together: their (fault, image) rows are stacked along the batch dim;
- a (fault, image) row whose faulty layer output is bit-identical to golden is masked and never
  runs further. (Looking again after later nodes -- ReLUs, pools -- was measured on ResNet-20: the
  comparisons cost more than the few rows they drop, so it is not done.)

If the model cannot be traced, or the faulty layer is called more than once per forward, the fast
engine falls back to the naive path for those faults (still exact, not faster).

How close this is to the best any injector with identical outcomes can do -- counted position by
position, and with an oracle for every row that rounding does not decide -- is measured by
``bench/fi_bound.py`` (figures in docs/benchmarks.md).

**Output patches** (for mapping-aware campaigns): :meth:`NaiveEngine.run_output_patches`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from tqdm import tqdm

from dse.errors import InputError
from dse.resilience.faults import Fault, faulty_activation, faulty_weight, layer_module
from dse.resilience.outcomes import CODES, NOT_RUN, classify, rows_identical

Patch = tuple  # (image | None, positions LongTensor (K,), values Tensor (K,) or (N, K))


@dataclass
class EngineResult:
    """Outcome codes (index into :data:`CODES`, -1 where the fault does not touch the image) and
    SDC buckets (index into BUCKETS, -1 for none), both (faults, images)."""

    codes: np.ndarray
    buckets: np.ndarray
    wall_s: float
    propagated: np.ndarray | None = None  # per fault: images run past the faulty layer (fast)


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


def _pad(t: torch.Tensor, rows: int) -> torch.Tensor:
    if t.shape[0] >= rows:
        return t
    return torch.cat([t, t[:1].expand(rows - t.shape[0], *t.shape[1:])])


def _strided(t: torch.Tensor, stride: tuple[int, ...] | None = None) -> torch.Tensor:
    """``t`` laid out with ``stride`` (default: plain row-major). Kernels choose their algorithm
    from the strides too (a 1-channel NCHW tensor can pass for channels-last), so every tensor an
    op sees must be laid out exactly as in the reference run."""
    if stride is None:
        stride = torch.empty(t.shape, device="meta").stride()
    if t.stride() == tuple(stride):
        return t
    return torch.empty_strided(t.shape, stride, dtype=t.dtype).copy_(t)


def _holds_tensor(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, dict):
        v = list(v.values())
    return isinstance(v, (tuple, list)) and any(_holds_tensor(x) for x in v)


def _chunks(n: int, block: int) -> Iterable[slice]:
    return (slice(s, min(s + block, n)) for s in range(0, n, block))


def _patch_rows(patches: Sequence[Patch], n_images: int) -> tuple[list, list]:
    """Expand patches into rows (image, positions, values); the patch index of each row."""
    rows, owner = [], []
    for p, (image, positions, values) in enumerate(patches):
        pos = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
        vals = torch.as_tensor(values)
        images = range(n_images) if image is None else [int(image)]
        for i in images:
            if not 0 <= i < n_images:
                raise InputError(f"image {i} is outside 0..{n_images - 1}", field="image")
            v = vals[i] if (image is None and vals.dim() == 2) else vals.reshape(-1)
            rows.append((i, pos, v))
            owner.append(p)
    return rows, owner


def _apply_patches(values: torch.Tensor, rows: Sequence[tuple]) -> torch.Tensor:
    """``values`` (one row per patch row) with each row's elements replaced (one indexed write for
    all rows; a row that names a position twice keeps its last value, as a loop would)."""
    out = values.clone(memory_format=torch.contiguous_format)
    flat = out.view(out.shape[0], -1)
    if not rows:
        return out
    pos = torch.cat([r[1] for r in rows])
    if pos.numel() and (pos.min() < 0 or pos.max() >= flat.shape[1]):
        raise InputError(f"patch position outside the layer output of {flat.shape[1]} elements",
                         field="positions")
    row = torch.repeat_interleave(torch.arange(len(rows)),
                                  torch.tensor([len(r[1]) for r in rows]))
    vals = torch.cat([r[2].reshape(-1).to(flat.dtype) for r in rows])
    key = row * flat.shape[1] + pos
    if len(torch.unique(key)) < len(key):  # keep the last write of a repeated position
        last = {k: i for i, k in enumerate(key.tolist())}
        keep = torch.tensor(sorted(last.values()))
        row, pos, vals = row[keep], pos[keep], vals[keep]
    flat[row, pos] = vals
    return out


class NaiveEngine:
    """Reference engine: corrupt, re-run the whole network on all images, restore."""

    def __init__(self, model: nn.Module, images: torch.Tensor,
                 labels: torch.Tensor | None = None, *, block: int | None = None):
        if len(images) == 0:
            raise InputError("no images to inject into", field="images")
        self.model = model.eval()
        self.images = images.detach()
        self.labels = labels
        self.n = len(images)
        self.block = block or max(2, min(self.n, 128))
        self._layer_golden: dict[str, torch.Tensor] = {}
        self.golden = self._forward()

    # -- full re-inference -------------------------------------------------------------------
    def _forward(self, hook: Callable | None = None, module: nn.Module | None = None,
                 images: Sequence[int] | None = None) -> torch.Tensor:
        """Logits of ``images`` (default all) in chunks of ``block`` rows; ``hook(out, rows)``
        may rewrite ``module``'s output, where rows are the image indices of the chunk."""
        idx = torch.arange(self.n) if images is None else torch.as_tensor(images)
        outs = []
        for sl in _chunks(len(idx), self.block):
            rows = idx[sl]
            handle = None
            if hook is not None:
                handle = module.register_forward_hook(
                    lambda _m, _i, o, rows=rows: hook(o, rows))
            try:
                with torch.no_grad():
                    out = output_tensor(self.model(self._input(rows)))
            finally:
                if handle is not None:
                    handle.remove()
            outs.append(out[: len(rows)])
        return torch.cat(outs)

    def _input(self, rows: torch.Tensor) -> torch.Tensor:
        """The input chunk of images ``rows``: padded to ``block`` rows, row-major."""
        return _strided(_pad(self.images[rows], self.block))

    def layer_output(self, path: str) -> torch.Tensor:
        """Golden output of layer ``path`` for every image (N, ...); InputError unless the layer
        is called exactly once per forward and returns a tensor."""
        if path not in self._layer_golden:
            module = layer_module(self.model, path)
            seen: list[torch.Tensor] = []

            def grab(out, rows):
                if not isinstance(out, torch.Tensor):
                    raise InputError(f"layer {path!r} does not return a tensor", field="Layer")
                seen.append(out[: len(rows)].detach().clone())

            self._forward(grab, module)
            chunks = -(-self.n // self.block)
            if len(seen) != chunks:
                raise InputError(f"layer {path!r} runs {len(seen) // chunks} times per forward; "
                                 "faults need a layer that runs once", field="Layer")
            self._layer_golden[path] = torch.cat(seen)
        return self._layer_golden[path]

    # -- faults --------------------------------------------------------------------------------
    def fault_patches(self, fault: Fault) -> list[Patch]:
        """An activation fault as output patches (one per image it touches)."""
        golden = self.layer_output(fault.layer)
        flat = int(np.ravel_multi_index(fault.index, golden.shape[1:]))
        values = faulty_activation(golden, fault)
        images = range(self.n) if fault.image is None else [fault.image]
        return [(i, torch.tensor([flat]), values[i].reshape(1)) for i in images]

    def _images_of(self, fault: Fault) -> list[int]:
        if fault.image is None:
            return list(range(self.n))
        if not 0 <= fault.image < self.n:
            raise InputError(f"image {fault.image} is outside 0..{self.n - 1}", field="image")
        return [fault.image]

    def _weight_fault(self, fault: Fault) -> tuple[np.ndarray, np.ndarray]:
        module = layer_module(self.model, fault.layer)
        faulty = faulty_weight(module, fault)
        images = self._images_of(fault)
        saved = module.weight.data
        module.weight.data = faulty
        try:
            out = self._forward()
        finally:
            module.weight.data = saved
        return classify(self.golden[images], out[images])

    def run(self, faults: Sequence[Fault], *, progress: bool = False) -> EngineResult:
        """Outcome of every (fault, image)."""
        t0 = time.perf_counter()
        codes = np.full((len(faults), self.n), NOT_RUN, dtype=np.int8)
        buckets = np.full((len(faults), self.n), -1, dtype=np.int8)
        for f, fault in enumerate(tqdm(faults, disable=not progress, unit="fault")):
            images = self._images_of(fault)
            if fault.target == "weights":
                c, b = self._weight_fault(fault)
            else:
                c, b = self._patch_outcomes(fault.layer, self.fault_patches(fault))
            codes[f, images], buckets[f, images] = c, b
        return EngineResult(codes, buckets, time.perf_counter() - t0)

    # -- output patches ----------------------------------------------------------------------
    def run_output_patches(self, layer_path: str, patches: Sequence[Patch], *,
                           progress: bool = False) -> list:
        """Replace elements of layer ``layer_path``'s output and run the rest of the network.

        Each patch is ``(image, positions, values)``: ``image`` an image index, or None for
        every image; ``positions`` flat indices into one image's output of that layer (C-order,
        batch dim excluded); ``values`` the new values, shape (K,), or for ``image=None`` also
        (N, K) with one row per image. The layer must run once per forward.

        Returns one :class:`Outcome` per (patch, image), patch-major, images ascending (one per
        patch for single-image patches); an Outcome compares equal to its string value.
        """
        codes, _ = self._patch_outcomes(layer_path, patches, progress=progress)
        return [CODES[c] for c in codes]

    def _patch_outcomes(self, layer_path: str, patches: Sequence[Patch], *,
                        progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        module = layer_module(self.model, layer_path)
        self.layer_output(layer_path)
        rows, _ = _patch_rows(patches, self.n)
        codes = np.empty(len(rows), dtype=np.int8)
        buckets = np.empty(len(rows), dtype=np.int8)
        for r, row in enumerate(tqdm(rows, disable=not progress, unit="patch")):
            image = row[0]

            def hook(out, chunk_rows, row=row, image=image):
                hit = (chunk_rows == image).nonzero().flatten()
                if len(hit) == 0:
                    return None
                patched = out.clone()
                patched[: len(chunk_rows)][hit] = _apply_patches(out[hit], [row] * len(hit))
                return patched

            out = self._forward(hook, module, images=[image])
            codes[r], buckets[r] = (a[0] for a in classify(self.golden[[image]], out))
        return codes, buckets


class _Plan:
    """Nodes downstream of a start node, in execution order, with when each value is last read."""

    def __init__(self, nodes: list[fx.Node], start: fx.Node):
        pos = {n: i for i, n in enumerate(nodes)}
        dirty = {start}
        for n in nodes[pos[start] + 1:]:
            if any(a in dirty for a in n.all_input_nodes):
                dirty.add(n)
        self.order = [n for n in nodes[pos[start] + 1:] if n in dirty]
        step = {n: k for k, n in enumerate(self.order)}
        self.last_use = {n: max((step[u] for u in n.users if u in step), default=-1)
                         for n in dirty}


class FastEngine(NaiveEngine):
    """Same results as :class:`NaiveEngine`; runs only what a fault can change (module doc)."""

    def __init__(self, model: nn.Module, images: torch.Tensor,
                 labels: torch.Tensor | None = None, *, block: int | None = None,
                 max_rows: int = 1024):
        super().__init__(model, images, labels, block=block)
        self.max_rows = max(max_rows, self.block)
        self._plans: dict[fx.Node, _Plan] = {}
        self._exact: dict[tuple[str, str], bool] = {}  # (check kind, layer) -> passed
        try:
            self.graph = fx.symbolic_trace(self.model).graph
        except Exception:  # noqa: BLE001 -- any trace failure means: use the naive path
            self.graph = None
        if self.graph is not None:
            self._golden_pass()

    # -- golden cache --------------------------------------------------------------------------
    def _golden_pass(self) -> None:
        self.nodes = list(self.graph.nodes)
        self._mods = dict(self.model.named_modules())
        self._calls: dict[str, list[fx.Node]] = defaultdict(list)
        for n in self.nodes:
            if n.op == "call_module":
                self._calls[n.target].append(n)
        depends = set()
        for n in self.nodes:
            if n.op == "placeholder" or any(a in depends for a in n.all_input_nodes):
                depends.add(n)
        first = next(n for n in self.nodes if n.op == "placeholder")
        chunks: dict[fx.Node, list] = defaultdict(list)
        self.batched: dict[fx.Node, bool] = {}
        self.strides: dict[fx.Node, tuple[int, ...] | None] = {}
        for sl in _chunks(self.n, self.block):
            env: dict[fx.Node, Any] = {}
            r = sl.stop - sl.start
            for n in self.nodes:
                if n.op == "placeholder":
                    env[n] = (self._input(torch.arange(sl.start, sl.stop)) if n is first
                              else (n.args[0] if n.args else None))
                else:
                    with torch.no_grad():
                        env[n] = self._call(n, env.__getitem__)
                v = env[n]
                if n not in self.batched:
                    self.batched[n] = (n in depends and isinstance(v, torch.Tensor)
                                       and v.dim() > 0 and v.shape[0] == self.block)
                    self.strides[n] = v.stride() if self.batched[n] else None
                if self.batched[n]:
                    chunks[n].append(v[:r].clone())
                elif not chunks[n]:
                    chunks[n].append(v)
        self.cache = {n: _strided(torch.cat(c) if len(c) > 1 else c[0], self.strides[n])
                      if self.batched[n] else c[0] for n, c in chunks.items()}
        self._all = torch.arange(self.n)
        out = next(n for n in self.nodes if n.op == "output")
        split = self.n > self.block and any(
            n in depends and not self.batched[n] and n is not out and _holds_tensor(self.cache[n])
            for n in self.nodes)  # e.g. a tuple of per-row tensors: cached for one chunk only
        if split or not rows_identical(output_tensor(self.cache[out]), self.golden).all():
            self.graph = None  # the traced graph cannot replay these bits: stay naive

    def _call(self, n: fx.Node, fetch: Callable[[fx.Node], Any]) -> Any:
        args = fx.node.map_arg(n.args, fetch)
        kwargs = fx.node.map_arg(n.kwargs, fetch)
        if n.op == "get_attr":
            obj: Any = self.model
            for part in n.target.split("."):
                obj = getattr(obj, part)
            return obj
        if n.op == "call_module":
            return self._mods[n.target](*args, **kwargs)
        if n.op == "call_function":
            return n.target(*args, **kwargs)
        if n.op == "call_method":
            return getattr(args[0], n.target)(*args[1:], **kwargs)
        if n.op == "output":
            return args[0]
        raise AssertionError(f"unexpected node op {n.op}")

    def layer_output(self, path: str) -> torch.Tensor:
        node = self._node_of(path)
        return self.cache[node] if node is not None else super().layer_output(path)

    def downstream(self, layer_path: str) -> list[str]:
        """Modules (dotted paths, in execution order) that a fault in ``layer_path``'s output
        re-runs: what the fast engine executes after recomputing that layer."""
        node = self._node_of(layer_path)
        if node is None:
            raise InputError(f"layer {layer_path!r} is not a single traced module call",
                             field="Layer")
        plan = self._plans.get(node) or self._plans.setdefault(node, _Plan(self.nodes, node))
        return [n.target for n in plan.order if n.op == "call_module"]

    def _node_of(self, path: str) -> fx.Node | None:
        calls = self._calls.get(path, []) if self.graph is not None else []
        return calls[0] if len(calls) == 1 else None

    # -- running rows ----------------------------------------------------------------------------
    def _gold_chunk(self, a: fx.Node, imgs: torch.Tensor) -> torch.Tensor:
        """Golden output of node ``a`` for ``imgs`` as one padded chunk laid out as in eager."""
        if len(imgs) == self.n == self.block and torch.equal(imgs, self._all):
            return self.cache[a]
        return _strided(_pad(self.cache[a][imgs], self.block), self.strides[a])

    def _run_chunks(self, n: fx.Node, env: dict, chunks: list[torch.Tensor]) -> list:
        """Node ``n`` on each chunk of rows (image ids ``chunks[j]``): inputs downstream of the
        fault from ``env`` (lists of padded chunks), the rest from the golden cache."""
        outs = []
        for j, imgs in enumerate(chunks):
            def fetch(a, j=j, imgs=imgs):
                if a in env:
                    return env[a][j]
                return self._gold_chunk(a, imgs) if self.batched[a] else self.cache[a]

            with torch.no_grad():
                outs.append(self._call(n, fetch))
        return outs

    def _split(self, values: torch.Tensor, node: fx.Node) -> list[torch.Tensor]:
        return [_strided(_pad(values[sl], self.block), self.strides[node])
                for sl in _chunks(len(values), self.block)]

    def _run_rows(self, n: fx.Node, imgs: torch.Tensor) -> torch.Tensor:
        """Node ``n`` on golden inputs for images ``imgs`` (rows stacked, padding dropped)."""
        chunks = [imgs[sl] for sl in _chunks(len(imgs), self.block)]
        outs = self._run_chunks(n, {}, chunks)
        return torch.cat([o[: len(c)] for o, c in zip(outs, chunks, strict=True)])

    def _propagate(self, start: fx.Node, imgs: torch.Tensor, values: torch.Tensor, *,
                   check_start: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Outcome of rows whose ``start`` node output is ``values`` (golden elsewhere)."""
        plan = self._plans.get(start) or self._plans.setdefault(start, _Plan(self.nodes, start))
        m = len(imgs)
        codes = np.zeros(m, dtype=np.int8)  # 0 = masked, kept for rows dropped early
        buckets = np.full(m, -1, dtype=np.int8)
        if check_start:  # rows whose layer output is golden are masked: never run them
            alive = (~rows_identical(values, self.cache[start][imgs])).nonzero().flatten()
        else:
            alive = torch.arange(m)
        rows = [alive[sl] for sl in _chunks(len(alive), self.block)]  # row ids per chunk
        chunks = [imgs[r] for r in rows]
        env: dict[fx.Node, list] = {start: self._split(values[alive], start)}
        for k, n in enumerate(plan.order):
            if not rows:
                break
            out = self._run_chunks(n, env, chunks)
            if n.op == "output":
                for r, c, o in zip(rows, chunks, out, strict=True):
                    codes[r.numpy()], buckets[r.numpy()] = classify(
                        self.golden[c], output_tensor(o)[: len(c)])
                break
            env[n] = out
            env = {a: v for a, v in env.items() if plan.last_use[a] > k}
        return codes, buckets

    # -- faults ----------------------------------------------------------------------------------
    def _faulty_start(self, node: fx.Node, fault: Fault,
                      imgs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images whose faulty layer output differs from golden, that output), computed exactly
        as a full re-inference computes it."""
        module = layer_module(self.model, fault.layer)
        faulty = faulty_weight(module, fault)
        if self._channel_exact(node, module):
            ch = fault.index[0]
            new = self._one_channel(node, module, faulty, ch, imgs)
            changed = ~rows_identical(new, self.cache[node][imgs, ch : ch + 1])
            imgs = imgs[changed]
            return imgs, self.cache[node][imgs].index_copy(1, torch.tensor([ch]), new[changed])
        saved = module.weight.data
        module.weight.data = faulty
        try:
            values = self._run_rows(node, imgs)
        finally:
            module.weight.data = saved
        changed = ~rows_identical(values, self.cache[node][imgs])
        return imgs[changed], values[changed]

    def _one_channel(self, node: fx.Node, module: nn.Module, weight: torch.Tensor, ch: int,
                     imgs: torch.Tensor) -> torch.Tensor:
        """Output channel ``ch`` of a Conv2d / Linear with ``weight``, from the cached input."""
        bias = None if module.bias is None else module.bias.detach()[ch : ch + 1]
        return self._layer_rows(node, module, weight[ch : ch + 1], imgs, bias)

    def _layer_rows(self, node: fx.Node, module: nn.Module, weight: torch.Tensor,
                    imgs: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """A Conv2d / Linear layer with ``weight`` (and ``bias``, default the layer's) on the
        cached input of images ``imgs``, in chunks of ``block`` rows."""
        src = node.all_input_nodes[0]
        if bias is None and module.bias is not None:
            bias = module.bias.detach()
        outs = []
        for sl in _chunks(len(imgs), self.block):
            xb = self._gold_chunk(src, imgs[sl])
            with torch.no_grad():
                if isinstance(module, nn.Conv2d):
                    y = module._conv_forward(xb, weight, bias)
                else:
                    y = nn.functional.linear(xb, weight, bias)
            outs.append(y[: sl.stop - sl.start])
        return torch.cat(outs)

    def _stack_exact(self, node: fx.Node, module: nn.Module) -> bool:
        """Whether output channel j of the layer computed with another weight row in row j is
        bit-identical to the layer's own channel for that row: then one layer-shaped op computes
        the faulty channel of up to ``out_channels`` faults at once (same shapes as the golden
        run, so the same kernel). Checked on the golden rows rolled by one."""
        def check(imgs: torch.Tensor, w: torch.Tensor, gold: torch.Tensor) -> bool:
            bias = None if module.bias is None else module.bias.detach().roll(1, 0)
            out = self._layer_rows(node, module, w.roll(1, 0), imgs, bias)
            return bool(rows_identical(out, gold.roll(1, 1)).all())

        return self._layer_check("stack", node, module, check)

    def _channel_exact(self, node: fx.Node, module: nn.Module) -> bool:
        """Whether recomputing one output channel reproduces the full layer's bits (checked on
        the first, a middle and the last channel; the kernel choice depends on shapes, not on
        which channel)."""
        def check(imgs: torch.Tensor, w: torch.Tensor, gold: torch.Tensor) -> bool:
            chans = sorted({0, w.shape[0] // 2, w.shape[0] - 1})
            return all(bool(rows_identical(self._one_channel(node, module, w, c, imgs),
                                           gold[:, c : c + 1]).all()) for c in chans)

        return self._layer_check("channel", node, module, check)

    def _layer_check(self, kind: str, node: fx.Node, module: nn.Module,
                     check: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], bool]) -> bool:
        """``check(images, weight, golden layer output)`` on the first chunk of the golden run,
        once per layer and kind, for plain Conv2d / Linear layers on one cached input."""
        key = (kind, node.target)
        if key not in self._exact:
            imgs = torch.arange(min(self.n, self.block))
            self._exact[key] = self._one_op_layer(node, module) and check(
                imgs, module.weight.detach(), self.cache[node][imgs])
        return self._exact[key]

    def _one_op_layer(self, node: fx.Node, module: nn.Module) -> bool:
        """A plain Conv2d (zero padding, no groups) or Linear on one cached, batched input."""
        return (isinstance(module, (nn.Conv2d, nn.Linear)) and len(node.all_input_nodes) == 1
                and not node.kwargs and self.batched[node.all_input_nodes[0]]
                and module.weight.dim() >= 2
                and (isinstance(module, nn.Linear)
                     or (module.padding_mode == "zeros" and module.groups == 1)))

    def run(self, faults: Sequence[Fault], *, progress: bool = False) -> EngineResult:
        t0 = time.perf_counter()
        codes = np.full((len(faults), self.n), NOT_RUN, dtype=np.int8)
        buckets = np.full((len(faults), self.n), -1, dtype=np.int8)
        by_layer: dict[tuple[str, str], list[int]] = defaultdict(list)
        for f, fault in enumerate(faults):
            by_layer[(fault.target, fault.layer)].append(f)
            codes[f, self._images_of(fault)] = 0  # masked unless found otherwise below
        propagated = np.zeros(len(faults), dtype=np.int64)
        bar = tqdm(total=len(faults), disable=not progress, unit="fault")
        for (target, layer), members in by_layer.items():
            layer_module(self.model, layer)
            node = self._node_of(layer)
            if node is None:
                res = super().run([faults[f] for f in members])
                codes[members], buckets[members] = res.codes, res.buckets
                propagated[members] = (res.codes >= 0).sum(axis=1)
                bar.update(len(members))
                continue
            group: list[tuple[int, torch.Tensor, torch.Tensor]] = []
            rows = 0
            for f, imgs, vals in self._starts(node, target, faults, members):
                propagated[f] = len(imgs)
                if len(imgs):
                    group.append((f, imgs, vals))
                    rows += len(imgs)
                else:
                    bar.update(1)
                if group and rows >= self.max_rows:
                    self._finish(node, group, codes, buckets)
                    bar.update(len(group))
                    group, rows = [], 0
            if group:
                self._finish(node, group, codes, buckets)
                bar.update(len(group))
        bar.close()
        return EngineResult(codes, buckets, time.perf_counter() - t0, propagated)

    def _starts(self, node: fx.Node, target: str, faults: Sequence[Fault],
                members: list[int]) -> Iterable[tuple[int, torch.Tensor, torch.Tensor]]:
        """For each fault of one layer: (its index, the images whose layer output it changes, that
        output)."""
        if target != "weights":
            for f in members:
                imgs = torch.as_tensor(self._images_of(faults[f]))
                prows, _ = _patch_rows(self.fault_patches(faults[f]), self.n)
                vals = _apply_patches(self.cache[node][imgs], prows)
                same = rows_identical(vals, self.cache[node][imgs])
                yield f, imgs[~same], vals[~same]
            return
        module = layer_module(self.model, faults[members[0]].layer)
        if not self._stack_exact(node, module):
            for f in members:
                yield f, *self._faulty_start(node, faults[f],
                                             torch.as_tensor(self._images_of(faults[f])))
            return
        width = module.weight.shape[0]
        for s in range(0, len(members), width):
            part = members[s : s + width]
            weight = module.weight.detach().clone()
            bias = None if module.bias is None else module.bias.detach().clone()
            for j, f in enumerate(part):  # row j: fault f's output channel, weights and bias
                ch = faults[f].index[0]
                weight[j] = faulty_weight(module, faults[f])[ch]
                if bias is not None:
                    bias[j] = module.bias[ch]
            out = self._layer_rows(node, module, weight, self._all, bias)
            for j, f in enumerate(part):
                imgs, ch = torch.as_tensor(self._images_of(faults[f])), faults[f].index[0]
                new = out[imgs, j : j + 1]
                changed = ~rows_identical(new, self.cache[node][imgs, ch : ch + 1])
                imgs = imgs[changed]
                yield f, imgs, self.cache[node][imgs].index_copy(1, torch.tensor([ch]), new[changed])

    def _finish(self, node: fx.Node, group: list[tuple[int, torch.Tensor, torch.Tensor]],
                codes: np.ndarray, buckets: np.ndarray) -> None:
        """Run a group of (fault, images, layer output) to the end; write their outcomes."""
        c, b = self._propagate(node, torch.cat([g[1] for g in group]),
                               torch.cat([g[2] for g in group]), check_start=False)
        at = 0
        for f, imgs, _ in group:
            sl = slice(at, at + len(imgs))
            codes[f, imgs.numpy()], buckets[f, imgs.numpy()] = c[sl], b[sl]
            at += len(imgs)

    def _patch_outcomes(self, layer_path: str, patches: Sequence[Patch], *,
                        progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        layer_module(self.model, layer_path)
        node = self._node_of(layer_path)
        if node is None:
            return super()._patch_outcomes(layer_path, patches, progress=progress)
        rows, _ = _patch_rows(patches, self.n)
        codes = np.empty(len(rows), dtype=np.int8)
        buckets = np.empty(len(rows), dtype=np.int8)
        step = self.max_rows
        for s in tqdm(range(0, len(rows), step), disable=not progress, unit="chunk"):
            part = rows[s : s + step]
            imgs = torch.tensor([r[0] for r in part])
            vals = _apply_patches(self.cache[node][imgs], part)
            codes[s : s + step], buckets[s : s + step] = self._propagate(node, imgs, vals)
        return codes, buckets
