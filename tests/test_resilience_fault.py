"""The fault description: validation in one place, what each kind does, the one CSV form."""

from __future__ import annotations

import pytest
import torch

from dse.errors import InputError
from dse.resilience.fault import COLUMNS, KINDS, Fault, corrupt, read_csv, run_positions, write_csv


@pytest.mark.parametrize("kwargs,field", [
    ({"kind": "melt"}, "fault"),
    ({"role": "bias_ish"}, "role"),
    ({"bits": (32,)}, "bit"),
    ({"bits": (3, 3)}, "bit"),
    ({"bits": ()}, "bit"),
    ({"kind": "zero"}, "bit"),  # zero takes no bits (the default bits here are (3,))
    ({"kind": "random", "bits": ()}, "word"),
    ({"when": "inference"}, "at"),
    ({"when": "permanent", "at": 1}, "at"),
    ({"when": "yesterday", "at": 1}, "when"),
    ({"run": 0}, "run"),
    ({"fmt": "int99"}, "format"),
])
def test_bad_fault_fields_are_input_errors_naming_the_field(kwargs, field):
    args = {"bits": (3,), **kwargs}
    bits = args.pop("bits")
    with pytest.raises(InputError) as err:
        Fault.of("conv", (0, 0), bits, **args)
    assert err.value.field == field


def test_each_kind_on_a_stored_word():
    x = torch.tensor([1.0, -2.0, 0.5])
    f = Fault.of("l", (0,), (31,))
    assert corrupt(x, f).tolist() == [-1.0, 2.0, -0.5]
    assert corrupt(x, Fault.of("l", (0,), (31,), kind="stuck0")).tolist() == [1.0, 2.0, 0.5]
    assert corrupt(x, Fault.of("l", (0,), (31,), kind="stuck1")).tolist() == [-1.0, -2.0, -0.5]
    assert corrupt(x, Fault.of("l", (0,), kind="zero")).tolist() == [0.0, 0.0, 0.0]
    word = 0x40490FDB  # pi in fp32
    got = corrupt(x, Fault.of("l", (0,), kind="random", word=word))
    assert torch.allclose(got, torch.full((3,), 3.14159265))
    fixed = corrupt(x, Fault.of("l", (0,), kind="random", word=0x81, fmt="int8"), scale=0.5)
    assert fixed.tolist() == [-127 * 0.5] * 3  # 0x81 is -127 in two's complement
    copied = corrupt(x, Fault.of("l", (0,), kind="copy", word=0x40490FDB))  # copy / value: the
    assert torch.equal(copied, got)  # word an engine resolved (another element's, a given one)
    assert set(KINDS) == {"bitflip", "stuck0", "stuck1", "random", "zero", "copy", "value"}


def test_a_run_covers_contiguous_elements_and_must_stay_inside_the_tensor():
    f = Fault.of("l", (1, 2), (0,), run=3)
    assert run_positions(f, (3, 4)).tolist() == [6, 7, 8]
    with pytest.raises(InputError, match="run of 3"):
        run_positions(Fault.of("l", (2, 2), (0,), run=3), (3, 4))
    with pytest.raises(InputError, match="outside"):
        run_positions(Fault.of("l", (3, 0), (0,)), (3, 4))


def test_csv_round_trip_of_every_field(tmp_path):
    faults = [Fault.of("features.0", (1, 0, 2, 2), (30, 3)),
              Fault.of("classifier", (4,), (7,), role="bias", kind="stuck1", fmt="int8:channel",
                       when="inference", at=3, run=2, model="digits_cnn"),
              Fault.of("layer", (0, 1, 1), role="output", kind="random", word=12345, fmt="fp16",
                       when="step", at=17),
              Fault.of("net.lif1", (5,), role="state", kind="zero", when="time_step", at=4)]
    path = tmp_path / "f.csv"
    write_csv(path, list(enumerate(faults)), ("note",), [["a"], ["b"], [""], ["d"]])
    back = read_csv(path)
    assert [f for _, f, _ in back] == faults
    assert [rest["note"] for _, _, rest in back] == ["a", "b", "", "d"]
    assert path.read_text().splitlines()[0] == ",".join([*COLUMNS, "note"])


def test_benchmark_lists_read_with_the_campaign_defaults(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text("Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical\n"
                    '0,conv1,"(1, 0, 2, 2)",14,10,9,1,0\n1,fc,"(3, 7)",5;6,,,,\n')
    rows = read_csv(path, {"Kind": "stuck1", "Format": "fp16"})
    assert [f for _, f, _ in rows] == [
        Fault.of("conv1", (1, 0, 2, 2), (14,), kind="stuck1", fmt="fp16"),
        Fault.of("fc", (3, 7), (5, 6), kind="stuck1", fmt="fp16")]
    assert rows[0][2]["critical"] == "0"


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("Injection,Layer\n0,features.0\n", "header"),
    ("Injection,Layer,TensorIndex,Bit\n0,features.0,\"(1, 0, x, 0)\",3\n", "TensorIndex"),
    ("Injection,Layer,TensorIndex,Bit\n0,features.0,\"(1, 0, 0, 0)\",40\n", "bit 40"),
    ("Injection,Layer,TensorIndex,Bit\n0,features.0,\"(1, 0, 0, 0)\"\n", "fields"),
    ("Injection,Layer,TensorIndex,Bit,Kind\n0,f,\"(1,)\",3,melt\n", "melt"),
    ("Injection,Layer,TensorIndex,Bit\n0,f,\"(1,)\",3\n0,f,\"(2,)\",3\n", "repeated"),
])
def test_malformed_fault_lists_name_the_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_csv(path)
    assert str(path) in str(err.value)


def test_a_kind_added_to_the_table_runs_everywhere(monkeypatch):
    """The docs' worked example: one entry in KINDS, and faults of that kind validate, read from
    CSV, corrupt in every format, and run in both engines with identical outcomes."""
    from torch import nn

    from dse.resilience.fault import Kind
    from dse.resilience.inference import FastEngine, NaiveEngine

    monkeypatch.setitem(KINDS, "invert", Kind("invert", False, "every bit of the word inverted",
                                              lambda w, _m, _what, width: w ^ ((1 << width) - 1)))
    assert corrupt(torch.tensor([1.0]), Fault.of("l", (0,), kind="invert")).item() == \
        -3.9999997615814210  # 0x3F800000 inverted is 0xC07FFFFF
    assert corrupt(torch.tensor([0.5]), Fault.of("l", (0,), kind="invert", fmt="int8"),
                   scale=0.5).item() == -1.0  # code 1 -> ~1 = -2
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    model.eval()
    images = torch.randn(5, 2, 6, 6)
    faults = [Fault.of("0", (i % 4, 1, 0, 2), kind="invert", fmt=fmt, role=role)
              for i, (fmt, role) in enumerate([("fp32", "weight"), ("int8", "weight"),
                                               ("fp16", "output"), ("bf16", "weight")])]
    faults[2] = Fault.of("0", (1, 2, 3), kind="invert", fmt="fp16", role="output")
    naive, fast = NaiveEngine(model, images).run(faults), FastEngine(model, images).run(faults)
    assert (naive.labels == fast.labels).all() and (naive.labels[..., 0] > 0).any()
