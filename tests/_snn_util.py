"""Small spiking networks with random weights scaled so that every layer spikes."""

from __future__ import annotations

import pytest
import torch

snntorch = pytest.importorskip("snntorch", reason="snntorch not installed (pip install -e '.[snn]')")


def small_snn(name: str = "csnn", init_hidden: bool = False, steps: int = 6, images: int = 10,
              seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, spike train (steps, images, 1, 8, 8), labels)."""
    from dse.problems import zoo

    torch.manual_seed(seed)
    model = zoo.get_model(name, init_hidden=init_hidden)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 0:
                p.mul_(3)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, images, 1, 8, 8, generator=gen) < 0.4).float()
    return model, x, torch.arange(images) % 10
