"""`dse inject`: JSON summary, output files, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest
import torch
from _fi_util import fi_cache  # noqa: F401

from dse.cli import main
from dse.problems.trained import load_model
from dse.resilience import campaign
from dse.resilience.outcomes import TOP1


def test_inject_writes_list_summary_plot_and_json(tmp_path, capsys, fi_cache):  # noqa: F811
    out = tmp_path / "run"
    code = main(["inject", "--model", "digits_cnn", "--target", "weights", "--format", "fp32",
                 "--fault", "bitflip", "--margin", "0.1", "--confidence", "0.95", "--bits",
                 "29-31", "--images", "50", "--out", str(out), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"faults", "images", "outcome", "device", "golden_top1_accuracy",
                        "classes", "wall_s"}
    model, images, labels = load_model("digits_cnn", limit=50)  # the baseline, counted apart
    with torch.no_grad():
        correct = int((model(images).argmax(1) == labels).sum())
    assert doc["golden_top1_accuracy"] == pytest.approx(correct / 50)
    assert doc["outcome"] == "top1" and doc["device"] == "cpu"
    assert set(doc["classes"]) == set(TOP1.classes)
    rows = campaign.load_results(out / "results.csv", TOP1)
    c = doc["classes"]
    assert doc["faults"] == len(rows) > 0 and doc["images"] == 50
    assert sum(c[k]["count"] for k in ("masked", "non_critical", "critical", "inf_nan")) == \
        50 * len(rows)
    assert c["critical"]["count"] == sum(r.counts[TOP1.columns.index("critical")]
                                         for r in rows) > 0
    for k in TOP1.classes:  # every count carries an interval around its rate
        assert c[k]["ci"][0] <= c[k]["rate"] <= c[k]["ci"][1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["golden_top1_accuracy"] == doc["golden_top1_accuracy"]
    assert (f"golden (fault-free) top-1 accuracy: {100 * correct / 50:.1f}% of 50 images "
            f"({correct} correct)") in (out / "summary.txt").read_text()
    assert set(summary["per_bit"]) == {"29", "30", "31"}
    assert (out / "critical.png").read_bytes()[:4] == b"\x89PNG"
    # replaying the written list in the naive engine gives the same counts
    code = main(["inject", "--faults", str(out / "faultlist.csv"), "--engine", "naive",
                 "--images", "50", "--out", str(tmp_path / "replay"), "--json"])
    replay = json.loads(capsys.readouterr().out)["classes"]
    assert code == 0 and {k: v["count"] for k, v in replay.items()} == {
        k: v["count"] for k, v in c.items()}


def test_activation_campaign_runs(tmp_path, capsys, fi_cache):  # noqa: F811
    code = main(["inject", "--target", "activations", "--format", "fp16", "--fault", "stuck1",
                 "--n-faults", "30", "--images", "20", "--out", str(tmp_path), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["faults"] == 30


@pytest.mark.parametrize("argv,match", [
    (["--bits", "33"], "bit 33"),
    (["--bits", "x"], "malformed bit list"),
    (["--model", "nonet"], "nonet"),
    (["--checkpoint", "missing.pt"], "checkpoint"),
    (["--workers", "0"], "--workers"),
    (["--device", "tpu"], "--device: unknown device"),
    (["--format", "int99"], "format"),
    (["--outcome", "nope"], "outcome"),
])
def test_bad_flags_are_one_line_exit_2(tmp_path, capsys, fi_cache, argv, match):  # noqa: F811
    code = main(["inject", "--n-faults", "3", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1


def test_bad_fault_list_keeps_existing_results(tmp_path, capsys, fi_cache):  # noqa: F811
    out = tmp_path / "run"
    assert main(["inject", "--n-faults", "5", "--images", "10", "--out", str(out)]) == 0
    before = (out / "results.csv").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text('Injection,Layer,TensorIndex,Bit\n0,classifier.9,"(0, 0)",3\n')
    capsys.readouterr()
    assert main(["inject", "--faults", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown layer" in err and str(bad) in err
    assert (out / "results.csv").read_text() == before
    other = ["inject", "--n-faults", "6", "--images", "10", "--out", str(out)]
    assert main(other) == 2 and "different campaign" in capsys.readouterr().err
    assert (out / "results.csv").read_text() == before


def test_checkpoint_that_does_not_fit_the_model_exits_2(tmp_path, capsys):
    import pickle

    import numpy as np
    import torch

    from dse.problems.models import cifar_resnet

    (tmp_path / "cifar-10-batches-py").mkdir()
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 3]}, fh)
    torch.save(cifar_resnet(32).state_dict(), tmp_path / "r32.pt")
    code = main(["inject", "--model", "cifar_resnet20", "--checkpoint", str(tmp_path / "r32.pt"),
                 "--dataset", "cifar10", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit CifarResNet" in err and len(err.strip().splitlines()) == 1
    torch.save(cifar_resnet(20).state_dict(), tmp_path / "r20.pt")
    code = main(["inject", "--model", "cifar_resnet20", "--checkpoint", str(tmp_path / "r20.pt"),
                 "--dataset", "cifar10", "--data", str(tmp_path), "--n-faults", "5",
                 "--out", str(tmp_path / "o"), "--json"])
    assert code == 0


def test_cuda_without_a_gpu_is_one_line_exit_2(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        return  # this machine has one: the flag is valid here
    code = main(["inject", "--device", "cuda", "--n-faults", "3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "cuda is not available" in err and len(err.strip().splitlines()) == 1


def test_bias_campaign_with_random_words_in_int8_runs(tmp_path, capsys, fi_cache):  # noqa: F811
    code = main(["inject", "--target", "bias", "--fault", "random", "--format", "int8",
                 "--n-faults", "12", "--images", "10", "--out", str(tmp_path), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["faults"] == 12
    rows = campaign.load_list(tmp_path / "faultlist.csv")
    assert {r.fault.where.role for r in rows} == {"bias"}
    assert all(r.fault.what.kind == "random" for r in rows)
