"""Seeded, deterministic training of any zoo model on any dataset, cached by content.

:func:`train` builds the model for the dataset's head (``num_classes``, ``in_channels``), trains it
with AdamW and a one-cycle learning rate (the same recipe for every model: it reaches the digits
and Fashion-MNIST figures in docs/benchmarks.md without tuning per network) and stores a checkpoint
under ``cache_dir()/trained/``. The file name carries a hash of everything the weights depend on —
model, options, the training images and labels themselves, the recipe, the device type, the torch
version — so a second call with the same inputs loads the file instead of training, and a change in
any input trains afresh.

Determinism: the seed fixes the initial weights and the batch order; training runs on a fixed
number of torch threads (``Recipe.threads``, part of the key) because CPU kernels may sum in a
different order with another thread count. Same inputs, same device type: same weights, bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from dse.cache import cache_dir
from dse.devices import resolve_device
from dse.errors import InputError
from dse.problems import zoo
from dse.problems.datasets import ImageSet, load_dataset

TRAIN_VERSION = 1  # bump when the training loop changes, so stale cached weights are not reused


@dataclass(frozen=True)
class Recipe:
    """How to train; every field is part of the cache key. The defaults are the recipe the digits
    models have always been trained with (so their weights, and every figure measured on them,
    stay the same); ``schedule="onecycle"`` and ``channels_last`` train larger networks faster."""

    epochs: int | None = None  # None: the model's own default (zoo), else 10
    batch_size: int = 64
    lr: float = 3e-3  # Adam's learning rate (the peak, with the one-cycle schedule)
    weight_decay: float = 0.0
    schedule: str = "constant"
    seed: int = 0
    limit: int | None = None  # train on the first ``limit`` images only
    threads: int = 1
    channels_last: bool = False  # a different kernel: different (equally valid) weights

    def resolved(self, model: str) -> Recipe:
        """The recipe with the model's default epochs filled in, checked."""
        epochs = self.epochs if self.epochs is not None else zoo.default_epochs(model)
        recipe = dataclasses.replace(self, epochs=epochs)
        for name in ("epochs", "batch_size", "threads"):
            if getattr(recipe, name) < 1:
                raise InputError(f"must be >= 1, got {getattr(recipe, name)}",
                                 field=f"--{name.replace('_', '-')}")
        if recipe.lr <= 0 or recipe.weight_decay < 0:
            raise InputError("the learning rate must be > 0 and the weight decay >= 0",
                             field="--lr")
        if recipe.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {recipe.schedule!r}; use one of {SCHEDULES}",
                             field="--schedule")
        return recipe


SCHEDULES = ("constant", "onecycle")


@dataclass
class Trained:
    """A trained model and where its checkpoint is; ``cached`` when no training ran."""

    model: nn.Module
    checkpoint: Path
    meta: dict[str, Any]
    cached: bool
    seconds: float


