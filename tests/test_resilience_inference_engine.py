"""The fast engine gives the naive engine's outcome for every (fault, image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fi_util import activation_faults, fi_cache, weight_faults  # noqa: F401
from torch import nn

from dse.errors import InputError
from dse.problems.models import cifar_resnet
from dse.problems.trained import load_model
from dse.resilience.fault import Fault
from dse.resilience.inference import FastEngine, NaiveEngine
from dse.resilience.outcomes import TOP1
from dse.resilience.sampling import fault_layers, tensor_shapes

CASES = [("fp32", "bitflip", False, 1), ("fp16", "stuck1", False, 1), ("bf16", "stuck0", False, 1),
         ("int8", "bitflip", False, 1), ("int8", "stuck1", True, 1), ("fp32", "bitflip", False, 2)]


def _agree(model: nn.Module, images: torch.Tensor, faults: list[Fault]) -> np.ndarray:
    """Outcome codes (axis 0 of top1's labels) after checking fast == naive on every label."""
    naive = NaiveEngine(model, images).run(faults)
    fast = FastEngine(model, images).run(faults)
    np.testing.assert_array_equal(fast.labels, naive.labels)
    return naive.labels[..., 0]


def _names(labels: np.ndarray) -> list[str]:
    return [TOP1.axes[0][1][v] for v in labels[:, 0]]


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = cifar_resnet(20).eval()
    return model, torch.randn(3, 3, 32, 32)


@pytest.fixture(scope="module")
def digits(fi_cache):  # noqa: F811
    model, x, _ = load_model("digits_cnn")
    return model, x[:8]


def test_fast_matches_naive_on_resnet20_weight_faults_in_every_format(resnet):
    model, images = resnet
    codes = []
    for i, (fmt, kind, per_channel, k) in enumerate(CASES):
        faults = weight_faults(model, 20, fmt, kind, seed=i, per_channel=per_channel, k=k)
        faults += weight_faults(model, 5, fmt, kind, seed=100 + i, images=len(images), k=k)
        codes.append(_agree(model, images, faults))
    seen = np.concatenate([c.ravel() for c in codes])
    assert {0, 1, 2} <= set(seen.tolist())  # masked, non-critical and critical all occur


def test_fast_matches_naive_on_resnet20_activation_faults(resnet):
    model, images = resnet
    shapes = tensor_shapes(model, fault_layers(model), "output", images)
    for i, (fmt, kind, per_channel, _) in enumerate(CASES[:5]):
        _agree(model, images, activation_faults(shapes, 14, fmt, kind, i, len(images),
                                                per_channel))


def test_fast_matches_naive_on_trained_digits_cnn(digits):
    model, images = digits
    shapes = tensor_shapes(model, fault_layers(model), "output", images)
    seen = []
    for i, (fmt, kind, per_channel, k) in enumerate(CASES):
        seen.append(_agree(model, images, weight_faults(model, 15, fmt, kind, 10 + i,
                                                        per_channel=per_channel, k=k)))
        if k == 1:
            seen.append(_agree(model, images, activation_faults(shapes, 10, fmt, kind, 20 + i,
                                                                len(images), per_channel)))
    assert {0, 1, 2} <= set(np.concatenate([s.ravel() for s in seen]).tolist())


def test_transient_weight_fault_touches_only_its_image(resnet):
    model, images = resnet
    fault = Fault.of("layers.8.conv2", (0, 0, 1, 1), (30,), when="inference", at=1)
    res = FastEngine(model, images).run([fault])
    codes = res.labels[..., 0]
    assert codes[0, 0] == -1 and codes[0, 2] == -1 and codes[0, 1] >= 0
    assert res.counts()[0, 0] == 1  # one (fault, image) pair run


def test_fast_engine_skips_the_layers_before_the_fault(resnet):
    model, images = resnet
    engine = FastEngine(model, images)
    calls = []
    handle = model.conv1.register_forward_hook(lambda *_: calls.append(1))
    try:
        engine.run([Fault.of("layers.7.conv1", (3, 5, 1, 1), (30,))])
    finally:
        handle.remove()
    assert calls == []


class Branchy(nn.Module):
    """Two branches, a concat, functional ops and a module used twice: an arbitrary graph."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.ReLU6())
        self.act = nn.ReLU()
        self.head = nn.Linear(16 * 4, 5)

    def forward(self, x):
        x = self.act(self.stem(x))
        y = torch.cat([self.a(x), self.b(x) * 0.5], dim=1)
        y = nn.functional.adaptive_max_pool2d(self.act(y) + x.repeat(1, 2, 1, 1), 2)
        return self.head(y.flatten(1))


class Dynamic(Branchy):
    """Data-dependent control flow: not traceable, so the fast engine falls back."""

    def forward(self, x):
        if x.sum() > 0:
            x = x * 1.0
        return super().forward(x)


@pytest.mark.parametrize("cls", [Branchy, Dynamic])
def test_fast_matches_naive_on_branches_and_untraceable_models(cls):
    torch.manual_seed(1)
    model = cls().eval()
    model.b[1].running_var.uniform_(0.5, 2)
    images = torch.randn(4, 3, 8, 8)
    faults = weight_faults(model, 30, "fp32", "bitflip", 3)
    faults += activation_faults({"a.0": (8, 8, 8), "b.1": (8, 8, 8)}, 20, "fp16", "bitflip", 4,
                                len(images))
    codes = _agree(model, images, faults)
    assert (codes == 0).any() and (codes > 0).any()


def test_reused_module_activation_fault_is_refused(resnet):
    model, images = resnet
    with pytest.raises(InputError, match="runs 2 times"):
        NaiveEngine(model, images).run([Fault.of("layers.0.relu", (0, 0, 0), (30,),
                                                 role="output")])


def test_output_patches_agree_and_golden_values_are_masked(resnet):
    model, images = resnet
    naive, fast = NaiveEngine(model, images), FastEngine(model, images)
    gold = naive.layer_output("layers.5.bn2").reshape(len(images), -1)
    rng = np.random.default_rng(0)
    patches = [(1, torch.tensor([7, 9]), gold[1, [7, 9]])]  # same values: masked
    for i in range(40):
        pos = torch.as_tensor(rng.choice(gold.shape[1], size=3, replace=False))
        scale = float(10.0 ** rng.integers(-3, 4))
        image = None if i % 4 == 0 else int(rng.integers(len(images)))
        patches.append((image, pos, torch.full((3,), scale) * (1 if i % 2 else -1)))
    a = naive.run_output_patches("layers.5.bn2", patches)
    b = fast.run_output_patches("layers.5.bn2", patches)
    np.testing.assert_array_equal(a, b)
    names = _names(a)
    assert names[0] == "masked"
    assert len(a) == 1 + sum(len(images) if p[0] is None else 1 for p in patches[1:])
    assert "critical" in names and "non_critical" in names


def test_a_patch_naming_a_position_twice_keeps_its_last_value(resnet):
    model, images = resnet
    fast = FastEngine(model, images)
    gold = fast.layer_output("layers.5.bn2").reshape(len(images), -1)
    last_golden = (2, torch.tensor([5, 5]), torch.stack([gold[2, 5] + 1e3, gold[2, 5]]))
    last_faulty = (2, torch.tensor([5, 5]), torch.stack([gold[2, 5], gold[2, 5] + 1e3]))
    assert _names(fast.run_output_patches("layers.5.bn2", [last_golden, last_faulty]))[0] == \
        "masked"
    assert _names(fast.run_output_patches("layers.5.bn2", [last_faulty]))[0] != "masked"

    with pytest.raises(InputError, match="outside the layer output"):
        fast.run_output_patches("layers.5.bn2", [(0, torch.tensor([gold.shape[1]]),
                                                 torch.tensor([1.0]))])


def test_fast_matches_naive_on_torchvision_mobilenet_v2_and_deeplabv3():
    from torchvision.models import mobilenet_v2
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    torch.manual_seed(0)
    nets = [(mobilenet_v2(num_classes=10), torch.randn(3, 3, 32, 32)),
            (deeplabv3_mobilenet_v3_large(num_classes=4, weights=None, weights_backbone=None),
             torch.randn(2, 3, 48, 48))]
    for i, (model, images) in enumerate(nets):
        model.eval()
        assert FastEngine(model, images).graph is not None  # traced, not the fallback
        shapes = tensor_shapes(model, fault_layers(model)[:8], "output", images)
        faults = weight_faults(model, 16, "fp32", "bitflip", i)
        faults += activation_faults(shapes, 8, "bf16", "bitflip", i, len(images))
        codes = _agree(model, images, faults)
        assert (codes == 0).any() and (codes > 0).any()


def test_fast_matches_naive_when_images_span_several_padded_chunks(resnet):
    model, _ = resnet
    images = torch.randn(7, 3, 32, 32)
    faults = weight_faults(model, 24, "fp32", "bitflip", 7)
    faults += weight_faults(model, 6, "fp16", "bitflip", 8, images=len(images))
    naive = NaiveEngine(model, images, block=3).run(faults)
    fast = FastEngine(model, images, block=3, max_rows=5).run(faults)
    np.testing.assert_array_equal(fast.labels, naive.labels)
    assert (fast.propagated <= len(images)).all() and fast.propagated.sum() > 0


def _kind_faults(model: nn.Module, seed: int) -> list[Fault]:
    """Bias faults, multi-element runs (some across output channels), random words and zeros,
    in float and fixed-point formats."""
    rng = np.random.default_rng(seed)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    out = []
    for i in range(24):
        name, mod = layers[rng.integers(len(layers))]
        role = "bias" if i % 3 == 0 and mod.bias is not None else "weight"
        tensor = getattr(mod, role)
        index = tuple(int(rng.integers(s)) for s in tensor.shape)
        fmt = ("fp32", "int8", "int16:channel", "fp16")[i % 4]
        width = {"fp32": 32, "int8": 8, "int16:channel": 16, "fp16": 16}[fmt]
        kind = ("bitflip", "random", "zero", "stuck1")[(i // 4) % 4]
        bits = (width - 2,) if kind in ("bitflip", "stuck1") else ()
        run = int(min(rng.integers(1, 40), tensor.numel() - np.ravel_multi_index(index,
                                                                                  tensor.shape)))
        word = int(rng.integers(2 ** width)) if kind == "random" else None
        out.append(Fault.of(name, index, bits, role=role, kind=kind, fmt=fmt, run=run,
                            word=word))
    return out


def test_fast_matches_naive_on_bias_faults_runs_random_words_and_zeros(resnet):
    torch.manual_seed(2)
    branchy = Branchy().eval()
    images = torch.randn(4, 3, 8, 8)
    codes = _agree(branchy, images, _kind_faults(branchy, 5))
    model, res_images = resnet
    codes = np.concatenate([codes.ravel(), _agree(model, res_images, _kind_faults(model, 6)).ravel()])
    assert (codes == 0).any() and (codes > 0).any()


def test_engines_take_a_device_and_refuse_unknown_ones(resnet):
    model, images = resnet
    engine = FastEngine(model, images, device="cpu")
    assert engine.device == torch.device("cpu") and engine.golden.device.type == "cpu"
    with pytest.raises(InputError, match="unknown device"):
        NaiveEngine(model, images, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="cuda is not available"):
            FastEngine(model, images, device="cuda")


def test_roles_and_times_the_engines_do_not_run_are_refused(resnet):
    model, images = resnet
    for fault, match in ((Fault.of("conv1", (0, 0, 0, 0), (3,), role="gradient"), "gradient"),
                         (Fault.of("conv1", (0, 0, 0, 0), (3,), when="step", at=2), "step")):
        with pytest.raises(InputError, match=match):
            FastEngine(model, images).run([fault])
