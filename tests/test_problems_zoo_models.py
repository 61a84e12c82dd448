"""Every in-repo zoo model: the profiler's MACs equal torch's FlopCounterMode / 2, the fast
fault-injection engine gives the naive engine's outcome per fault and image, one training step
runs, and every benchmark head has its dataset's class count. Small inputs (8x8, two images) keep
the whole set within seconds: the networks' pools all take any input size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fi_util import weight_faults
from torch.utils.flop_counter import FlopCounterMode

from dse.problems import profile, zoo
from dse.problems.datasets import ImageSet
from dse.problems.train import Recipe, fit
from dse.resilience.inference import FastEngine, NaiveEngine

# image classifiers, one image (N, C, H, W) per call: deeplabv3 has its profile tests, and the
# spiking models (time-first inputs, tuple outputs) theirs in tests/test_snn_*.py
MODELS = sorted(n for n in zoo.ZOO
                if not n.startswith("deeplabv3") and len(zoo.ZOO[n].input_shape) == 4)
CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "gtsrb": 43}


def _small(name: str, n: int = 2, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = zoo.get_model(name)
    channels = zoo.default_input(name)[1]
    return model, torch.rand(n, channels, 8, 8)


def test_the_zoo_holds_the_reliability_benchmark_networks():
    assert {m for m, _ in zoo.BENCHMARK} <= set(MODELS)
    assert {f"cifar_resnet{d}" for d in (20, 32, 44, 56, 110)} | {
        "cifar_vgg11_bn", "cifar_vgg13_bn", "cifar_vgg16_bn", "cifar_vgg19_bn",
        "cifar_mobilenet_v2", "cifar_densenet121", "cifar_densenet161", "cifar_googlenet",
        "cifar_resnet18"} <= set(MODELS)
    assert all(zoo.default_input(m) == (1, 3, 32, 32) for m in MODELS if m.startswith("cifar"))


@pytest.mark.parametrize("name", MODELS)
def test_profile_macs_equal_flop_counter_half_flops(name):
    model, images = _small(name)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    workload = profile(model, tuple(images.shape), name=name)
    assert workload.total_macs == counter.get_total_flops() // 2 > 0
    assert workload.unmapped == []


@pytest.mark.parametrize("name", MODELS)
def test_fast_engine_matches_naive_per_fault_and_image(name):
    model, images = _small(name, seed=1)
    faults = weight_faults(model, 3, "fp32", "bitflip", seed=2)
    faults += weight_faults(model, 1, "int8", "stuck1", seed=3, images=len(images))
    naive = NaiveEngine(model, images).run(faults)
    fast = FastEngine(model, images)
    assert fast.graph is not None  # traced: the fast path ran, not the naive fallback
    np.testing.assert_array_equal(fast.run(faults).labels, naive.labels)


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_changes_the_weights(name):
    model, images = _small(name, n=2, seed=4)
    before = [p.detach().clone() for p in model.parameters()]
    data = ImageSet("random", "train", images, torch.tensor([0, 1]), 10)
    loss = fit(model, data, Recipe(epochs=1, batch_size=2), torch.device("cpu"))
    assert np.isfinite(loss) and not model.training
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    # The stem and the classifier always learn; on 8x8 inputs a few batch-norm shifts feeding
    # straight into another batch norm over 1x1 maps get an exactly zero gradient.
    assert changed[0] and changed[-1] and sum(changed) >= 0.9 * len(changed)


@pytest.mark.parametrize(("name", "dataset"), zoo.BENCHMARK)
def test_benchmark_heads_have_their_datasets_class_count(name, dataset):
    model = zoo.get_model(name, num_classes=CLASSES[dataset])
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 8)).shape == (1, CLASSES[dataset])
