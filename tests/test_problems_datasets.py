"""One loader for every dataset, each read from small data written here in its own on-disk
layout; a wrong layout is an InputError naming the file and the field."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dse.errors import InputError
from dse.problems.datasets import FASHION_MNIST_ROOT, load_dataset

RNG = np.random.default_rng(0)


def test_digits_is_a_fixed_stratified_split():
    train, test = load_dataset("digits", split="train"), load_dataset("digits")
    assert train.images.shape == (1347, 1, 8, 8) and test.images.shape == (450, 1, 8, 8)
    assert test.images.dtype == torch.float32 and 0 <= test.images.min() < test.images.max() <= 1
    assert test.num_classes == 10 and sorted(set(test.labels.tolist())) == list(range(10))
    assert torch.equal(load_dataset("digits", limit=5).labels, test.labels[:5])


@pytest.mark.parametrize("kind,folder,train,test,key", [
    ("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
     "labels"),
    ("cifar100", "cifar-100-python", ["train"], "test", "fine_labels")])
def test_cifar_pickles_load_both_splits(tmp_path, kind, folder, train, test, key):
    (tmp_path / folder).mkdir()
    pixels = {}
    for name in [*train, test]:
        pixels[name] = RNG.integers(0, 256, size=(3, 3072), dtype=np.uint8)
        with open(tmp_path / folder / name, "wb") as fh:
            pickle.dump({"data": pixels[name], key: [3, 1, 4]}, fh)
    x, y = (lambda s: (s.images, s.labels))(load_dataset(kind, tmp_path, limit=2))
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [3, 1]
    assert x[1, 2, 0, 5].item() == pytest.approx(pixels[test][1, 2048 + 5] / 255.0)
    tr = load_dataset(kind, tmp_path, split="train")
    assert len(tr.images) == 3 * len(train) and tr.num_classes == (10 if kind == "cifar10" else 100)


def _png(path: Path, shape=(10, 12, 3)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(path)


def test_imagefolder_splits_load_resized(tmp_path):
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            for i in range(2):
                _png(tmp_path / split / cls / f"{i}.png")
    test = load_dataset("imagefolder", tmp_path, size=16)
    assert test.images.shape == (4, 3, 16, 16) and sorted(test.labels.tolist()) == [0, 0, 1, 1]
    assert test.num_classes == 2
    assert load_dataset("imagefolder", tmp_path, split="train").images.shape == (4, 3, 32, 32)
    # A root of class folders alone is a test split; training needs ROOT/train.
    assert len(load_dataset("imagefolder", tmp_path / "val").images) == 4
    with pytest.raises(InputError, match="train/<class>") as err:
        load_dataset("imagefolder", tmp_path / "val", split="train")
    assert err.value.field == "data"


def test_gtsrb_trees_load_both_splits(tmp_path):
    base = tmp_path / "gtsrb" / "GTSRB"
    lines = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, cls in enumerate((14, 2, 40)):
        _png(base / "Final_Test" / "Images" / f"{i:05d}.ppm", (30, 31, 3))
        lines.append(f"{i:05d}.ppm;31;30;0;0;30;29;{cls}")
    (tmp_path / "gtsrb" / "GT-final_test.csv").write_text("\n".join(lines) + "\n")
    for cls in (0, 42):
        _png(base / "Training" / f"{cls:05d}" / f"00000_0000{cls % 10}.ppm", (29, 33, 3))
    test = load_dataset("gtsrb", tmp_path)
    assert test.images.shape == (3, 3, 32, 32) and test.labels.tolist() == [14, 2, 40]
    train = load_dataset("gtsrb", tmp_path, split="train", size=24)
    assert train.images.shape == (2, 3, 24, 24) and train.labels.tolist() == [0, 42]
    assert train.num_classes == 43


def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def test_fashion_mnist_idx_files_load_gzipped_or_not(tmp_path):
    images = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 0, 3, 1]))
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _idx(raw / "train-images-idx3-ubyte", images[:2])
    _idx(raw / "train-labels-idx1-ubyte", np.array([7, 7]))
    test = load_dataset("fashion_mnist", tmp_path)
    assert test.images.shape == (5, 1, 28, 28) and test.labels.tolist() == [9, 0, 0, 3, 1]
    assert test.images[2, 0, 3, 4].item() == pytest.approx(images[2, 3, 4] / 255.0)
    assert load_dataset("fashion_mnist", tmp_path, split="train").labels.tolist() == [7, 7]
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x09\1junk"))
    with pytest.raises(InputError, match="bad magic") as err:
        load_dataset("fashion_mnist", tmp_path)
    assert "t10k-labels" in err.value.file


@pytest.mark.skipif(not FASHION_MNIST_ROOT.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed "
                           "(apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_reads_the_debian_package():
    test = load_dataset("fashion_mnist")
    assert test.images.shape == (10000, 1, 28, 28) and test.num_classes == 10
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_pt_and_npz_files_hold_both_splits(tmp_path, suffix):
    arrays = {"images": RNG.integers(0, 256, (4, 3, 5, 5), dtype=np.uint8),
              "labels": np.array([1, 0, 1, 2]),
              "train_images": RNG.random((6, 5, 5), dtype=np.float32),
              "train_labels": np.arange(6) % 3}
    path = tmp_path / f"d{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays)
    else:
        torch.save({k: torch.as_tensor(v) for k, v in arrays.items()}, path)
    test = load_dataset(str(path))
    assert test.images.shape == (4, 3, 5, 5) and test.num_classes is None
    assert test.images[1, 2, 3, 4].item() == pytest.approx(arrays["images"][1, 2, 3, 4] / 255)
    train = load_dataset(str(path), split="train", size=8)
    assert train.images.shape == (6, 1, 8, 8) and train.labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_file_without_labels_names_the_missing_field(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 1, 4, 4)))
    with pytest.raises(InputError) as err:
        load_dataset(str(tmp_path / "d.npz"))
    assert err.value.field == "labels" and err.value.file.endswith("d.npz")


@pytest.mark.parametrize("kind", ["cifar10", "cifar100", "gtsrb", "imagefolder"])
def test_missing_or_empty_roots_are_input_errors_and_nothing_is_downloaded(tmp_path, kind):
    with pytest.raises(InputError, match="nothing is downloaded"):
        load_dataset(kind, tmp_path / "absent")
    with pytest.raises(InputError) as err:
        load_dataset(kind, tmp_path)  # exists, but holds nothing in the layout
    assert err.value.field == "data" and str(tmp_path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_pickle_without_labels_names_the_entry(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8)}, fh)
    with pytest.raises(InputError, match="no 'labels' entry") as err:
        load_dataset("cifar10", tmp_path)
    assert err.value.field == "data.labels"


def test_images_not_in_class_folders_is_a_layout_error(tmp_path):
    _png(tmp_path / "flat" / "a.png")
    with pytest.raises(InputError, match="one folder per class") as err:
        load_dataset("imagefolder", tmp_path / "flat")
    assert err.value.field == "data"


def test_unknown_dataset_names_the_choices():
    with pytest.raises(InputError, match="unknown dataset 'mnist'.*fashion_mnist") as err:
        load_dataset("mnist")
    assert err.value.field == "dataset"
