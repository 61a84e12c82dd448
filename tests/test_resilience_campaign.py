"""Fault lists and campaigns: seeded generation, results files, a campaign that survives a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from _fi_util import fi_cache  # noqa: F401

from dse.errors import InputError
from dse.problems.models import DigitsCNN
from dse.resilience import campaign, sampling
from dse.resilience.inference import FastEngine, NaiveEngine
from dse.resilience.outcomes import TOP1
from dse.resilience.stats import sample_size


@pytest.fixture(scope="module")
def shapes():
    return sampling.tensor_shapes(DigitsCNN(), sampling.fault_layers(DigitsCNN()), "weight")


def test_generation_is_seeded_and_sized_by_leveugle(shapes):
    a = sampling.generate(shapes, margin=0.05, confidence=0.95, seed=3)
    b = sampling.generate(shapes, margin=0.05, confidence=0.95, seed=3)
    c = sampling.generate(shapes, margin=0.05, confidence=0.95, seed=4)
    total = sum(torch.Size(s).numel() for s in shapes.values()) * 32
    assert a == b and a != c and len(a) == sample_size(total, 0.05, 0.95)
    assert len({(f.where, f.what.bits) for f in a}) == len(a)  # without replacement
    per_bit = sampling.generate(shapes, margin=0.2, confidence=0.9, mode="bit", bits=[0, 30])
    assert {f.what.bits for f in per_bit} == {(0,), (30,)}
    multi = sampling.generate(shapes, n_faults=20, n_bits=3, fmt="fp16", seed=1)
    assert all(len(set(f.what.bits)) == 3 and max(f.what.bits) < 16 for f in multi)
    words = sampling.generate(shapes, n_faults=20, kind="random", fmt="int8", seed=1)
    assert all(f.what.bits == () and 0 <= f.what.word < 256 for f in words)
    assert len({f.what.word for f in words}) > 10


def test_results_round_trip_with_the_spec_columns(tmp_path, shapes):
    rows = campaign.numbered(sampling.generate(shapes, n_faults=30, n_bits=2, seed=0))
    rows[4] = replace(rows[4], counts=tuple(range(len(TOP1.columns))))
    campaign.save_results(rows, TOP1, tmp_path / "r.csv")
    assert campaign.load_results(tmp_path / "r.csv", TOP1) == rows
    header = (tmp_path / "r.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["Injection", "Layer", "TensorIndex", "Bit"]
    assert tuple(header[-len(TOP1.columns):]) == TOP1.columns


def test_unknown_layer_or_index_outside_the_tensor(tmp_path, shapes):
    path = tmp_path / "f.csv"
    for layer, index, match in (("nope", "(0, 0, 0, 0)", "unknown layer"),
                                ("features.0", "(99, 0, 0, 0)", "outside")):
        path.write_text(f'Injection,Layer,TensorIndex,Bit\n0,{layer},"{index}",3\n')
        rows = campaign.load_list(path)
        with pytest.raises(InputError, match=match):
            sampling.check_against([r.fault for r in rows], shapes, path=str(path))
    path.write_text("Injection,Layer,TensorIndex,Bit\n")
    with pytest.raises(InputError, match="no rows"):
        campaign.load_list(path)


def test_campaign_resumes_without_redoing_or_losing_faults(tmp_path, shapes):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    engine = NaiveEngine(model, torch.rand(6, 1, 8, 8))
    rows = campaign.numbered(sampling.generate(shapes, n_faults=40, seed=2))
    full = campaign.run_campaign(engine, rows, tmp_path / "a", chunk=7)
    # a run that stopped after 3 chunks, with a half-written line at the end
    part = tmp_path / "b"
    campaign.run_campaign(engine, rows[:21], part, chunk=7)
    text = (part / "results.csv").read_text()
    (part / "results.csv").write_text(text + "21,features.0,\"(1, 0")
    ran = []
    real_run = engine.run
    engine.run = lambda faults: ran.extend(faults) or real_run(faults)
    resumed = campaign.run_campaign(engine, rows, part, chunk=7)
    assert resumed == full and len(ran) == 19 and ran[0] == rows[21].fault
    assert campaign.load_results(part / "results.csv", TOP1) == full


def _rows_done(path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def test_cli_campaign_killed_by_a_signal_resumes_to_the_same_results(tmp_path, fi_cache):  # noqa: F811
    from dse.problems.trained import load_model

    model, images, _ = load_model("digits_cnn")  # cached for the subprocesses
    n, n_img = 300, 300
    cmd = [sys.executable, "-m", "dse", "inject", "--model", "digits_cnn", "--engine", "naive",
           "--n-faults", str(n), "--images", str(n_img), "--seed", "1", "--out", str(tmp_path)]
    env = {**os.environ, "DSE_CACHE": str(fi_cache)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while _rows_done(tmp_path / "results.csv") < 30 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _rows_done(tmp_path / "results.csv")
    assert proc.returncode == -signal.SIGKILL and 30 <= before < n
    kept = (tmp_path / "results.csv").read_text().splitlines()[1:before]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    final = campaign.load_results(tmp_path / "results.csv", TOP1)
    assert [r.injection for r in final] == list(range(n))
    assert set(kept) <= set((tmp_path / "results.csv").read_text().splitlines())
    # the same list run in one go (by the fast engine) gives the same counts
    rows = campaign.load_list(tmp_path / "faultlist.csv")
    fresh = campaign.run_campaign(FastEngine(model, images[:n_img]), rows, tmp_path / "fresh")
    assert fresh == final
