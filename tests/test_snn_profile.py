"""Spiking models on the accelerator side: synaptic layers as Timeloop problems, steps in N."""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from dse.cli import main
from dse.problems import profile, zoo
from tests._snn_util import snntorch  # noqa: F401  (skips without snntorch)


def test_profile_folds_time_steps_into_the_batch_and_keeps_every_mac():
    shape = zoo.default_input("csnn")
    steps = shape[0]
    model = zoo.get_model("csnn")
    work = profile(model, shape, name="csnn")
    assert [lay.name for lay in work.layers] == ["conv1", "conv2", "fc1"]
    assert all(lay.count == 1 and lay.problem.instance["N"] == steps * shape[1]
               for lay in work.layers)
    assert any("time steps are folded" in n for n in work.notes)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(shape))
    assert work.total_macs == counter.get_total_flops() // 2  # torch's own count, all steps


def test_sweep_maps_a_spiking_model_onto_a_shipped_design(tmp_path, capsys):
    code = main(["sweep", "--arch", "eyeriss_like", "--model", "csnn", "--no-resilience",
                 "--executor", "inprocess", "--out", str(tmp_path), "--quiet", "--json",
                 "--no-report"])
    assert code == 0
    (net,) = json.loads(capsys.readouterr().out)["network"]
    assert net["model"] == "csnn" and net["layers"] == 3 and net["energy_pJ"] > 0
    assert net["macs"] == sum(lay.macs for lay in profile(zoo.get_model("csnn"),
                                                          zoo.default_input("csnn")).layers)
