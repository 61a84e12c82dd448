"""Spiking models and spike-train inputs for campaigns, with nothing downloaded.

The zoo's spiking models (``csnn``, ``fcsnn``) train at first use on scikit-learn's 8×8 digits,
rate coded (Bernoulli spikes with the pixel intensity as probability per step, time first: snntorch's
``spikegen.rate``), with fixed seeds and one thread, so every machine gets the same weights; they
are cached beside the other trained models. User models come by import path plus a checkpoint;
their inputs from a ``.pt`` file holding ``spikes`` (steps, images, ...) or ``images`` (rate coded
here) with ``labels``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from dse.errors import InputError
from dse.problems import zoo
from dse.problems.datasets import load_dataset
from dse.problems.snn_models import DEFAULT_STEPS, ZOO
from dse.problems.train import cache_dir
from dse.problems.trained import load_weights, read_checkpoint


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn digits: train images, train labels, test images, test labels."""
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    return train.images, train.labels, test.images, test.labels

_TRAIN_VERSION = 1  # bump when training changes so stale cached weights are not reused
EPOCHS = 25


def rate_code(images: torch.Tensor, steps: int, seed: int) -> torch.Tensor:
    """``(steps, *images.shape)`` Bernoulli spikes (snntorch's rate coding) from a fixed seed."""
    from snntorch import spikegen

    if steps < 1:
        raise InputError(f"must be >= 1, got {steps}", field="--steps")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return spikegen.rate(images.clamp(0, 1), num_steps=steps)


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """Adam on the cross-entropy of output spike counts, fixed seeds and batch order; a fresh
    rate coding per epoch (seeded) so the network does not learn one spike pattern."""
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for epoch in range(EPOCHS):
        spikes = rate_code(x, steps, seed=1000 + epoch)
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            counts = model(spikes[:, idx])[0].sum(0)
            nn.functional.cross_entropy(counts, y[idx]).backward()
            opt.step()
    model.eval()


def trained_snn(name: str, steps: int = DEFAULT_STEPS, init_hidden: bool = False
                ) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, rate-coded test spikes (steps, images, 1, 8, 8), labels) for a zoo
    spiking model, trained on first use and cached (the hidden-state style does not change the
    weights, so both styles share one file)."""
    if name not in ZOO:
        raise InputError(f"no default training for {name!r} (spiking zoo models: "
                         f"{', '.join(sorted(ZOO))}); pass --checkpoint and --data", field="model")
    xtr, ytr, xte, yte = digits_split()
    path = cache_dir() / f"{name}-T{steps}-v{_TRAIN_VERSION}.pt"
    torch.manual_seed(0)
    model = zoo.get_model(name, init_hidden=init_hidden)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _train(model, xtr, ytr, steps)
        finally:
            torch.set_num_threads(threads)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)  # atomic: a concurrent or killed run never sees half a file
    return model.eval(), rate_code(xte, steps, seed=0), yte


def user_snn(name: str, checkpoint: str | Path | None, data: str | Path | None,
             steps: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A model by zoo name or import path with its checkpoint, and inputs from ``data`` (or the
    rate-coded digits test set when none is given)."""
    model = zoo.get_model(name)
    if checkpoint is not None:
        model = load_weights(model, read_checkpoint(checkpoint).state_dict, checkpoint)
    if data is None:
        _, _, xte, yte = digits_split()
        return model.eval(), rate_code(xte, steps, seed=0), yte
    return model.eval(), *load_inputs(data, steps)


def load_inputs(path: str | Path, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike trains and labels from a ``.pt`` dict (``spikes`` or ``images``, and ``labels``)."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError("data file not found", file=path, field="data") from None
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input error
        raise InputError(f"not a readable torch file ({type(exc).__name__})", file=path,
                         field="data") from None
    if not isinstance(blob, dict) or "labels" not in blob or not (
            "spikes" in blob or "images" in blob):
        raise InputError("expected a dict with 'labels' and 'spikes' or 'images'", file=path,
                         field="data")
    labels = torch.as_tensor(blob["labels"]).long()
    if "spikes" in blob:
        x = torch.as_tensor(blob["spikes"]).float()
        n = x.shape[1] if x.dim() > 1 else 0
    else:
        x = rate_code(torch.as_tensor(blob["images"]).float(), steps, seed=0)
        n = x.shape[1]
    if n != len(labels) or n == 0:
        raise InputError(f"{n} inputs but {len(labels)} labels", file=path, field="labels")
    return x, labels
