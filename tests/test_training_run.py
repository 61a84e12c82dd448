"""Golden runs, bit-exact restarts and replays, the artifact's three examples, mitigations.

One small golden run (digits_cnn, 4 epochs of 21 steps, adam, two extra seeds for the outcome
tolerance) serves the whole module.
"""

from __future__ import annotations

import numpy as np
import pytest

from dse.resilience.training import campaign as tc
from dse.resilience.training.fault import TrainFault
from dse.resilience.training.outcome import TrainingOutcomeSpec, classify
from dse.resilience.training.run import golden_run, run_experiment
from dse.resilience.training.trainer import TrainSetup, load_data

SETUP = TrainSetup(epochs=4)
SPEC = TrainingOutcomeSpec()


@pytest.fixture(scope="module")
def data():
    return load_data("digits")


@pytest.fixture(scope="module")
def golden(data):
    return golden_run(SETUP, data, spread_seeds=2)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.int32)


def test_no_fault_restart_from_a_checkpoint_equals_the_golden_curve_bit_for_bit(golden, data):
    exp = run_experiment(golden, data, None, epoch=1, early_stop=False)
    start = exp.curve.start
    assert start == golden.steps_per_epoch and exp.end == golden.total_steps - 1
    assert np.array_equal(_bits(exp.curve.loss), _bits(golden.curve.loss[start:]))
    assert np.array_equal(_bits(exp.curve.acc), _bits(golden.curve.acc[start:]))
    assert exp.curve.test_acc == {g: a for g, a in golden.curve.test_acc.items() if g >= start}
    assert golden.curve.test_acc[golden.total_steps - 1] > 0.85  # it did learn


def test_exact_early_stop_gives_the_curve_of_the_full_run(golden, data):
    # an input-gradient fault that the ReLU before the layer discards: the state becomes the
    # golden state again, the fast path stops there and fills in the golden curve
    f = TrainFault(0, 5, "features.2", "backward", "grad_in", "random", (2, 3, 1, 1), extent=16)
    fast = run_experiment(golden, data, f, steps_after=40)
    full = run_experiment(golden, data, f, steps_after=40, early_stop=False)
    assert fast.curve.exact_stop is not None and fast.steps_run < full.steps_run
    assert np.array_equal(_bits(fast.curve.loss), _bits(full.curve.loss))
    assert fast.curve.test_acc == full.curve.test_acc
    assert classify(fast, golden, SPEC).outcome == "Masked"


def _same_from_the_injection(fast, naive) -> None:
    """The fast experiment's curve equals the from-scratch one from the injection to its stop."""
    stop = fast.curve.nonfinite if fast.curve.nonfinite is not None else fast.end
    a = fast.curve.loss[fast.inject - fast.curve.start:stop - fast.curve.start + 1]
    b = naive.curve.loss[naive.inject - naive.curve.start:stop - naive.curve.start + 1]
    assert np.array_equal(_bits(a), _bits(b))
    last = stop - 1 if fast.curve.nonfinite is not None else stop
    assert fast.curve.test_acc == {g: v for g, v in naive.curve.test_acc.items() if g <= last}


@pytest.mark.parametrize("mitigation,fault", [
    ("none", TrainFault(2, 10, "features.2", "forward", "output", "random", (3, 4, 2, 2),
                        extent=16, seed=3)),  # injected at a checkpoint step
    ("none", TrainFault(1, 3, "features.5", "backward", "grad_out", "value", (5, 3, 1, 1),
                        values=(3e38,))),  # stops at INF/NaN
    ("guard", TrainFault(0, 20, "features.5", "backward", "grad_out", "value", (5, 3, 1, 1),
                         values=(3e38,))),  # rolled back at a checkpoint step, back on golden
])
def test_checkpoint_restart_and_early_stops_equal_training_from_scratch(golden, data,
                                                                      mitigation, fault):
    g = golden if mitigation == "none" else golden_run(
        SETUP.with_(epochs=2, mitigation=mitigation), data, spread_seeds=0)
    fast = run_experiment(g, data, fault, steps_after=20)
    naive = run_experiment(g, data, fault, steps_after=20, early_stop=False, from_scratch=True)
    assert fast.curve.start > 0 and fast.steps_run < naive.steps_run
    assert fast.inject - fast.curve.start <= 10  # restarted from the last checkpoint before it
    _same_from_the_injection(fast, naive)
    assert repr(classify(fast, g, SPEC)) == repr(classify(naive, g, SPEC))  # NaNs alike
    assert tc.curve_sha(fast) == tc.curve_sha(naive) or fast.curve.nonfinite is not None


