"""Images and labels for every command, read from disk in each dataset's own layout; nothing is
downloaded.

One entry point, :func:`load_dataset`, returns an :class:`ImageSet`: float32 images ``N x C x H x W``
scaled to [0, 1] (no normalisation: a model that wants one wraps itself) and int64 labels. Names:

- ``digits``: scikit-learn's bundled 8x8 digits, a fixed stratified 75/25 train/test split;
- ``fashion_mnist``: the idx files of Debian's ``dataset-fashion-mnist`` package
  (``apt-get install dataset-fashion-mnist``; read from ``/usr/share/datasets/fashion-mnist``) or of
  any other root holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` (also under
  torchvision's ``FashionMNIST/raw``);
- ``cifar10`` / ``cifar100``: torchvision's ``cifar-10-batches-py`` / ``cifar-100-python`` pickles;
- ``gtsrb``: torchvision's ``gtsrb/GTSRB/Training`` and ``gtsrb/GTSRB/Final_Test`` trees;
- ``imagefolder``: one folder per class (``ROOT/train/<class>/`` and ``ROOT/test/<class>/`` or
  ``ROOT/val/<class>/`` for the two splits; a root of class folders alone is a test split);
- a ``.pt`` / ``.npz`` file: ``images`` and ``labels`` (the test split) and optionally
  ``train_images`` and ``train_labels`` and ``num_classes``; ``uint8`` images are scaled by 1/255.

A missing file or a folder in the wrong layout is an :class:`~dse.errors.InputError` naming the file
and the field it came from, so the command line reports one line and exits with status 2.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dse import validate
from dse.errors import InputError

DATASETS = ("digits", "fashion_mnist", "cifar10", "cifar100", "gtsrb", "imagefolder")
SPLITS = ("train", "test")
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
_CLASSES = {"digits": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "gtsrb": 43}


@dataclass
class ImageSet:
    """One split of a dataset: images (N, C, H, W) in [0, 1], labels (N,), the class count
    (None for a file that does not state it: a subset's labels need not cover every class)."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int | None

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The input shape of one image with a batch of 1, as the profiler takes it."""
        return (1, *self.images.shape[1:])


def list_datasets() -> list[str]:
    """The dataset names (a ``.pt`` / ``.npz`` path is accepted too)."""
    return list(DATASETS)


def is_file_dataset(name: str) -> bool:
    return name.endswith((".pt", ".npz"))


def load_dataset(name: str, root: str | Path | None = None, *, split: str = "test",
                 limit: int | None = None, size: int | None = None) -> ImageSet:
    """The ``split`` of dataset ``name`` (first ``limit`` images), resized to ``size`` x ``size``
    when given (folder datasets of mixed image sizes default to 32)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; use one of {list(SPLITS)}", field="split")
    if limit is not None and limit < 1:
        raise InputError(f"must be >= 1, got {limit}", field="limit")
    if is_file_dataset(name):
        images, labels, classes = _read_file(Path(name), split)
    elif name == "digits":
        images, labels = _digits(split)
        classes = 10
    elif name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)} or a "
                         ".pt/.npz file", field="dataset")
    else:
        folder = _root(name, root)
        images, labels, classes = _READERS[name](folder, split, size or 32)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(images) == 0:
        raise InputError(f"the {split} split has no images", file=root or name, field="data")
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                                 antialias=True, align_corners=False)
    return ImageSet(name, split, images.contiguous(), labels, classes)


def _root(name: str, root: str | Path | None) -> Path:
    if root is None and name == "fashion_mnist":
        if not FASHION_MNIST_ROOT.is_dir():
            raise InputError(f"{FASHION_MNIST_ROOT} is absent: install Debian's package "
                             "(apt-get install dataset-fashion-mnist) or pass the idx files' folder",
                             field="data")
        return FASHION_MNIST_ROOT
    if root is None or not Path(root).is_dir():
        raise InputError(f"{name} needs an existing data directory (nothing is downloaded)",
                         file=root, field="data")
    return Path(root)


def _digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0,
                                          stratify=d.target)
    x, y = (xtr, ytr) if split == "train" else (xte, yte)
    return torch.from_numpy(x), torch.from_numpy(y).long()


def _scaled(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)


# -- Fashion-MNIST: idx files ------------------------------------------------------------------
def _idx(path: Path, dims: int) -> np.ndarray:
    """An idx file (magic 0x0000 0x08 ``dims``, big-endian sizes, uint8 data), gzipped or not."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 + 4 * dims or raw[:3] != b"\0\0\x08" or raw[3] != dims:
        raise InputError(f"not a {dims}-d uint8 idx file (bad magic)", file=path, field="data")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise InputError(f"idx header says {shape} but holds {body.size} bytes", file=path,
                         field="data")
    return body.reshape(shape)


def _idx_path(root: Path, stem: str) -> Path:
    for folder in (root, root / "FashionMNIST" / "raw"):
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise InputError(f"no {stem}[.gz] (Fashion-MNIST idx layout)", file=root, field="data")


def _read_fashion(root: Path, split: str, _size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    prefix = "train" if split == "train" else "t10k"
    images = _idx(_idx_path(root, f"{prefix}-images-idx3-ubyte"), 3)
    labels = _idx(_idx_path(root, f"{prefix}-labels-idx1-ubyte"), 1)
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} labels", file=root, field="data")
    return _scaled(images[:, None]), torch.from_numpy(labels.astype(np.int64)), 10


# -- CIFAR: python pickles ---------------------------------------------------------------------
_CIFAR = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                      ["test_batch"], "labels"),
          "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels")}


def _read_cifar(root: Path, split: str, _size: int, *,
                kind: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Read directly rather than through torchvision's class, whose whole-file checksum would
    refuse a subset or a re-pickled copy."""
    folder, train, test = _CIFAR[kind][:3]
    key = _CIFAR[kind][3]
    base = root / folder if (root / folder).is_dir() else root
    data, labels = [], []
    for name in train if split == "train" else test:
        path = base / name
        if not path.is_file():
            raise InputError(f"no {kind} {split} batch {folder}/{name}", file=root, field="data")
        try:
            with open(path, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
            data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry[key], dtype=np.int64))
        except KeyError as exc:
            raise InputError(f"the batch has no {exc.args[0]!r} entry", file=path,
                             field=f"data.{exc.args[0]}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise InputError(f"not a {kind} batch ({type(exc).__name__})", file=path,
                             field="data") from None
    return (_scaled(np.concatenate(data)), torch.from_numpy(np.concatenate(labels)),
            _CLASSES[kind])


