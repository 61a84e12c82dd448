"""Spiking-network faults: the fast engine equals naive re-simulation per (fault, image), and each
target is hit in the tensor it names."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from dse.resilience.snn.campaign import beta_facts
from dse.resilience.snn.engines import FastSnnEngine, NaiveSnnEngine, injected
from dse.resilience.snn.network import TARGETS, SnnFault, reset_states, target_shapes
from dse.resilience.snn.outcomes import classify
from tests._snn_util import small_snn, snntorch


def _faults(model, engine, per_site: int, steps: int, seed: int = 0) -> list[SnnFault]:
    rng = random.Random(seed)
    out = []
    for (layer, target), shape in target_shapes(model, engine.golden.neuron_shapes).items():
        for i in range(per_site):
            index = tuple(rng.randrange(s) for s in shape)
            bit = rng.choice([31, 30, 29, 27, 24, 23, 22, 12, 0])
            kind = ("bitflip", "stuck0", "stuck1")[i % 3]
            step = None if i % 2 == 0 else rng.randrange(steps)
            out.append(SnnFault(layer, target, index, (bit,), kind, "fp32", step))
    return out


@pytest.mark.parametrize("name", ["csnn", "fcsnn"])
@pytest.mark.parametrize("init_hidden", [False, True])
def test_fast_equals_naive_per_fault_and_image(name, init_hidden):
    model, x, y = small_snn(name, init_hidden)
    fast, naive = FastSnnEngine(model, x), NaiveSnnEngine(model, x)
    assert fast.golden.chain and not fast.golden.reason
    faults = _faults(model, fast, per_site=4, steps=x.shape[0])
    assert {f.target for f in faults} == set(TARGETS)
    assert {f.step is None for f in faults} == {True, False}
    a, b = fast.scores(faults), naive.scores(faults)
    same = (a.view(torch.int32) == b.view(torch.int32)).reshape(len(faults), -1).all(dim=1)
    assert same.all(), [faults[i] for i in (~same).nonzero().squeeze(1).tolist()]
    assert (classify(fast.golden.scores, a, y) == classify(naive.golden.scores, b, y)).all()
    changed = (b != naive.golden.scores).reshape(len(faults), -1).any(dim=1)
    assert changed.sum() >= len(faults) // 4  # the faults do something, so equality means a thing


class _SynapticNet(nn.Module):
    """A user-style model: Synaptic neurons, state passed by the caller, time loop inside."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)
        self.lif1 = snntorch.Synaptic(alpha=0.8, beta=0.9)
        self.lif2 = snntorch.Synaptic(alpha=0.8, beta=torch.full((10,), 0.85))
        self.flat = nn.Flatten()

    def forward(self, x):
        syn1, mem1 = self.lif1.reset_mem()
        syn2, mem2 = self.lif2.reset_mem()
        rec = []
        for t in range(x.shape[0]):
            spk1, syn1, mem1 = self.lif1(self.fc1(self.flat(x[t])), syn1, mem1)
            spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
            rec.append(spk2)
        return torch.stack(rec)


class _GlueNet(_SynapticNet):
    """Functional glue between units: not a chain, so the fast engine runs it naively."""

    def forward(self, x):
        rec = []
        syn1, mem1 = self.lif1.reset_mem()
        syn2, mem2 = self.lif2.reset_mem()
        for t in range(x.shape[0]):
            spk1, syn1, mem1 = self.lif1(self.fc1(self.flat(x[t])) * 2.0, syn1, mem1)
            spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
            rec.append(spk2)
        return torch.stack(rec)


@pytest.mark.parametrize("cls", [_SynapticNet, _GlueNet])
def test_synaptic_user_model_fast_equals_naive(cls):
    torch.manual_seed(1)
    model = cls().eval()
    with torch.no_grad():
        model.fc1.weight.mul_(4)
        model.fc2.weight.mul_(4)
    x = (torch.rand(6, 8, 1, 8, 8) < 0.5).float()
    fast, naive = FastSnnEngine(model, x), NaiveSnnEngine(model, x)
    assert bool(fast.golden.chain) == (cls is _SynapticNet)
    if cls is _GlueNet:
        assert "previous unit" in fast.golden.reason
    faults = _faults(model, fast, per_site=3, steps=6, seed=2)
    a, b = fast.scores(faults), naive.scores(faults)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))


def _step_tensors(model, x, layer: str, fault: SnnFault | None):
    """(membrane, spikes) the neuron layer holds / emits at each step, with the fault in place."""
    module = model.get_submodule(layer)
    mems, spks = [], []

    def grab(m, args, out):
        mems.append(m.mem.clone())
        spks.append((out[0] if isinstance(out, tuple) else out).clone())

    reset_states(model)
    with torch.no_grad():
        if fault is None:
            h = module.register_forward_hook(grab)
            model(x)
        else:
            with injected(model, fault):  # the fault's hook was registered first: grab sees its result
                h = module.register_forward_hook(grab)
                model(x)
    h.remove()
    return torch.stack(mems), torch.stack(spks)


@pytest.mark.parametrize("init_hidden", [False, True])
def test_membrane_fault_hits_membrane_and_spike_fault_hits_spikes(init_hidden):
    model, x, _ = small_snn("csnn", init_hidden)
    gm, gs = _step_tensors(model, x, "lif1", None)
    index, t = (2, 1, 3), 2
    mem_fault = SnnFault("lif1", "membrane", index, (30,), "bitflip", step=t)
    fm, fs = _step_tensors(model, x, "lif1", mem_fault)
    where = (t, slice(None), *index)
    assert (fm[where] != gm[where]).all()  # every image's membrane at that neuron
    assert torch.equal(fs[t], gs[t]) and torch.equal(fm[:t], gm[:t])  # spikes of that step untouched
    spk_fault = SnnFault("lif1", "spikes", index, (30,), "bitflip", step=t)
    fm, fs = _step_tensors(model, x, "lif1", spk_fault)
    assert (fs[where] != gs[where]).all()
    assert torch.equal(fm[: t + 1], gm[: t + 1])  # membrane up to that step untouched
    changed = (fs[t] != gs[t]).reshape(x.shape[1], -1).sum(dim=1)
    assert (changed == 1).all()  # only the named neuron


def test_beta_faults_masked_by_the_clamp_are_counted_and_fully_masked():
    model, x, y = small_snn("csnn")
    with torch.no_grad():
        model.lif2.beta.fill_(1.25)  # a learned beta above 1: forward clamps it to 1
    engine = FastSnnEngine(model, x)
    faults = [SnnFault("lif2", "beta", (), (b,), "bitflip") for b in (0, 5, 21, 22, 31)]
    facts = beta_facts(model, faults)["lif2.beta"]
    # 1.25 = 0x3FA00000. Bits 0, 5, 22 give values in (1, 2): clamped back to 1 = golden's clamp;
    # bit 21 gives 1.0 (inside [0, 1], still the golden clamp); the sign gives -1.25 -> 0.
    assert facts == {"clamped": 4, "clamp_masked": 4}
    counts = classify(engine.golden.scores, engine.scores(faults), y)
    assert (counts[:4, 0] == x.shape[1]).all()  # clamp-masked: fully masked on every image
    assert counts[4, 0] < x.shape[1]
