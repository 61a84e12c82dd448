"""Two simulators of a faulty spiking network that give the same class scores per (fault, image).

**Naive**: re-simulate the user's model on every image for every fault, the fault put in by a
parameter edit (permanent) or by hooks that fire at the fault's time step (transient; membrane and
spike faults always by a forward hook on the neuron layer). The class score of an image is its
output spike count: the first tensor the model returns, ``(steps, images, classes)``, summed over
time step by step (the same additions in both engines, so the sum is exact whatever the batch).

**Fast**: the golden run is recorded once with hooks: the ordered calls of the model's units
(neuron layers and leaf modules) in every time step, their inputs, outputs and neuron states. When
each step is the same chain of units, each fed the previous unit's output (checked bit for bit on
the golden run, together with the model's output being the last unit's spikes), a fault in unit L
acting from step t0 only needs units L.. and steps t0..: the state before t0 and every unit before
L are golden, taken from the cache. Rows (fault, image) of many faults of one unit run together;
per step a unit runs only on rows whose input or own state differs from golden (others take the
cached output), and a row stops when the fault acts no more and every neuron state downstream
equals golden again (its later steps are then golden). Units that sum (conv, linear, anything not
known to be row-wise) run in blocks of exactly the golden batch size with the same strides, so
every kernel sees the shapes of the golden run and rows come out bit-identical; max pooling,
flatten and neuron arithmetic are elementwise or a max, so a per-row beta or threshold (one
broadcast tensor) gives each row the value the naive run computes. The faulty channels of many
weight / bias faults of one layer come from one op of the layer's own shape (checked exact once per
layer), and only the fault's channel is carried through channel-local units (see ``_Group``).
Models whose steps are not such a chain fall back to the naive path (exact, not faster).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from dse.errors import InputError
from dse.resilience.snn.network import (
    SnnFault,
    corrupt_fault,
    corrupt_rows,
    faulty_param,
    neuron_states,
    reset_states,
    run_neuron,
    swapped,
)

ROW_BUDGET = 4096  # (fault, image) rows simulated together by the fast engine


def spike_counts(record: torch.Tensor) -> torch.Tensor:
    """Class scores: spikes summed over time (dim 0), one addition per step in order."""
    total = record[0].clone()
    for t in range(1, record.shape[0]):
        total = total + record[t]
    return total


def first_tensor(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _units(model: nn.Module) -> dict[nn.Module, str]:
    """Neuron layers and leaf modules not inside a neuron layer: what the chain is made of."""
    units: dict[nn.Module, str] = {}
    inside: set[str] = set()
    for name, m in model.named_modules():
        if not name or any(name.startswith(p + ".") for p in inside):
            continue
        if neuron_states(m):
            units[m] = name
            inside.add(name)
        elif next(m.children(), None) is None:
            units[m] = name
    return units


def rows_differ(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bool per row: not bit-identical (so -0.0 != 0.0 and NaN payloads count)."""
    ints = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
            torch.float64: torch.int64}
    if a.dtype in ints:
        a, b = a.contiguous().view(ints[a.dtype]), b.contiguous().view(ints[b.dtype])
    return (a != b).reshape(a.shape[0], -1).any(dim=1)


@dataclass
class Golden:
    """The fault-free run: scores, and per chain unit and step its output and neuron state."""

    scores: torch.Tensor
    steps: int
    calls: dict[str, int]
    neuron_shapes: dict[str, tuple[int, ...]]
    chain: list[str] = field(default_factory=list)
    reason: str = ""  # why there is no chain (the fast engine then runs naively)
    inputs0: torch.Tensor | None = None
    outs: list[list[torch.Tensor]] = field(default_factory=list)  # [unit][step]
    states: list[list[tuple[torch.Tensor, ...]]] = field(default_factory=list)  # [unit][step]

    def inp(self, k: int, t: int) -> torch.Tensor:
        return self.inputs0[t] if k == 0 else self.outs[k - 1][t]

    def state(self, k: int, t: int) -> tuple[torch.Tensor, ...]:
        """Neuron state of unit k after step t (zeros before step 0)."""
        if t >= 0:
            return self.states[k][t]
        return tuple(torch.zeros_like(s) for s in self.states[k][0])


