"""Trained models for every command: checkpoints in and out, and :func:`load_model`, the one way
``dse inject``, ``dse resilience``, ``dse eval`` and the sweep get a model with its test images.

A dse checkpoint is a ``torch.save`` dict: ``format``, ``model`` (the zoo name), ``options`` (the
builder's keyword arguments, head and input channels included), training ``meta`` and the
``state_dict``. It rebuilds its own network, and names the model it belongs to, so weights for one
model handed to another are refused in one line. A plain state dict (as other tools save it, also
wrapped under ``state_dict`` / ``model`` / ``net`` or with DataParallel's ``module.`` prefix) loads
into the model the user names, built for the dataset's head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from dse import validate as check
from dse.errors import InputError
from dse.problems import zoo
from dse.problems.datasets import load_dataset

FORMAT = "dse-checkpoint/1"


@dataclass
class Checkpoint:
    """Weights and what they belong to; ``model`` is None for a plain state dict."""

    state_dict: dict[str, torch.Tensor]
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class Loaded(NamedTuple):
    """A model in eval mode with the test images and labels it is studied on."""

    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write atomically: a concurrent or killed run never sees half a file."""
    with check.atomic_open(path, "wb", field="checkpoint") as fh:
        torch.save({"format": FORMAT, "model": meta["model"], "options": meta["options"],
                    "meta": meta, "state_dict": model.state_dict()}, fh)


def read_checkpoint(path: str | Path, *, expect: str | None = None) -> Checkpoint:
    """The checkpoint at ``path``; InputError naming the file when it is unreadable, holds no
    weights, or (a dse checkpoint) belongs to another model than ``expect``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", file=path, field="checkpoint")
    try:
        raw = check.torch_load(path)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input error
        raise InputError(f"not a readable torch checkpoint ({type(exc).__name__})", file=path,
                         field="checkpoint") from None
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        if expect is not None and raw["model"] != expect:
            raise InputError(f"holds weights for {raw['model']!r}, not {expect!r}", file=path,
                             field="checkpoint")
        return Checkpoint(raw["state_dict"], raw["model"], raw["options"], raw["meta"])
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise InputError("checkpoint holds no state dict", file=path, field="checkpoint")
    return Checkpoint({k.removeprefix("module."): v for k, v in raw.items()})


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """Load ``state`` strictly; InputError naming the file when it does not fit ``model``."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        reason = " ".join(line.strip() for line in lines[:2])[:300]
        raise InputError(f"does not fit {type(model).__name__}: {reason}", file=path,
                         field="checkpoint") from None
    return model.eval()


def load_model(name: str = "digits_cnn", *, checkpoint: str | Path | None = None,
               dataset: str | None = None, data_root: str | Path | None = None,
               limit: int | None = None, size: int | None = None,
               options: dict[str, Any] | None = None,
               num_classes: int | None = None, progress: bool = False) -> Loaded:
    """The model ``name`` with trained weights, and the first ``limit`` test images of its
    dataset.

    Weights come from ``checkpoint``; without one, a model with a default dataset (the digits
    models) is trained on it on first use and cached (seconds; see :mod:`dse.problems.train`),
    behind a progress bar on a terminal's stderr when ``progress``, so a first run is not a
    silent wait. The dataset is ``dataset``, else the model's default, else the checkpoint's.
    """
    from dse.problems.train import build_for, check_fits, train

    ckpt = read_checkpoint(checkpoint, expect=name) if checkpoint is not None else None
    dataset = dataset or zoo.default_dataset(name) or (ckpt.meta.get("dataset") if ckpt else None)
    if dataset is None:
        raise InputError(f"no default dataset for {name}; pass one (digits, fashion_mnist, "
                         "cifar10, ... or a .pt/.npz file)", field="dataset")
    data = load_dataset(dataset, data_root, split="test", limit=limit, size=size)
    if ckpt is None:
        default = zoo.default_dataset(name)
        if default is None:
            raise InputError(f"no trained weights for {name}: train them (dse train --model "
                             f"{name} --dataset NAME --out CKPT) and pass the file",
                             field="checkpoint")
        model = train(name, default, options=options, progress=progress).model
        check_fits(model, name, data)
    elif ckpt.model is not None:
        model = zoo.get_model(name, **ckpt.options)
        check_fits(load_weights(model, ckpt.state_dict, checkpoint), name, data)
    else:
        model, _ = build_for(name, data, options, num_classes)
        load_weights(model, ckpt.state_dict, checkpoint)
    return Loaded(model.eval(), data.images, data.labels)
