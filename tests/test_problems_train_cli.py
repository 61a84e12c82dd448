"""`dse train` and `dse eval`: digits models reach 95 %, clean outputs are saved, a second
training call is a cache hit, and bad input is one line with exit status 2."""

from __future__ import annotations

import json

import pytest
import torch
from _fi_util import fi_cache  # noqa: F401

from dse.cli import main


@pytest.mark.parametrize("model", ["digits_cnn", "digits_resnet20"])
def test_train_then_eval_reaches_95_percent_on_digits(model, tmp_path, capsys,
                                                      fi_cache):  # noqa: F811
    ckpt = tmp_path / f"{model}.pt"
    assert main(["train", "--model", model, "--dataset", "digits", "--out", str(ckpt),
                 "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["checkpoint"] == str(ckpt) and ckpt.is_file()
    out = tmp_path / "eval"
    assert main(["eval", "--model", model, "--checkpoint", str(ckpt), "--dataset", "digits",
                 "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["images"] == 450 and record["accuracy"] >= 0.95
    assert record["accuracy"] == pytest.approx(trained["test_accuracy"])
    saved = torch.load(out / "outputs.pt", weights_only=True)
    assert saved["outputs"].shape == (450, 10)
    assert int((saved["outputs"].argmax(1) == saved["labels"]).sum()) == record["correct"]
    assert json.loads((out / "eval.json").read_text())["accuracy"] == record["accuracy"]
    # the same command again: a cache hit, the same checkpoint bytes
    before = ckpt.read_bytes()
    assert main(["train", "--model", model, "--dataset", "digits", "--out", str(ckpt),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cached"] and ckpt.read_bytes() == before


def test_train_prints_the_figures_with_their_units(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    assert main(["train", "--model", "digits_cnn", "--epochs", "1", "--limit", "128"]) == 0
    out = capsys.readouterr().out
    assert "128 images x 1 epochs" in out and "test top-1 accuracy" in out and " % (450" in out


@pytest.fixture
def other_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    assert main(["train", "--model", "digits_cnn", "--epochs", "1", "--limit", "64", "--out",
                 str(tmp_path / "cnn.pt"), "--json"]) == 0
    return tmp_path / "cnn.pt"


@pytest.mark.parametrize("argv,field", [
    (["train", "--model", "no_such_net", "--dataset", "digits"], "model"),
    (["train", "--model", "digits_cnn", "--dataset", "mnist"], "dataset"),
    (["train", "--model", "digits_cnn", "--device", "tpu"], "--device"),
    (["train", "--model", "digits_cnn", "--epochs", "0"], "--epochs"),
    (["train", "--model", "digits_cnn", "--dataset", "cifar10", "--data", "{tmp}"], "data"),
    (["train", "--model", "resnet18", "--dataset", "digits", "--limit", "8"], "dataset"),
    (["eval", "--model", "digits_resnet20", "--checkpoint", "{ckpt}"], "checkpoint"),
    (["eval", "--model", "digits_cnn", "--dataset", "imagefolder", "--data", "{tmp}"], "data"),
    (["eval", "--model", "digits_cnn", "--device", "cuda:x"], "--device"),
])
def test_bad_input_is_one_line_naming_the_field(argv, field, tmp_path, capsys,
                                                other_checkpoint):
    capsys.readouterr()
    (tmp_path / "stray.png").write_bytes(b"")  # a folder, but not in any dataset's layout
    argv = [a.format(tmp=tmp_path, ckpt=other_checkpoint) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f" {field}: " in err, err