# -- image trees: GTSRB and ImageFolder --------------------------------------------------------
def _tree(dataset, size: int, where: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if len(dataset) == 0:
        raise InputError("no images in this folder", file=where, field="data")
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


def _resize(size: int):
    from torchvision import transforms

    return transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])


def _read_gtsrb(root: Path, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """torchvision's layout, read here so that a subset of the class folders keeps its labels
    (torchvision numbers the folders present; GTSRB's folder name *is* the class id)."""
    base = root / "gtsrb" / "GTSRB"
    if split == "train":
        folder = base / "Training"
        if not folder.is_dir():
            raise InputError("no gtsrb/GTSRB/Training folder (torchvision's GTSRB layout)",
                             file=root, field="data")
        items = [(p, _class_id(p.parent.name, p.parent))
                 for p in sorted(folder.glob("*/*.ppm"))]
    else:
        items = _gtsrb_test_items(root)
    if not items:
        raise InputError("no .ppm images in torchvision's GTSRB layout", file=base, field="data")
    transform = _resize(size)
    images = []
    for path, _ in items:
        try:
            with Image.open(path) as im:
                images.append(transform(im.convert("RGB")))
        except OSError as exc:
            raise InputError(f"unreadable image ({exc})", file=path, field="data") from None
    return torch.stack(images), torch.tensor([c for _, c in items]), _CLASSES["gtsrb"]


def _class_id(text: str, where: Path, field: str = "data") -> int:
    if not text.strip().isdigit() or int(text) >= _CLASSES["gtsrb"]:
        raise InputError(f"GTSRB class id {text!r} is not in 0..42", file=where, field=field)
    return int(text)


def _gtsrb_test_items(root: Path) -> list[tuple[Path, int]]:
    import csv

    table = root / "gtsrb" / "GT-final_test.csv"
    images = root / "gtsrb" / "GTSRB" / "Final_Test" / "Images"
    if not table.is_file() or not images.is_dir():
        raise InputError("no gtsrb/GT-final_test.csv with gtsrb/GTSRB/Final_Test/Images "
                         "(torchvision's GTSRB layout)", file=root, field="data")
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    items = []
    for row in rows:
        for column in ("Filename", "ClassId"):
            if not row.get(column):
                raise InputError(f"a row has no {column}", file=table, field=column)
        items.append((images / row["Filename"], _class_id(row["ClassId"], table, "ClassId")))
    return items


def _read_imagefolder(root: Path, split: str,
                      size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    from torchvision import datasets

    if split == "train":
        folder = root / "train"
        if not folder.is_dir():
            raise InputError("training needs ROOT/train/<class>/ folders", file=root,
                             field="data")
    else:
        folder = next((root / s for s in ("test", "val") if (root / s).is_dir()), root)
    try:
        ds = datasets.ImageFolder(str(folder), transform=_resize(size))
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise InputError(f"expected one folder per class ({str(exc).splitlines()[0][:200]})",
                         file=folder, field="data") from None
    return (*_tree(ds, size, folder), len(ds.classes))


# -- .pt / .npz ---------------------------------------------------------------------------------
def _read_file(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    if not path.is_file():
        raise InputError("no such file", file=path, field="dataset")
    keys = ("train_images", "train_labels") if split == "train" else ("images", "labels")
    try:
        if path.suffix == ".npz":
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as raw:
                stored = {k: torch.as_tensor(raw[k]) for k in raw.files}
        else:
            stored = validate.torch_load(path)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input error
        raise InputError(f"not a readable {path.suffix} file ({type(exc).__name__})", file=path,
                         field="dataset") from None
    for key in keys:
        if not isinstance(stored, dict) or not isinstance(stored.get(key), torch.Tensor):
            raise InputError(f"no {key!r} tensor (keys: images, labels, optionally "
                             "train_images, train_labels)", file=path, field=key)
    images, labels = stored[keys[0]], stored[keys[1]].long().reshape(-1)
    images = _scaled(images.numpy()) if images.dtype == torch.uint8 else images.float()
    if images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4 or len(images) != len(labels):
        raise InputError(f"expected N x C x H x W images and N labels, got {tuple(images.shape)} "
                         f"and {tuple(labels.shape)}", file=path, field=keys[0])
    classes = int(stored["num_classes"]) if "num_classes" in stored else None
    return images, labels, classes


_READERS = {
    "fashion_mnist": _read_fashion,
    "cifar10": lambda root, split, size: _read_cifar(root, split, size, kind="cifar10"),
    "cifar100": lambda root, split, size: _read_cifar(root, split, size, kind="cifar100"),
    "gtsrb": _read_gtsrb,
    "imagefolder": _read_imagefolder,
}