def build_for(name: str, data: ImageSet, options: dict[str, Any] | None = None,
              num_classes: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model with the head and input channels ``data`` needs, and the full builder options
    (what a checkpoint records to rebuild it). A model that cannot take the images is the user's
    input error, found with one image before anything long starts."""
    opts = dict(options or {})
    classes = num_classes or data.num_classes
    if classes and zoo.accepts(name, "num_classes"):
        opts.setdefault("num_classes", classes)
    if zoo.accepts(name, "in_channels"):
        opts.setdefault("in_channels", data.in_channels)
    model = zoo.get_model(name, **opts)
    check_fits(model, name, data)
    return model, opts


def check_fits(model: nn.Module, name: str, data: ImageSet) -> None:
    try:
        with torch.no_grad():
            out = model.eval()(data.images[:1])
    except RuntimeError as exc:
        raise InputError(f"{name} cannot take {data.name} images of shape "
                         f"{tuple(data.images.shape[1:])} ({str(exc).splitlines()[0][:150]})",
                         field="dataset") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise InputError(f"{name} does not output class scores (got "
                         f"{type(out).__name__}); train and eval classify images", field="model")


def content_key(name: str, options: dict[str, Any], data: ImageSet, recipe: Recipe,
                device: torch.device) -> str:
    """Hash of everything the trained weights depend on."""
    h = hashlib.sha256()
    h.update(json.dumps({"model": name, "options": options, "dataset": data.name,
                         "recipe": dataclasses.asdict(recipe), "device": device.type,
                         "torch": torch.__version__, "version": TRAIN_VERSION},
                        sort_keys=True, default=str).encode())
    for t in (data.images, data.labels):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy())  # the buffer itself: no copy
    return h.hexdigest()


def train(name: str, dataset: str, *, data_root: str | Path | None = None,
          size: int | None = None, options: dict[str, Any] | None = None,
          recipe: Recipe = Recipe(), device: str = "cpu", progress: bool = True) -> Trained:
    """Train ``name`` on the train split of ``dataset`` (or load the cached result)."""
    from dse.problems.trained import read_checkpoint, save_checkpoint

    recipe = recipe.resolved(name)
    dev = resolve_device(device)
    start = time.perf_counter()
    data = load_dataset(dataset, data_root, split="train", limit=recipe.limit, size=size)
    torch.manual_seed(recipe.seed)
    model, opts = build_for(name, data, options, data.num_classes or int(data.labels.max()) + 1)
    key = content_key(name, opts, data, recipe, dev)
    label = Path(dataset).stem if dataset.endswith((".pt", ".npz")) else dataset
    path = cache_dir() / "trained" / f"{name.replace(':', '_')}-{label}-{key[:16]}.pt"
    if path.is_file():
        ckpt = read_checkpoint(path, expect=name)
        model.load_state_dict(ckpt.state_dict)
        return Trained(model.eval(), path, ckpt.meta, True, time.perf_counter() - start)
    loss = fit(model, data, recipe, dev, progress)
    meta = {"model": name, "options": opts, "dataset": dataset, "recipe":
            dataclasses.asdict(recipe), "device": dev.type, "key": key, "final_loss": loss,
            "train_images": len(data.images), "input_shape": list(data.image_shape)}
    test = _test_split(dataset, data_root, size)
    if test is not None:
        meta["test_accuracy"] = evaluate(model, test.images, test.labels, device=device).accuracy
        meta["test_images"] = len(test.images)
    save_checkpoint(path, model.cpu(), meta)
    return Trained(model.eval(), path, meta, False, time.perf_counter() - start)


def _test_split(dataset: str, root: str | Path | None, size: int | None) -> ImageSet | None:
    try:
        return load_dataset(dataset, root, split="test", size=size)
    except InputError:
        return None  # e.g. an image folder with only a train/ split: nothing to report


def fit(model: nn.Module, data: ImageSet, recipe: Recipe, device: torch.device,
        progress: bool = False) -> float:
    """Train ``model`` in place with Adam over seeded batch orders (``recipe`` resolved: epochs
    set); returns the last epoch's mean loss. Uncached: :func:`train` is the cached entry."""
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    layout = torch.channels_last if recipe.channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(recipe.seed)
    n = len(data.images)
    starts = [b for b in range(0, n, recipe.batch_size) if n - b > 1]  # batch norm needs 2 rows
    model.to(device, memory_format=layout).train()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * len(starts)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps)
             if recipe.schedule == "onecycle" else None)
    # progress: a bar on stderr when it is a terminal (tqdm's disable=None), never in a pipe
    bar = tqdm(total=steps, desc=f"train {data.name}", unit="batch",
               disable=None if progress else True, leave=False)
    try:
        for epoch in range(recipe.epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for b in starts:
                idx = order[b: b + recipe.batch_size]
                opt.zero_grad()
                x = data.images[idx].to(device)
                if recipe.channels_last:  # only then: kernels choose by strides (engine doc)
                    x = x.to(memory_format=layout)
                loss = nn.functional.cross_entropy(model(x), data.labels[idx].to(device))
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total += loss.item()
                bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{total / len(starts):.4f}")
    finally:
        bar.close()
        torch.set_num_threads(threads)
    model.to(memory_format=torch.contiguous_format).eval()
    return total / len(starts)


@dataclass
class Evaluation:
    """Top-1 accuracy (fraction of images whose highest score is the label) and the raw
    outputs (N x classes), kept for campaigns that compare faulty outputs against them."""

    accuracy: float
    outputs: torch.Tensor
    labels: torch.Tensor


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             device: str = "cpu", batch_size: int = 256, progress: bool = False) -> Evaluation:
    """Clean inference in eval mode, in batches of ``batch_size``, on ``device``."""
    if batch_size < 1:
        raise InputError(f"must be >= 1, got {batch_size}", field="--batch-size")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    outs = []
    with torch.no_grad():
        for b in tqdm(range(0, len(images), batch_size), desc="eval", unit="batch",
                      disable=None if progress else True, leave=False):
            outs.append(model(images[b: b + batch_size].to(dev)).float().cpu())
    model.cpu()
    outputs = torch.cat(outs)
    accuracy = (outputs.argmax(1) == labels).double().mean().item()
    return Evaluation(accuracy, outputs, labels)
