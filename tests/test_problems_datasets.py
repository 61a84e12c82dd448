"""Default models train deterministically into the user cache; user data loads from disk layouts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from _fi_util import fi_cache  # noqa: F401
from PIL import Image

from dse.errors import InputError
from dse.problems.models import DigitsCNN
from dse.resilience import data


def test_digits_cnn_trains_deterministically_and_is_cached(tmp_path, monkeypatch,
                                                          fi_cache):  # noqa: F811
    first, x, y = data.trained_model("digits_cnn")  # the session cache
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    model, _, _ = data.trained_model("digits_cnn")  # trained again from scratch
    assert (tmp_path / "digits_cnn-v1.pt").is_file()
    assert all(torch.equal(first.state_dict()[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
    assert x.shape[1:] == (1, 8, 8) and len(x) == len(y) == 450


def test_cache_dir_respects_xdg_when_dse_cache_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("DSE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.cache_dir() == tmp_path / "dse"


def test_digits_resnet20_is_a_one_channel_cifar_resnet(fi_cache):  # noqa: F811
    model, x, y = data.trained_model("digits_resnet20")
    assert model.conv1.in_channels == 1 and len(model.layers) == 9
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.85


def test_checkpoint_that_does_not_fit_is_an_input_error(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"state_dict": DigitsCNN(num_classes=7).state_dict()}, path)
    with pytest.raises(InputError, match="does not fit DigitsCNN") as err:
        data.load_checkpoint(DigitsCNN(), path)
    assert str(path) in str(err.value)
    torch.save({"model": {f"module.{k}": v for k, v in DigitsCNN().state_dict().items()}}, path)
    data.load_checkpoint(DigitsCNN(), path)  # wrapped + DataParallel prefix: fits
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="readable"):
        data.load_checkpoint(DigitsCNN(), tmp_path / "junk.pt")


@pytest.mark.parametrize("kind,folder,name,key", [
    ("cifar10", "cifar-10-batches-py", "test_batch", "labels"),
    ("cifar100", "cifar-100-python", "test", "fine_labels")])
def test_cifar_test_batches_load_from_the_pickle_layout(tmp_path, kind, folder, name, key):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 3072), dtype=np.uint8)
    (tmp_path / folder).mkdir()
    with open(tmp_path / folder / name, "wb") as fh:
        pickle.dump({"data": pixels, key: [3, 1, 4, 1, 5]}, fh)
    x, y = data.load_dataset(kind, tmp_path, limit=4)
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [3, 1, 4, 1]
    assert x[2, 1, 0, 5].item() == pytest.approx(pixels[2, 1024 + 5] / 255.0)


def test_imagefolder_and_gtsrb_trees_load_resized(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "folder" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
                tmp_path / "folder" / cls / f"{i}.png")
    x, y = data.load_dataset("imagefolder", tmp_path / "folder", size=16)
    assert x.shape == (4, 3, 16, 16) and sorted(y.tolist()) == [0, 0, 1, 1]
    images = tmp_path / "g" / "gtsrb" / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True)
    lines = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, cls in enumerate((14, 2, 40)):
        Image.fromarray(rng.integers(0, 256, (30, 31, 3), dtype=np.uint8)).save(
            images / f"{i:05d}.ppm")
        lines.append(f"{i:05d}.ppm;31;30;0;0;30;29;{cls}")
    (tmp_path / "g" / "gtsrb" / "GT-final_test.csv").write_text("\n".join(lines) + "\n")
    x, y = data.load_dataset("gtsrb", tmp_path / "g")
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [14, 2, 40]


@pytest.mark.parametrize("kind", ["cifar10", "gtsrb", "imagefolder"])
def test_missing_data_is_an_input_error_and_nothing_is_downloaded(tmp_path, kind):
    with pytest.raises(InputError, match="data"):
        data.load_dataset(kind, tmp_path / "absent")
    with pytest.raises(InputError):
        data.load_dataset(kind, tmp_path)