def test_replayed_row_equals_its_first_run(golden, data):
    f = TrainFault(1, 7, "features.5", "forward", "output", "copy", (3, 2, 1, 0), extent=16,
                   seed=11)
    base = tc.fault_row(0, f, SETUP, 30)
    first, _ = tc.run_one(golden, data, base, SPEC)
    _, again_fault, _ = tc.from_row(first)  # the written row describes the same fault
    assert again_fault == f
    second, _ = tc.run_one(golden, data, {k: first[k] for k in tc.COLUMNS}, SPEC)
    assert second["curve_sha"] == first["curve_sha"]
    assert second["inj_values"] == first["inj_values"] and first["inj_values"]
    assert first["orig_values"] != first["inj_values"]


def test_artifact_example_weight_bit_flip_is_masked(golden, data):
    f = TrainFault(1, 3, "features.0", "forward", "weight", "bitflip", (3, 0, 1, 1), bits=(20,))
    exp = run_experiment(golden, data, f, steps_after=40)
    assert exp.written != exp.original  # the stored weight did change
    assert classify(exp, golden, SPEC).outcome == "Masked"


def test_artifact_example_huge_value_is_immediate_inf_nan(golden, data):
    f = TrainFault(1, 3, "features.5", "backward", "grad_out", "value", (5, 3, 1, 1),
                   values=(3e38,))
    exp = run_experiment(golden, data, f, steps_after=40)
    assert exp.curve.nonfinite == exp.inject == golden.steps_per_epoch + 3
    assert classify(exp, golden, SPEC).outcome == "ImmediateInfNaN"


def test_artifact_example_huge_value_into_a_zero_activation_gradient_is_slow_degrade(golden,
                                                                                      data):
    f = TrainFault(0, 3, "classifier.1", "backward", "grad_out", "value", (52, 21),
                   values=(1e30,))
    exp = run_experiment(golden, data, f, steps_after=40)
    assert exp.original == [0.0]  # the golden activation gradient there was zero
    v = classify(exp, golden, SPEC)
    assert v.outcome == "SlowDegrade"
    assert v.drop > v.tol and np.isfinite(exp.curve.loss[~np.isnan(exp.curve.loss)]).all()


def test_guard_rolls_back_the_immediate_inf_nan_fault_and_adam_bound_detects_it(data):
    f = TrainFault(1, 3, "features.5", "backward", "grad_out", "value", (5, 3, 1, 1),
                   values=(3e38,))
    short = SETUP.with_(epochs=2)
    guard = golden_run(short.with_(mitigation="guard"), data, spread_seeds=0)
    exp = run_experiment(guard, data, f, steps_after=10)
    assert exp.inject in exp.curve.detections and exp.curve.rollbacks == 1
    assert exp.curve.nonfinite is None and exp.curve.exact_stop is not None  # back on golden
    bound = golden_run(short.with_(mitigation="adam-bound"), data, spread_seeds=0)
    assert bound.curve.detections == []  # no false positive in the fault-free run
    exp = run_experiment(bound, data, f, steps_after=10)
    assert exp.curve.detections == [exp.inject] and exp.curve.nonfinite is None


def test_mixed_precision_restart_is_bit_exact_and_bf16_faults_hit_bf16_activations(data):
    golden = golden_run(SETUP.with_(epochs=2, precision="bf16"), data, spread_seeds=0)
    exp = run_experiment(golden, data, None, epoch=1, early_stop=False)
    assert np.array_equal(_bits(exp.curve.loss), _bits(golden.curve.loss[exp.curve.start:]))
    f = TrainFault(1, 2, "features.2", "forward", "output", "bitflip", (3, 4, 2, 2), fmt="bf16",
                   bits=(14,))  # the top exponent bit of a bf16 word
    exp = run_experiment(golden, data, f, steps_after=10)
    import torch

    (orig,), (new,) = exp.original, exp.written
    assert torch.tensor(orig).to(torch.bfloat16).item() == orig  # the activation was bf16
    assert abs(new) > 1e30 and new * orig > 0
