"""Training fault models on tensors: exact bit faults, runs of 16/64, copy, random, zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dse.errors import InputError
from dse.resilience import fault as core
from dse.resilience.training.fault import TrainFault, corrupt_run, random_finite


def _fault(**kw) -> TrainFault:
    base = {"epoch": 0, "step": 0, "layer": "l", "pass_": "forward", "operand": "output"}
    return TrainFault(**{**base, **kw})


def test_bitflip_run_of_16_changes_exactly_those_elements_like_the_core():
    t = torch.randn(4, 8, 3)
    f = _fault(fmodel="bitflip", pos=(1, 2, 1), bits=(30,), extent=16)
    out = corrupt_run(t, f, np.random.default_rng(0))
    start = np.ravel_multi_index((1, 2, 1), t.shape)
    changed = torch.nonzero((out != t).reshape(-1)).reshape(-1).tolist()
    assert changed == list(range(start, start + 16))
    ref = core.corrupt(t.reshape(-1)[start:start + 16], core.Fault.of("l", (0,), (30,)))
    got = out.reshape(-1)[start:start + 16]
    assert torch.equal(got.view(torch.int32), ref.view(torch.int32))  # bit-exact, NaNs included


def test_a_run_that_leaves_the_tensor_is_an_input_error():
    with pytest.raises(InputError, match="leaves"):
        corrupt_run(torch.ones(10), _fault(fmodel="zero", pos=(5,), extent=16),
                    np.random.default_rng(0))


def test_value_fault_writes_the_given_value_in_the_format():
    t = torch.zeros(4, dtype=torch.bfloat16)
    out = corrupt_run(t, _fault(fmodel="value", fmt="bf16", values=(3e38,), pos=(1,)),
                      np.random.default_rng(0))
    assert out[1].item() == torch.tensor(3e38).to(torch.bfloat16).item() and out[0] == 0


def test_copy_takes_valid_values_from_elsewhere_in_the_tensor():
    t = torch.arange(100, dtype=torch.float32)
    out = corrupt_run(t, _fault(fmodel="copy", pos=(40,), extent=16), np.random.default_rng(3))
    new = out[40:56]
    assert not torch.equal(new, t[40:56])
    assert set(new.tolist()) <= set(t.tolist())


@pytest.mark.parametrize("fmt", ["fp32", "fp16", "bf16"])
def test_random_values_are_finite_words_of_the_format(fmt):
    v = torch.from_numpy(random_finite(fmt, 500, np.random.default_rng(1)))
    assert torch.isfinite(v).all()
    if fmt != "fp32":
        dtype = torch.float16 if fmt == "fp16" else torch.bfloat16
        assert torch.equal(v.to(dtype).float(), v)  # exactly representable
    assert v.abs().max() > 1e3  # uniform over bit patterns reaches large exponents


def test_bf16_bit_fault_on_a_bf16_tensor_flips_the_stored_bit():
    t = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    out = corrupt_run(t, _fault(fmodel="bitflip", fmt="bf16", bits=(15,), pos=(0,)),
                      np.random.default_rng(0))
    assert out.dtype == torch.bfloat16 and out.tolist() == [-1.5, -2.0]


@pytest.mark.parametrize("kw,field", [
    ({"pass_": "sideways"}, "pass"), ({"operand": "bias"}, "operand"),
    ({"fmodel": "melt"}, "fmodel"), ({"extent": 7}, "extent"), ({"fmt": "int3"}, "fmt"),
    ({"fmodel": "bitflip", "bits": (40,)}, "bit"), ({"fmodel": "value"}, "inj_values"),
])
def test_bad_fault_fields_are_input_errors_naming_the_field(kw, field):
    with pytest.raises(InputError) as exc:
        _fault(**kw)
    assert exc.value.field == field


def test_position_outside_the_tensor_is_an_input_error():
    with pytest.raises(InputError, match="outside"):
        corrupt_run(torch.zeros(2, 3), _fault(fmodel="zero", pos=(2, 0)), np.random.default_rng(0))


def test_a_forward_output_fault_keeps_the_gradient_path_of_the_other_elements():
    from dse.resilience.training.fault import Injector
    from dse.resilience.training.trainer import Trainer, TrainSetup, load_data

    trainer = Trainer(TrainSetup(epochs=1), load_data("digits"))
    f = TrainFault(0, 0, "classifier.3", "forward", "output", "value", (0, 0), values=(7.0,),
                   extent=16)
    inj = Injector(f)
    with inj.armed(trainer.model):
        trainer.forward_backward(0)
    assert inj.written == [7.0] * 16
    grad = trainer.model.get_submodule("features.0").weight.grad
    assert grad is not None and grad.abs().sum() > 0
