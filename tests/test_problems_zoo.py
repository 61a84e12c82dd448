"""The model registry: names, variants, import paths, never any weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dse.errors import InputError
from dse.problems import zoo


def test_registry_lists_torchvision_and_in_repo_models():
    names = set(zoo.list_models())
    assert {"resnet18", "mobilenet_v2", "vgg16", "vit_b_16", "deeplabv3_resnet50", "deeplabv3",
            "deeplabv3_undilated", "digits_cnn", "cifar_resnet20", "cifar_resnet110"} <= names


def test_unknown_model_names_close_matches():
    with pytest.raises(InputError, match="did you mean.*resnet18"):
        zoo.get_model("resnt18")
    with pytest.raises(InputError, match="unknown model"):
        zoo.default_input("no_such_net")


@pytest.mark.parametrize("options", [{"variant": "undilated"}, {"dilated": False}])
def test_deeplabv3_variants_build_the_undilated_twin(options):
    twin = zoo.get_model("deeplabv3", num_classes=3, **options)
    dilated = zoo.get_model("deeplabv3", num_classes=3)
    convs = [m for m in twin.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.dilation == (1, 1) for m in convs)
    assert max(m.dilation[0] for m in dilated.modules() if isinstance(m, nn.Conv2d)) == 36
    x = torch.zeros(1, 3, 40, 40)
    with torch.no_grad():
        assert twin(x)["out"].shape == dilated(x)["out"].shape == (1, 3, 40, 40)
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in dilated.parameters())


def test_import_paths_and_prefixed_torchvision_names_build():
    model = zoo.get_model("dse.problems.models:cifar_resnet", depth=32)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 1 + 2 * 15 + 2
    assert type(zoo.get_model("torchvision:mobilenet_v2")).__name__ == "MobileNetV2"
    with pytest.raises(InputError, match="cannot import"):
        zoo.get_model("dse.no_such_module:f")


def test_weights_are_never_requested():
    with pytest.raises(InputError, match="never downloaded"):
        zoo.get_model("resnet18", weights="DEFAULT")
    with pytest.raises(InputError, match="cannot build"):
        zoo.get_model("resnet18", no_such_option=1)


def test_default_inputs_follow_each_dataset():
    assert zoo.default_input("resnet18") == (1, 3, 224, 224)
    assert zoo.default_input("cifar_resnet56") == (1, 3, 32, 32)
    assert zoo.default_input("digits_cnn") == (1, 1, 8, 8)
    assert zoo.default_input("deeplabv3_resnet50") == (1, 3, 520, 520)
    assert zoo.default_input("torchvision:inception_v3") == (1, 3, 299, 299)
    assert not zoo.get_model("cifar_resnet20").training