def record(model: nn.Module, x: torch.Tensor) -> Golden:
    """Run the model once with hooks on its units and find its per-step chain (module doc)."""
    units = _units(model)
    log: list[tuple[str, torch.Tensor | None, torch.Tensor, tuple]] = []
    pending: list[torch.Tensor | None] = []

    def pre(m, args):
        pending.append(args[0] if args and isinstance(args[0], torch.Tensor) else None)

    def post(m, args, out):
        states = tuple(getattr(m, a) for a in neuron_states(m))
        log.append((units[m], pending.pop(), first_tensor(out), states))

    handles = [h for m in units for h in (m.register_forward_pre_hook(pre),
                                          m.register_forward_hook(post))]
    reset_states(model)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    rec = first_tensor(out)
    steps = x.shape[0]
    calls: dict[str, int] = {}
    for name, *_ in log:
        calls[name] = calls.get(name, 0) + 1
    neuron_shapes = {name: tuple(s[0].shape[1:]) for name, _, _, s in log if s}
    golden = Golden(spike_counts(rec), steps, calls, neuron_shapes)
    golden.reason = _chain(golden, log, x, rec)
    return golden


def _chain(g: Golden, log: list, x: torch.Tensor, rec: torch.Tensor) -> str:
    """Fill the chain cache of ``g``; return why the model is not a chain ('' when it is)."""
    steps = g.steps
    if not log or len(log) % steps:
        return f"{len(log)} unit calls do not split into {steps} steps"
    k = len(log) // steps
    names = [n for n, *_ in log[:k]]
    if len(set(names)) != k:
        return "a unit is called more than once per step"
    for t in range(steps):
        step = log[t * k:(t + 1) * k]
        if [n for n, *_ in step] != names:
            return f"step {t} calls other units than step 0"
        prev = x[t]
        for name, inp, out, _ in step:
            if inp is None or inp.shape != prev.shape or rows_differ(inp, prev).any():
                return f"the input of {name} is not the previous unit's output"
            prev = out
    if rec.shape != (steps, *log[k - 1][2].shape) or rows_differ(
            rec, torch.stack([log[t * k + k - 1][2] for t in range(steps)])).any():
        return "the model's output is not the last unit's spikes"
    g.chain, g.inputs0 = names, x
    g.outs = [[log[t * k + j][2] for t in range(steps)] for j in range(k)]
    g.states = [[log[t * k + j][3] for t in range(steps)] for j in range(k)]
    return ""


