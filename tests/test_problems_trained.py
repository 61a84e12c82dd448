"""Trained models: seeded training cached by content, checkpoints that name their model, and the
one loader every command uses (resnet50 is torchvision's there too)."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch
import torchvision
from _fi_util import fi_cache  # noqa: F401

from dse.cli import main
from dse.errors import InputError
from dse.problems import zoo
from dse.problems.models import DigitsCNN
from dse.problems.train import Recipe, cache_dir, train
from dse.problems.trained import load_model, read_checkpoint


def test_default_digits_model_trains_deterministically_and_is_cached(tmp_path, monkeypatch,
                                                                     fi_cache):  # noqa: F811
    first, x, y = load_model("digits_cnn")  # the session cache
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    again = train("digits_cnn", "digits", progress=False)  # trained again from scratch
    assert not again.cached and again.checkpoint.parent == tmp_path / "trained"
    assert all(torch.equal(first.state_dict()[k], v) for k, v in again.model.state_dict().items())
    assert again.meta["test_accuracy"] > 0.95 and x.shape[1:] == (1, 8, 8) and len(y) == 450
    assert train("digits_cnn", "digits", progress=False).cached


def test_any_training_input_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    small = Recipe(epochs=1, limit=100)
    base = train("digits_cnn", "digits", recipe=small, progress=False)
    other_seed = train("digits_cnn", "digits", recipe=Recipe(epochs=1, limit=100, seed=1),
                       progress=False)
    more_data = train("digits_cnn", "digits", recipe=Recipe(epochs=1, limit=101), progress=False)
    assert len({base.checkpoint, other_seed.checkpoint, more_data.checkpoint}) == 3
    assert not torch.equal(base.model.features[0].weight, other_seed.model.features[0].weight)
    again = train("digits_cnn", "digits", recipe=small, progress=False)
    assert again.cached and again.checkpoint == base.checkpoint


def test_cache_dir_respects_xdg_when_dse_cache_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("DSE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "dse"


def test_a_checkpoint_names_its_model_and_is_refused_by_another(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    trained = train("digits_cnn", "digits", recipe=Recipe(epochs=1, limit=64), progress=False)
    assert read_checkpoint(trained.checkpoint).model == "digits_cnn"
    with pytest.raises(InputError, match="holds weights for 'digits_cnn', not 'digits_resnet20'"):
        load_model("digits_resnet20", checkpoint=trained.checkpoint)
    model = load_model("digits_cnn", checkpoint=trained.checkpoint, limit=3).model
    assert torch.equal(model.features[0].weight, trained.model.features[0].weight)


def test_plain_state_dicts_load_wrapped_or_prefixed_and_misfits_are_named(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"state_dict": DigitsCNN(num_classes=7).state_dict()}, path)
    with pytest.raises(InputError, match="does not fit DigitsCNN") as err:
        load_model("digits_cnn", checkpoint=path)
    assert err.value.file == str(path) and err.value.field == "checkpoint"
    weights = DigitsCNN().state_dict()
    torch.save({"model": {f"module.{k}": v for k, v in weights.items()}}, path)
    model = load_model("digits_cnn", checkpoint=path).model  # DataParallel prefix: fits
    assert torch.equal(model.features[0].weight, weights["features.0.weight"])
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="readable"):
        load_model("digits_cnn", checkpoint=tmp_path / "junk.pt")


def test_zoo_model_without_weights_says_how_to_train_it():
    with pytest.raises(InputError, match="dse train --model cifar_resnet20") as err:
        load_model("cifar_resnet20", dataset="digits")
    assert err.value.field == "checkpoint"


def test_in_repo_names_never_shadow_torchvision():
    assert not set(zoo.ZOO) & set(torchvision.models.list_models())
    assert type(zoo.get_model("resnet50")) is torchvision.models.ResNet


@pytest.fixture
def resnet50_files(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "x.pt"
    torch.save(torchvision.models.resnet50(num_classes=3).state_dict(), ckpt)
    data = tmp_path / "d.npz"
    np.savez(data, images=np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32),
             labels=np.array([0, 2]), num_classes=3)
    return ckpt, data


def test_resnet50_checkpoint_loads_into_torchvisions_resnet50(resnet50_files):
    ckpt, data = resnet50_files
    model, images, _ = load_model("resnet50", checkpoint=ckpt, dataset=str(data))
    assert type(model) is torchvision.models.ResNet and images.shape == (2, 3, 32, 32)
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3,
                                     model.layer4)] == [3, 4, 6, 3]


def test_dse_inject_resnet50_checkpoint_means_torchvision(resnet50_files, tmp_path, capsys):
    ckpt, data = resnet50_files
    out = tmp_path / "run"
    code = main(["inject", "--model", "resnet50", "--checkpoint", str(ckpt), "--dataset",
                 str(data), "--n-faults", "3", "--images", "2", "--out", str(out), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["faults"] == 3
    layers = {line.split(",")[1] for line in (out / "faultlist.csv").read_text().splitlines()[1:]}
    torchvision_layers = dict(torchvision.models.resnet50().named_modules())
    assert layers and layers <= set(torchvision_layers)
    other = tmp_path / "digits.pt"
    torch.save(DigitsCNN().state_dict(), other)
    code = main(["inject", "--model", "resnet50", "--checkpoint", str(other), "--dataset",
                 str(data), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "does not fit ResNet" in err and str(other) in err


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm draws its bar only on one)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, progress, shown", [
    (_Terminal, True, True),      # first use on a terminal: a bar, not a silent wait
    (io.StringIO, True, False),   # stderr piped or redirected: nothing
    (_Terminal, False, False),    # --json: nothing
])
def test_first_use_training_shows_a_bar_only_on_a_terminal(tmp_path, monkeypatch, stream,
                                                           progress, shown):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    train("digits_cnn", "digits", recipe=Recipe(epochs=1, limit=64), progress=progress)
    assert ("train digits" in err.getvalue()) is shown
    assert "batch" in err.getvalue() if shown else err.getvalue() == ""
