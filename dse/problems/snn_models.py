"""Spiking models (snntorch) for the zoo: a convolutional SNN and a fully connected one.

Both take a time-first spike train ``(steps, batch, 1, 8, 8)`` (scikit-learn's 8×8 digits, rate
coded) and return ``(spikes, membranes)`` of the output layer stacked over time, the usual snntorch
convention; the class score is the output spike count. ``init_hidden=True`` builds the same network
with the hidden state kept inside the neurons (``Leaky.mem``) instead of passed by the caller, so
both snntorch styles can be checked. Every op between neurons is a module (``nn.MaxPool2d``,
``nn.Flatten``), so a replay of the modules one by one is the network itself.

snntorch is imported when a model is built, so the zoo stays importable without it.
"""

from __future__ import annotations

import torch
from torch import nn

from dse.errors import InputError

DEFAULT_STEPS = 10
BETA = 0.9


def _snn():
    try:
        import snntorch
    except ImportError:
        raise InputError("snntorch is not installed; pip install -e '.[snn]'",
                         field="model") from None
    return snntorch


class _SpikingChain(nn.Module):
    """Runs its modules in order every time step; ``"lif"`` entries become snntorch Leaky neurons
    (learnable beta and threshold, so both are parameters as in the seed's models)."""

    def __init__(self, layers: list[tuple[str, nn.Module | None]], init_hidden: bool):
        super().__init__()
        snn = _snn()
        self.init_hidden = init_hidden
        self.order = [name for name, _ in layers]
        self.neurons = [name for name, m in layers if m is None]
        for name, module in layers:
            if module is None:
                module = snn.Leaky(beta=BETA, learn_beta=True, learn_threshold=True,
                                   init_hidden=init_hidden,
                                   output=init_hidden and name == self.order[-1])
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.init_hidden:
            for name in self.neurons:
                getattr(self, name).reset_mem()
        mems = {name: getattr(self, name).reset_mem() for name in self.neurons}
        spk_rec, mem_rec = [], []
        for step in range(x.shape[0]):
            cur = x[step]
            for name in self.order:
                layer = getattr(self, name)
                if name not in mems:
                    cur = layer(cur)
                elif self.init_hidden:
                    out = layer(cur)
                    cur, mems[name] = out if isinstance(out, tuple) else (out, layer.mem)
                else:
                    cur, mems[name] = layer(cur, mems[name])
            spk_rec.append(cur)
            mem_rec.append(mems[self.order[-1]])
        return torch.stack(spk_rec), torch.stack(mem_rec)


class CSNN(_SpikingChain):
    """conv(1→8) pool LIF, conv(8→16) pool LIF, fc(64→10) LIF: the seed's convolutional kind."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, init_hidden: bool = False):
        super().__init__([
            ("conv1", nn.Conv2d(in_channels, 8, 3, padding=1)), ("pool1", nn.MaxPool2d(2)), ("lif1", None),
            ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("pool2", nn.MaxPool2d(2)), ("lif2", None),
            ("flat", nn.Flatten()), ("fc1", nn.Linear(16 * 2 * 2, num_classes)), ("lif3", None),
        ], init_hidden)


class FCSNN(_SpikingChain):
    """fc(64→64) LIF, fc(64→10) LIF on the flattened 8×8 spike frame."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, hidden: int = 64,
                 init_hidden: bool = False):
        super().__init__([
            ("flat", nn.Flatten()), ("fc1", nn.Linear(64 * in_channels, hidden)), ("lif1", None),
            ("fc2", nn.Linear(hidden, num_classes)), ("lif2", None),
        ], init_hidden)


ZOO = {"csnn": CSNN, "fcsnn": FCSNN}
INPUTS = {name: (DEFAULT_STEPS, 1, 1, 8, 8) for name in ZOO}


def is_spiking(model: nn.Module) -> bool:
    """True when the model holds an snntorch neuron (profiling folds its time steps)."""
    return any(type(m).__module__.startswith("snntorch") for m in model.modules())