@contextmanager
def injected(model: nn.Module, fault: SnnFault) -> Iterator[None]:
    """The model with ``fault`` in place for one forward pass (hooks count the time steps)."""
    module = model.get_submodule(fault.layer)
    calls = [0]
    if fault.target in ("membrane", "spikes"):
        def hook(m, args, out):
            step, calls[0] = calls[0], calls[0] + 1
            return _corrupt_output(m, out, fault) if fault.acts(step) else None

        handles = [module.register_forward_hook(hook)]
    elif fault.step is None:
        with swapped(module, fault.target, faulty_param(module, fault)):
            yield
        return
    else:
        faulty = faulty_param(module, fault)
        golden = getattr(module, fault.target).detach().clone()

        def pre(m, args):
            if calls[0] == fault.step:
                getattr(m, fault.target).data.copy_(faulty)

        def post(m, args, out):
            if calls[0] == fault.step:
                getattr(m, fault.target).data.copy_(golden)
            calls[0] += 1

        handles = [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _at(values: torch.Tensor, fault: SnnFault) -> torch.Tensor:
    """A copy of ``values`` (images, ...) with the fault on its neuron of every image."""
    out = values.clone()
    where = (slice(None), *fault.index)
    out[where] = corrupt_fault(values[where], fault)
    return out


def _corrupt_output(module: nn.Module, out, fault: SnnFault):
    """The neuron layer's output with its membrane state or spikes corrupted."""
    if fault.target == "membrane":
        old = module.mem
        module.mem = _at(old, fault)
        if isinstance(out, tuple):
            return tuple(module.mem if o is old else o for o in out)
        return out
    spk = first_tensor(out)
    return (_at(spk, fault), *out[1:]) if isinstance(out, tuple) else _at(spk, fault)


class NaiveSnnEngine:
    """Re-simulates the whole network for every fault (the reference)."""

    def __init__(self, model: nn.Module, x: torch.Tensor):
        self.model, self.x = model.eval(), x
        self.golden = record(model, x)

    def scores(self, faults: Sequence[SnnFault]) -> torch.Tensor:
        """(faults, images, classes) output spike counts."""
        out = []
        for f in faults:
            reset_states(self.model)
            with torch.no_grad(), injected(self.model, f):
                out.append(spike_counts(first_tensor(self.model(self.x))))
        return torch.stack(out) if out else torch.empty(0)


class FastSnnEngine(NaiveSnnEngine):
    """The chain replay of the module doc; naive for faults outside a chain."""

    def __init__(self, model: nn.Module, x: torch.Tensor, row_budget: int = ROW_BUDGET):
        super().__init__(model, x)
        g = self.golden
        self.index = {name: k for k, name in enumerate(g.chain)}
        self.mods = [model.get_submodule(n) for n in g.chain]
        self.group = max(1, row_budget // x.shape[1])
        self._stackable: dict[int, bool] = {}

    def scores(self, faults: Sequence[SnnFault]) -> torch.Tensor:
        out: list[torch.Tensor | None] = [None] * len(faults)
        groups: dict[tuple, list[int]] = {}
        for i, f in enumerate(faults):
            if f.layer in self.index:
                groups.setdefault((f.layer, f.target), []).append(i)
            else:
                out[i] = super().scores([f])[0]
        with torch.no_grad():
            for members in groups.values():
                for s in range(0, len(members), self.group):
                    part = members[s:s + self.group]
                    res = _Group(self, [faults[i] for i in part]).run()
                    for j, i in enumerate(part):
                        out[i] = res[j]
        return torch.stack(out) if out else torch.empty(0)

    def stackable(self, k: int) -> bool:
        """Whether unit k's output channel depends only on its own weights, not on where they sit
        in the weight tensor: checked bit for bit once, by rolling the golden weights one
        channel along and comparing with the golden output rolled alike, at every step."""
        if k not in self._stackable:
            m = self.mods[k]
            ok = isinstance(m, _SYNAPSES) and m.weight.shape[0] > 1
            if ok:
                w = m.weight.detach().roll(1, 0)
                b = None if m.bias is None else m.bias.detach().roll(1, 0)
                with torch.no_grad(), swapped(m, "weight", w):
                    for t in range(self.golden.steps):
                        got = (m(self.golden.inp(k, t)) if b is None else
                               _with_bias(m, b, self.golden.inp(k, t)))
                        if rows_differ(got, self.golden.outs[k][t].roll(1, 1)).any():
                            ok = False
                            break
            self._stackable[k] = ok
        return self._stackable[k]


_SYNAPSES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# modules whose per-row result cannot depend on the batch (no sums): run on any number of rows
_ROWWISE = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.Flatten, nn.Identity, nn.ReLU,
            nn.Dropout)


def _with_bias(m: nn.Module, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    with swapped(m, "bias", bias):
        return m(x)


class _Group:
    """Faults of one unit simulated together, rows ordered (fault, image). Per step and unit only
    the rows whose input or state differs from golden are carried (``rows`` sorted, ``vals``).

    When each fault's difference starts in one channel (dim 1) of unit L's output -- a weight or
    bias of that output channel, one neuron's membrane or spike -- it stays in that channel through
    the channel-local units that follow (max pooling, ReLU, neurons without inhibition), so there
    only that channel is carried, ``vals`` of shape (rows, 1, ...), and it is put back into the
    golden tensor at the first unit that mixes channels."""

    def __init__(self, eng: FastSnnEngine, faults: list[SnnFault]):
        self.eng, self.g, self.faults = eng, eng.golden, faults
        n = eng.x.shape[1]
        self.n, self.R = n, len(faults) * n
        self.img = torch.arange(self.R) % n
        self.fid = torch.arange(self.R) // n
        self.L = eng.index[faults[0].layer]
        self.target = faults[0].target
        self.t0 = torch.tensor([0 if f.step is None else f.step for f in faults])[self.fid]
        self.permanent = torch.tensor([f.step is None for f in faults])[self.fid]
        module = eng.mods[self.L]
        self.params = ([faulty_param(module, f) for f in faults]
                       if self.target not in ("membrane", "spikes") else [])
        self.stacked = None
        if self.target in ("weight", "bias") and eng.stackable(self.L):
            self.stacked = _Stacked(eng, self.L, faults, self.params)
        sliceable = (self.stacked is not None or self.target in ("membrane", "spikes")) and \
            self.g.outs[self.L][0].dim() >= 2
        self.local_end = self.L
        if sliceable:
            self.local_end += 1
            while self.local_end < len(eng.mods) and _channel_local(eng.mods[self.local_end]):
                self.local_end += 1
        self.channel = torch.tensor([f.index[0] for f in faults])[self.fid] if sliceable else None

    def run(self) -> torch.Tensor:
        g, R, K = self.g, self.R, len(self.g.chain)
        last = torch.stack(g.outs[K - 1])[:, self.img].clone()  # (steps, rows, classes)
        alive = torch.ones(R, dtype=torch.bool)
        neurons = [k for k in range(self.L, K) if neuron_states(self.eng.mods[k])]
        self.state: dict[int, list[torch.Tensor]] = {}
        self.sdiff = {k: torch.zeros(R, dtype=torch.bool) for k in neurons}
        for t in range(int(self.t0.min()), g.steps):
            acts = alive & (self.permanent | (self.t0 == t))
            rows, vals = _EMPTY, None
            for k in range(self.L, K):
                if k == self.local_end and k > self.L and len(rows):
                    vals = self._unslice(g.inp(k, t), rows, vals)
                rows, vals = self._unit(k, t, rows, vals, alive, acts)
            if len(rows):
                if K <= self.local_end:
                    vals = self._unslice(g.outs[K - 1][t], rows, vals)
                last[t, rows] = vals
            settled = ~self.permanent & (self.t0 <= t)
            for k in neurons:
                settled &= ~self.sdiff[k]
            alive &= ~settled
            if not alive.any():
                break
        return spike_counts(last).reshape(len(self.faults), self.n, -1)

    def _sliced(self, k: int) -> bool:
        return k < self.local_end

    def _golden(self, tensor: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
        """Rows of a golden (images, ...) tensor: whole, or the rows' channel when sliced."""
        if self._sliced(k):
            return tensor[self.img[rows], self.channel[rows]].unsqueeze(1)
        return tensor[self.img[rows]]

    def _unslice(self, golden: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor):
        full = golden[self.img[rows]]
        full[torch.arange(len(rows)), self.channel[rows]] = vals[:, 0]
        return full

    def _unit(self, k: int, t: int, rows: torch.Tensor, vals, alive: torch.Tensor,
              acts: torch.Tensor):
        """(rows whose output of unit k at step t differs from golden, their outputs)."""
        g, module = self.g, self.eng.mods[k]
        if k in self.sdiff:
            need = torch.zeros(self.R, dtype=torch.bool)
            need[rows] = True
            need |= alive & self.sdiff[k]
            if k == self.L:
                need |= acts
            run = need.nonzero().squeeze(1)
            if not len(run):
                return _EMPTY, None
            inp = self._golden(g.inp(k, t), run, k)
            if len(rows):
                pos = torch.full((self.R,), -1, dtype=torch.long)
                pos[run] = torch.arange(len(run))
                inp[pos[rows]] = vals
            out = self._neuron(k, t, run, inp, acts[run] if k == self.L else None)
        elif k == self.L:
            run = acts.nonzero().squeeze(1)
            if not len(run):
                return _EMPTY, None
            out = self._faulty_synapse(t, run)
        else:
            if not len(rows):
                return _EMPTY, None
            run = rows
            out = module(vals) if isinstance(module, _ROWWISE) else _blocked(module, vals, self.n)
        differ = rows_differ(out, self._golden(g.outs[k][t], run, k))
        return run[differ], out[differ]

    def _neuron(self, k: int, t: int, rows: torch.Tensor, inp: torch.Tensor,
                acting: torch.Tensor | None) -> torch.Tensor:
        module = self.eng.mods[k]
        changed = self.sdiff[k][rows]
        sliced = self._sliced(k)
        where = (rows, self.channel[rows]) if sliced else (rows,)
        prev = []
        for a, gs in enumerate(self.g.state(k, t - 1)):
            s = self._golden(gs, rows, k)
            if changed.any():
                s[changed] = (self.state[k][a][tuple(w[changed] for w in where)].unsqueeze(1)
                              if sliced else self.state[k][a][rows[changed]])
            prev.append(s)
        with contextlib.ExitStack() as stack:
            for name in ("beta", "threshold"):
                value = self._row_param(k, name, rows, acting)
                if value is not None:
                    stack.enter_context(swapped(module, name, value))
            spk, new = run_neuron(module, inp, tuple(prev))
        new = list(new)
        if acting is not None and self.target in ("membrane", "spikes") and acting.any():
            if self.target == "membrane":
                new[-1] = self._corrupt_rows(new[-1], rows, acting)
            else:
                spk = self._corrupt_rows(spk, rows, acting)
        if k not in self.state:
            full = self.g.states[k][0]
            self.state[k] = [s.new_empty((self.R, *s.shape[1:])) for s in full]
        differ = torch.zeros(len(rows), dtype=torch.bool)
        for a, s in enumerate(new):
            self.state[k][a][where] = s[:, 0] if sliced else s
            differ |= rows_differ(s, self._golden(self.g.state(k, t)[a], rows, k))
        self.sdiff[k][rows] = differ
        return spk

    def _row_param(self, k: int, name: str, rows: torch.Tensor,
                   acting: torch.Tensor | None) -> torch.Tensor | None:
        """Beta or threshold per row, broadcast to the rows' neurons (faulty on acting rows when
        it is the target); None when the module's own (scalar) value already fits every row."""
        golden = getattr(self.eng.mods[k], name, None)
        mine = acting is not None and self.target == name
        if not isinstance(golden, torch.Tensor) or (not mine and golden.numel() == 1):
            return None
        shape = self.g.states[k][0][0].shape[1:]
        table = torch.stack([torch.broadcast_to(golden.detach(), shape)] + [
            torch.broadcast_to(p, shape) for p in (self.params if mine else [])])
        which = torch.where(acting, self.fid[rows] + 1, 0) if mine else torch.zeros_like(rows)
        if self._sliced(k):
            return table[which, self.channel[rows]].unsqueeze(1)
        return table[which]

    def _corrupt_rows(self, values: torch.Tensor, rows: torch.Tensor,
                      acting: torch.Tensor) -> torch.Tensor:
        """The faults' neuron of each acting row corrupted (a copy)."""
        out = values.clone()
        flat = out.reshape(len(rows), -1)
        j = acting.nonzero().squeeze(1)
        faults = [self.faults[f] for f in self.fid[rows[j]].tolist()]
        shape = values.shape[1:]
        sliced = self._sliced(self.L)
        pos = torch.tensor([_flat((0, *f.index[1:]) if sliced else f.index, shape)
                            for f in faults], dtype=torch.long)
        flat[j, pos] = corrupt_rows(flat[j, pos], faults)
        return out

    def _faulty_synapse(self, t: int, rows: torch.Tensor) -> torch.Tensor:
        """Unit L's output under each row's weight or bias fault, from the golden input."""
        ri = self.img[rows]
        if self.stacked is not None:
            return self.stacked.channel_out(t, ri, self.fid[rows]).unsqueeze(1)
        module, x = self.eng.mods[self.L], self.g.inp(self.L, t)
        out = torch.empty((len(rows), *self.g.outs[self.L][t].shape[1:]))
        fids = self.fid[rows]
        for f in torch.unique(fids).tolist():
            sel = fids == f
            with swapped(module, self.target, self.params[f]):
                out[sel] = module(x)[ri[sel]]
        return out


def _channel_local(module: nn.Module) -> bool:
    """Units whose output channel c depends only on input channel c, elementwise or by a max
    (so computing one channel alone is exact)."""
    if neuron_states(module):
        return not getattr(module, "inhibition", False)
    return isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.ReLU, nn.Identity,
                               nn.Dropout))


_EMPTY = torch.zeros(0, dtype=torch.long)


class _Stacked:
    """Faulty channels of up to ``out_channels`` weight / bias faults of one conv or linear layer
    from one op of the layer's own shape: channel j holds fault j's faulty channel (its weights
    and bias). Exact where :meth:`FastSnnEngine.stackable` holds."""

    def __init__(self, eng: FastSnnEngine, k: int, faults: list[SnnFault],
                 params: list[torch.Tensor]):
        self.g, self.k, self.m = eng.golden, k, eng.mods[k]
        m = self.m
        width = m.weight.shape[0]
        self.channel = torch.tensor([f.index[0] for f in faults])
        self.chunk = torch.arange(len(faults)) // width
        self.slot = torch.arange(len(faults)) % width
        self.weights, self.biases = [], []
        for s in range(0, len(faults), width):
            w = m.weight.detach().clone()
            b = None if m.bias is None else m.bias.detach().clone()
            for j, f in enumerate(faults[s:s + width]):
                o = f.index[0]
                w[j] = params[s + j][o] if f.target == "weight" else m.weight[o]
                if b is not None:
                    b[j] = params[s + j][o] if f.target == "bias" else m.bias[o]
            self.weights.append(w)
            self.biases.append(b)
        self.step, self.cache = -1, None

    def channel_out(self, t: int, ri: torch.Tensor, fids: torch.Tensor) -> torch.Tensor:
        """Each row's faulty output channel (rows, ...) at step t."""
        if self.step != t:
            x = self.g.inp(self.k, t)
            outs = []
            for w, b in zip(self.weights, self.biases, strict=True):
                with swapped(self.m, "weight", w):
                    outs.append(self.m(x) if b is None else _with_bias(self.m, b, x))
            self.step, self.cache = t, torch.stack(outs)  # (chunks, images, channels, ...)
        return self.cache[self.chunk[fids], ri, self.slot[fids]]


def _flat(index: tuple[int, ...], shape: torch.Size) -> int:
    flat = 0
    for i, s in zip(index, shape, strict=True):
        flat = flat * s + i
    return flat


def _blocked(module: nn.Module, inp: torch.Tensor, block: int) -> torch.Tensor:
    """``module`` on ``inp`` in blocks of exactly ``block`` rows (the last padded with copies of
    its first row), so every call has the golden run's batch shape."""
    outs = []
    for s in range(0, len(inp), block):
        part = inp[s:s + block]
        if len(part) < block:
            part = torch.cat([part, part[:1].expand(block - len(part), *part.shape[1:])])
        outs.append(module(part.contiguous()))
    return torch.cat(outs)[:len(inp)]


def check_chain_faults(engine: NaiveSnnEngine, faults: Sequence[SnnFault]) -> None:
    """InputError when a fault's layer is called other than once per step (its step is then
    ambiguous)."""
    g = engine.golden
    for f in faults:
        if g.calls.get(f.layer, 0) != g.steps:
            raise InputError(f"layer {f.layer!r} runs {g.calls.get(f.layer, 0)} times in "
                             f"{g.steps} steps; faults need one call per step", field="Layer")
