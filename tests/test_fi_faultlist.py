"""Fault lists: seeded generation, CSV round trip, bad files, a campaign that survives a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from _fi_util import fi_cache  # noqa: F401

from dse.errors import InputError
from dse.problems.models import DigitsCNN
from dse.resilience import campaign, faultlist
from dse.resilience.engine import NaiveEngine
from dse.resilience.stats import sample_size


@pytest.fixture(scope="module")
def shapes():
    return faultlist.tensor_shapes(DigitsCNN(), faultlist.fault_layers(DigitsCNN()), "weights")


def test_generation_is_seeded_and_sized_by_leveugle(shapes):
    a = faultlist.generate(shapes, margin=0.05, confidence=0.95, seed=3)
    b = faultlist.generate(shapes, margin=0.05, confidence=0.95, seed=3)
    c = faultlist.generate(shapes, margin=0.05, confidence=0.95, seed=4)
    total = sum(torch.Size(s).numel() for s in shapes.values()) * 32
    assert a == b and a != c and len(a) == sample_size(total, 0.05, 0.95)
    assert len({(f.layer, f.index, f.bits) for f in a}) == len(a)  # without replacement
    per_bit = faultlist.generate(shapes, margin=0.2, confidence=0.9, mode="bit", bits=[0, 30])
    assert {f.bits for f in per_bit} == {(0,), (30,)}
    multi = faultlist.generate(shapes, n_faults=20, n_bits=3, fmt="fp16", seed=1)
    assert all(len(set(f.bits)) == 3 and max(f.bits) < 16 for f in multi)


def test_csv_round_trip_keeps_faults_and_counts(tmp_path, shapes):
    rows = faultlist.numbered(faultlist.generate(shapes, n_faults=30, n_bits=2, seed=0))
    rows[4] = faultlist.with_counts(rows[4], (10, 3, 6, 1))
    faultlist.save(rows, tmp_path / "f.csv")
    back = faultlist.load(tmp_path / "f.csv")
    assert back == rows
    header = (tmp_path / "f.csv").read_text().splitlines()[0]
    assert header == "Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical"


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("Injection,Layer\n0,features.0\n", "header"),
    (",".join(faultlist.COLUMNS) + "\n", "no rows"),
    (",".join(faultlist.COLUMNS) + '\n0,features.0,"(1, 0, x, 0)",3,,,,\n', "TensorIndex"),
    (",".join(faultlist.COLUMNS) + '\n0,features.0,"(1, 0, 0, 0)",40,,,,\n', "bit 40"),
    (",".join(faultlist.COLUMNS) + '\n0,features.0,"(1, 0, 0, 0)",3,5,4,4,0\n', "exceed"),
    (",".join(faultlist.COLUMNS) + '\n0,features.0,"(1, 0, 0, 0)",3\n', "fields"),
])
def test_malformed_fault_lists_are_input_errors(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        faultlist.load(path)
    assert str(path) in str(err.value)


def test_unknown_layer_or_index_outside_the_tensor(tmp_path, shapes):
    path = tmp_path / "f.csv"
    for layer, index, match in (("nope", "(0, 0, 0, 0)", "unknown layer"),
                                ("features.0", "(99, 0, 0, 0)", "outside")):
        path.write_text(",".join(faultlist.COLUMNS) + f'\n0,{layer},"{index}",3,,,,\n')
        with pytest.raises(InputError, match=match):
            faultlist.check_against(faultlist.load(path), shapes, path)


def test_campaign_resumes_without_redoing_or_losing_faults(tmp_path, shapes):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    engine = NaiveEngine(model, torch.rand(6, 1, 8, 8))
    rows = faultlist.numbered(faultlist.generate(shapes, n_faults=40, seed=2))
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
    assert faultlist.load(part / "results.csv") == full


def _rows_done(path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def test_cli_campaign_killed_by_a_signal_resumes_to_the_same_results(tmp_path, fi_cache):  # noqa: F811
    from dse.resilience.data import trained_model
    from dse.resilience.engine import FastEngine

    model, images, _ = trained_model("digits_cnn")  # cached for the subprocesses
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
    final = faultlist.load(tmp_path / "results.csv")
    assert [r.injection for r in final] == list(range(n))
    assert set(kept) <= set((tmp_path / "results.csv").read_text().splitlines())
    # the same list run in one go (by the fast engine) gives the same counts
    rows = faultlist.load(tmp_path / "faultlist.csv")
    fresh = campaign.run_campaign(FastEngine(model, images[:n_img]), rows, tmp_path / "fresh")
    assert fresh == final
