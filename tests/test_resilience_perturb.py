"""``perturbed``: the faulty model a user's own loop sees gives the outcomes the reference
engine gives for the same faults, and the model is restored bit for bit afterwards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dse.errors import InputError
from dse.resilience import Fault, NaiveEngine, perturbed


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).eval()


FAULTS = [Fault.of("0", (2, 0, 1, 1), (30,)),
          Fault.of("2", (5, 3, 0, 2), (7,), fmt="int8"),
          Fault.of("5", (4,), (14,), role="bias", fmt="bf16"),
          Fault.of("2", (3, 1, 1), (30,), role="output", kind="stuck1"),
          Fault.of("0", (1, 2, 2), (6,), role="output", fmt="int8:channel", run=3)]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.where.role}-{f.fmt.name}")
def test_user_loop_under_perturbed_sees_what_the_reference_engine_sees(fault):
    model = _model()
    images = torch.randn(40, 1, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = NaiveEngine(model, images).run([fault]).labels[0]
    with torch.no_grad():
        golden = model(images)
        with perturbed(model, fault) as faulty:
            # the user's loop; a fixed-point output's scale comes from the batch it sees, so
            # that fault sees the engine's one batch of every image
            size = 40 if fault.where.role == "output" and fault.fmt.fixed else 16
            outs = torch.cat([faulty(batch) for batch in images.split(size)])
    assert (NaiveEngine(model, images).classify(golden, outs) == reference).all()
    assert not torch.equal(outs, golden) or (reference[:, 0] == 0).all()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(model(images), golden)  # hooks removed too


def test_model_is_restored_when_the_loop_raises_and_per_image_faults_are_refused():
    model = _model()
    before = model[0].weight.clone()
    with pytest.raises(RuntimeError), perturbed(model, FAULTS[0]):
        assert not torch.equal(model[0].weight, before)
        raise RuntimeError("user code failed")
    assert torch.equal(model[0].weight, before)
    with pytest.raises(InputError, match="permanent"), perturbed(
            model, Fault.of("0", (0, 0, 0, 0), (30,), when="inference", at=3)):
        pass
