"""Models and images for fault-injection campaigns, with nothing downloaded.

Default models train on scikit-learn's bundled 8x8 digits at first use (seconds, one thread, fixed
seeds, so every machine gets the same weights) and are cached under the user cache directory:
``$DSE_CACHE``, else ``$XDG_CACHE_HOME/dse``, else ``~/.cache/dse``. User data is read from disk in
the datasets' own layouts (torchvision CIFAR-10/100 and GTSRB, or an ImageFolder tree), never
fetched; user weights come from ``--checkpoint``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dse.errors import InputError
from dse.problems.models import DigitsCNN, cifar_resnet

DIGITS_MODELS = ("digits_cnn", "digits_resnet20")
DATASETS = ("digits", "cifar10", "cifar100", "gtsrb", "imagefolder")
_TRAIN_VERSION = 1  # bump when training changes so stale cached weights are not reused


def cache_dir() -> Path:
    """Where trained default models are kept (created on demand)."""
    if os.environ.get("DSE_CACHE"):
        root = Path(os.environ["DSE_CACHE"])
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "dse"
    else:
        root = Path.home() / ".cache" / "dse"
    root.mkdir(parents=True, exist_ok=True)
    return root


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn digits as (train images, train labels, test images, test labels): images
    1x8x8 in [0, 1], a fixed 75/25 stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0,
                                          stratify=d.target)
    return (torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte),
            torch.from_numpy(yte).long())


def build_model(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """An untrained model by name: digits_cnn, digits_resnet20, resnetN (CIFAR ResNet-N), or a
    name from the model zoo when it has one."""
    if name == "digits_cnn":
        return DigitsCNN(num_classes)
    if name == "digits_resnet20":
        return cifar_resnet(20, num_classes, in_channels=1)
    if name.startswith("resnet") and name[6:].isdigit():
        try:
            return cifar_resnet(int(name[6:]), num_classes, in_channels)
        except ValueError as exc:
            raise InputError(str(exc), field="model") from None
    try:
        from dse.problems import zoo
    except ImportError:
        zoo = None
    if zoo is not None and name in zoo.list_models():
        return zoo.get_model(name)
    raise InputError(f"unknown model {name!r}; try digits_cnn, digits_resnet20 or resnet20",
                     field="model")


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    """Adam with a fixed seed and batch order: the same weights on every run and machine."""
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def trained_model(name: str = "digits_cnn") -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, test images, test labels) for a default digits model, training it
    on first use and caching the weights."""
    if name not in DIGITS_MODELS:
        raise InputError(f"no default training for {name!r}; pass --checkpoint and --dataset "
                         f"(default models: {', '.join(DIGITS_MODELS)})", field="model")
    xtr, ytr, xte, yte = digits_split()
    path = cache_dir() / f"{name}-v{_TRAIN_VERSION}.pt"
    torch.manual_seed(0)
    model = build_model(name)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), xte, yte
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(model, xtr, ytr, epochs=15 if name == "digits_cnn" else 8)
    finally:
        torch.set_num_threads(threads)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a concurrent or killed run never sees half a file
    return model, xte, yte


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights into ``model``; InputError naming the file when they do not fit it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", file=path, field="checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input error
        raise InputError(f"not a readable torch checkpoint ({type(exc).__name__})", file=path,
                         field="checkpoint") from None
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputError("checkpoint holds no state dict", file=path, field="checkpoint")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        reason = " ".join(line.strip() for line in first[:2])[:300]
        raise InputError(f"does not fit {type(model).__name__}: {reason}", file=path,
                         field="checkpoint") from None
    return model.eval()


def _stack(dataset, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise InputError("the dataset has no images", field="dataset")
    items = [dataset[i] for i in range(n)]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


_CIFAR = {"cifar10": ("cifar-10-batches-py", "test_batch", "labels"),
          "cifar100": ("cifar-100-python", "test", "fine_labels")}


def _read_cifar(root: Path, kind: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The CIFAR test batch from torchvision's on-disk layout (python pickles of uint8 rows).
    Read directly rather than through torchvision's class, whose whole-file checksum would
    refuse a subset or a re-pickled copy."""
    import pickle

    folder, name, key = _CIFAR[kind]
    path = root / folder / name if (root / folder).is_dir() else root / name
    if not path.is_file():
        raise InputError(f"no {kind} test batch ({folder}/{name})", file=root, field="data")
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry[key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"not a {kind} batch ({type(exc).__name__})", file=path,
                         field="data") from None
    if limit is not None:
        data, labels = data[:limit], labels[:limit]
    if len(data) == 0:
        raise InputError("the dataset has no images", file=path, field="data")
    return torch.from_numpy(data.astype(np.float32) / 255.0), torch.from_numpy(labels)


def load_dataset(kind: str, root: str | Path | None = None, *, limit: int | None = None,
                 size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Test images and labels of a dataset on disk (first ``limit``), scaled to [0, 1] with no
    normalization (wrap the model if it expects one). ``cifar10`` / ``cifar100``:
    torchvision's ``cifar-10-batches-py`` / ``cifar-100-python`` under ``root``; ``gtsrb``:
    torchvision's ``gtsrb/GTSRB/Final_Test`` layout, resized to ``size``; ``imagefolder``: one
    folder per class, resized to ``size``. ``digits`` needs no root."""
    if kind == "digits":
        _, _, x, y = digits_split()
        return (x, y) if limit is None else (x[:limit], y[:limit])
    if kind not in DATASETS:
        raise InputError(f"unknown dataset {kind!r}; expected one of {list(DATASETS)}",
                         field="dataset")
    if root is None or not Path(root).is_dir():
        raise InputError(f"{kind} needs an existing data directory (nothing is downloaded)",
                         file=root, field="data")
    if kind in ("cifar10", "cifar100"):
        return _read_cifar(Path(root), kind, limit)
    from torchvision import datasets, transforms

    resized = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])
    try:
        if kind == "gtsrb":
            ds = datasets.GTSRB(str(root), split="test", download=False, transform=resized)
        else:
            ds = datasets.ImageFolder(str(root), transform=resized)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise InputError(f"no {kind} data here ({str(exc).splitlines()[0][:200]})", file=root,
                         field="data") from None
    return _stack(ds, limit)
