"""The fast engine: outcomes bit-identical to :class:`NaiveEngine`, running only what a fault
can change.

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

The fast engine needs eval mode (rows must not interact); with ``eval_mode=False`` it runs the
naive path.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from tqdm import tqdm

from dse.errors import InputError
from dse.resilience import outcomes
from dse.resilience.fault import Fault
from dse.resilience.inference.naive import EngineResult, NaiveEngine
from dse.resilience.inference.rows import (
    Patch,
    apply_patches,
    chunk_slices,
    holds_tensor,
    output_tensor,
    pad,
    patch_rows,
    strided,
)
from dse.resilience.inference.targets import fault_channels, faulty_params, layer_module
from dse.resilience.outcomes import OutcomeSpec, rows_identical


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
                 targets: torch.Tensor | None = None, *, outcome: str | OutcomeSpec = "top1",
                 device: str | torch.device = "cpu", block: int | None = None,
                 eval_mode: bool = True, grad: bool = False, max_rows: int = 1024):
        super().__init__(model, images, targets, outcome=outcome, device=device, block=block,
                         eval_mode=eval_mode, grad=grad)
        self.max_rows = max(max_rows, self.block)
        self._plans: dict[fx.Node, _Plan] = {}
        self._exact: dict[tuple[str, str], bool] = {}  # (check kind, layer) -> passed
        self.graph = None
        if eval_mode:
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
        for sl in chunk_slices(self.n, self.block):
            env: dict[fx.Node, Any] = {}
            r = sl.stop - sl.start
            for n in self.nodes:
                if n.op == "placeholder":
                    env[n] = (self._input(torch.arange(sl.start, sl.stop)) if n is first
                              else (n.args[0] if n.args else None))
                else:
                    with torch.set_grad_enabled(self.grad):
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
        self.cache = {n: strided(torch.cat(c) if len(c) > 1 else c[0], self.strides[n])
                      if self.batched[n] else c[0] for n, c in chunks.items()}
        self._all = torch.arange(self.n)
        out = next(n for n in self.nodes if n.op == "output")
        split = self.n > self.block and any(
            n in depends and not self.batched[n] and n is not out and holds_tensor(self.cache[n])
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
        return strided(pad(self.cache[a][imgs], self.block), self.strides[a])

    def _run_chunks(self, n: fx.Node, env: dict, chunks: list[torch.Tensor]) -> list:
        """Node ``n`` on each chunk of rows (image ids ``chunks[j]``): inputs downstream of the
        fault from ``env`` (lists of padded chunks), the rest from the golden cache."""
        outs = []
        for j, imgs in enumerate(chunks):
            def fetch(a, j=j, imgs=imgs):
                if a in env:
                    return env[a][j]
                return self._gold_chunk(a, imgs) if self.batched[a] else self.cache[a]

            with torch.set_grad_enabled(self.grad):
                outs.append(self._call(n, fetch))
        return outs

    def _split(self, values: torch.Tensor, node: fx.Node) -> list[torch.Tensor]:
        return [strided(pad(values[sl], self.block), self.strides[node])
                for sl in chunk_slices(len(values), self.block)]

    def _run_rows(self, n: fx.Node, imgs: torch.Tensor) -> torch.Tensor:
        """Node ``n`` on golden inputs for images ``imgs`` (rows stacked, padding dropped)."""
        parts = [imgs[sl] for sl in chunk_slices(len(imgs), self.block)]
        outs = self._run_chunks(n, {}, parts)
        return torch.cat([o[: len(c)] for o, c in zip(outs, parts, strict=True)])

    def _propagate(self, start: fx.Node, imgs: torch.Tensor, values: torch.Tensor, *,
                   check_start: bool = True) -> np.ndarray:
        """Outcome of rows whose ``start`` node output is ``values`` (golden elsewhere)."""
        plan = self._plans.get(start) or self._plans.setdefault(start, _Plan(self.nodes, start))
        m = len(imgs)
        labels = np.empty((m, len(self.spec.axes)), dtype=np.int8)
        labels[:] = self.spec.identical  # kept for rows dropped early
        if check_start:  # rows whose layer output is golden are masked: never run them
            alive = (~rows_identical(values, self.cache[start][imgs])).nonzero().flatten()
        else:
            alive = torch.arange(m)
        rows = [alive[sl] for sl in chunk_slices(len(alive), self.block)]  # row ids per chunk
        chunks = [imgs[r] for r in rows]
        env: dict[fx.Node, list] = {start: self._split(values[alive], start)}
        for k, n in enumerate(plan.order):
            if not rows:
                break
            out = self._run_chunks(n, env, chunks)
            if n.op == "output":
                for r, c, o in zip(rows, chunks, out, strict=True):
                    labels[r.numpy()] = self.classify(self.golden[c], output_tensor(o)[: len(c)])
                break
            env[n] = out
            env = {a: v for a, v in env.items() if plan.last_use[a] > k}
        return labels

    # -- faults ----------------------------------------------------------------------------------
    def _faulty_start(self, node: fx.Node, fault: Fault,
                      imgs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images whose faulty layer output differs from golden, that output), computed exactly
        as a full re-inference computes it."""
        module = layer_module(self.model, fault.where.layer)
        weight, bias = faulty_params(module, fault)
        channels = fault_channels(module, fault)
        if len(channels) == 1 and self._channel_exact(node, module):
            ch = channels[0]
            new = self._one_channel(node, module, weight, bias, ch, imgs)
            return self._with_channel(node, imgs, ch, new)
        saved = module.weight.data, None if module.bias is None else module.bias.data
        module.weight.data = weight
        if bias is not None:
            module.bias.data = bias
        try:
            values = self._run_rows(node, imgs)
        finally:
            module.weight.data = saved[0]
            if saved[1] is not None:
                module.bias.data = saved[1]
        changed = ~rows_identical(values, self.cache[node][imgs])
        return imgs[changed], values[changed]

    def _with_channel(self, node: fx.Node, imgs: torch.Tensor, ch: int,
                      new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images whose output channel ``ch`` differs from golden in ``new`` (rows, 1, ...),
        their golden layer output with that channel replaced)."""
        changed = ~rows_identical(new, self.cache[node][imgs, ch : ch + 1])
        imgs = imgs[changed]
        at = torch.tensor([ch], device=new.device)
        return imgs, self.cache[node][imgs].index_copy(1, at, new[changed.to(new.device)])

    def _one_channel(self, node: fx.Node, module: nn.Module, weight: torch.Tensor,
                     bias: torch.Tensor | None, ch: int, imgs: torch.Tensor) -> torch.Tensor:
        """Output channel ``ch`` of a Conv2d / Linear with ``weight`` / ``bias``, from the
        cached input."""
        b = None if bias is None else bias[ch : ch + 1]
        return self._layer_rows(node, module, weight[ch : ch + 1], imgs, b)

    def _layer_rows(self, node: fx.Node, module: nn.Module, weight: torch.Tensor,
                    imgs: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """A Conv2d / Linear layer with ``weight`` (and ``bias``, default the layer's) on the
        cached input of images ``imgs``, in chunks of ``block`` rows."""
        src = node.all_input_nodes[0]
        if bias is None and module.bias is not None:
            bias = module.bias.detach()
        outs = []
        for sl in chunk_slices(len(imgs), self.block):
            xb = self._gold_chunk(src, imgs[sl])
            with torch.set_grad_enabled(self.grad):
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
            bias = None if module.bias is None else module.bias.detach()
            return all(bool(rows_identical(self._one_channel(node, module, w, bias, c, imgs),
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
        labels = outcomes.empty_labels(self.spec, len(faults), self.n)
        by_layer: dict[tuple[str, str], list[int]] = defaultdict(list)
        for f, fault in enumerate(faults):
            by_layer[(fault.where.role == "output", fault.where.layer)].append(f)
            labels[f, self._images_of(fault)] = self.spec.identical  # unless found otherwise
        propagated = np.zeros(len(faults), dtype=np.int64)
        bar = tqdm(total=len(faults), disable=None if progress else True, unit="fault")
        for (is_output, layer), members in by_layer.items():
            layer_module(self.model, layer)
            node = self._node_of(layer)
            if node is None:
                res = super().run([faults[f] for f in members])
                labels[members] = res.labels
                propagated[members] = (res.labels[..., 0] >= 0).sum(axis=1)
                bar.update(len(members))
                continue
            group: list[tuple[int, torch.Tensor, torch.Tensor]] = []
            rows = 0
            starts = (self._output_starts if is_output else self._param_starts)(node, faults,
                                                                                members)
            for f, imgs, vals in starts:
                propagated[f] = len(imgs)
                if len(imgs):
                    group.append((f, imgs, vals))
                    rows += len(imgs)
                else:
                    bar.update(1)
                if group and rows >= self.max_rows:
                    self._finish(node, group, labels)
                    bar.update(len(group))
                    group, rows = [], 0
            if group:
                self._finish(node, group, labels)
                bar.update(len(group))
        bar.close()
        return EngineResult(labels, self.spec, time.perf_counter() - t0, propagated)

    def _output_starts(self, node: fx.Node, faults: Sequence[Fault],
                       members: list[int]) -> Iterable[tuple[int, torch.Tensor, torch.Tensor]]:
        """For each output fault of one layer: (its index, the images whose layer output it
        changes, that output)."""
        for f in members:
            imgs = torch.as_tensor(self._images_of(faults[f]))
            prows = patch_rows(self.fault_patches(faults[f]), self.n)
            vals = apply_patches(self.cache[node][imgs], prows)
            same = rows_identical(vals, self.cache[node][imgs])
            yield f, imgs[~same], vals[(~same).to(vals.device)]

    def _param_starts(self, node: fx.Node, faults: Sequence[Fault],
                      members: list[int]) -> Iterable[tuple[int, torch.Tensor, torch.Tensor]]:
        """As :meth:`_output_starts`, for weight / bias faults: faults within one output channel
        share layer-shaped ops (row j of the op holds fault j's channel) where that is exact."""
        module = layer_module(self.model, faults[members[0]].where.layer)
        stack = self._stack_exact(node, module)
        single: list[tuple[int, int]] = []  # (fault, its one channel)
        for f in members:
            channels = fault_channels(module, faults[f])
            if stack and len(channels) == 1:
                single.append((f, channels[0]))
            else:
                yield f, *self._faulty_start(node, faults[f],
                                             torch.as_tensor(self._images_of(faults[f])))
        width = module.weight.shape[0]
        for s in range(0, len(single), width):
            part = single[s : s + width]
            weight = module.weight.detach().clone()
            bias = None if module.bias is None else module.bias.detach().clone()
            for j, (f, ch) in enumerate(part):  # row j: fault f's output channel, weights, bias
                w, b = faulty_params(module, faults[f])
                weight[j] = w[ch]
                if bias is not None:
                    bias[j] = b[ch]
            out = self._layer_rows(node, module, weight, self._all, bias)
            for j, (f, ch) in enumerate(part):
                imgs = torch.as_tensor(self._images_of(faults[f]))
                yield f, *self._with_channel(node, imgs, ch, out[imgs, j : j + 1])

    def _finish(self, node: fx.Node, group: list[tuple[int, torch.Tensor, torch.Tensor]],
                labels: np.ndarray) -> None:
        """Run a group of (fault, images, layer output) to the end; write their labels."""
        got = self._propagate(node, torch.cat([g[1] for g in group]),
                              torch.cat([g[2] for g in group]), check_start=False)
        at = 0
        for f, imgs, _ in group:
            labels[f, imgs.numpy()] = got[at : at + len(imgs)]
            at += len(imgs)

    def _patch_labels(self, layer_path: str, patches: Sequence[Patch], *,
                      progress: bool = False) -> np.ndarray:
        layer_module(self.model, layer_path)
        node = self._node_of(layer_path)
        if node is None:
            return super()._patch_labels(layer_path, patches, progress=progress)
        rows = patch_rows(patches, self.n)
        labels = np.empty((len(rows), len(self.spec.axes)), dtype=np.int8)
        step = self.max_rows
        for s in tqdm(range(0, len(rows), step), disable=None if progress else True, unit="chunk"):
            part = rows[s : s + step]
            imgs = torch.tensor([r[0] for r in part])
            vals = apply_patches(self.cache[node][imgs], part)
            labels[s : s + step] = self._propagate(node, imgs, vals)
        return labels
