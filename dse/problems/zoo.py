"""Model registry by name; never downloads weights (profiling needs shapes, not values).

Names it knows:

- torchvision classification and segmentation builders (``resnet18``, ``mobilenet_v2``, ``vgg16``,
  ``vit_b_16``, ``deeplabv3_resnet50``...), also spelled ``torchvision:NAME``; always built with
  ``weights=None`` (and ``weights_backbone=None`` where the builder has one);
- in-repo models: ``cifar_resnet20/32/44/56/110``, ``digits_cnn``, ``deeplabv3`` (ResNet-50
  DeepLabv3, dilated as torchvision builds it) and ``deeplabv3_undilated`` (its undilated twin);
- any ``package.module:function`` import path; keyword options go to the function.

``deeplabv3`` also takes ``dilated=False`` or ``variant="undilated"`` (what ``dse compare`` passes)
and ``backbone="resnet101"``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from dse.errors import InputError
from dse.problems.models import DigitsCNN, cifar_resnet

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
_IN_REPO_INPUTS = {"digits_cnn": (1, 1, 8, 8), "deeplabv3": (1, 3, 520, 520),
                   "deeplabv3_undilated": (1, 3, 520, 520),
                   **{f"cifar_resnet{d}": (1, 3, 32, 32) for d in CIFAR_DEPTHS}}
# torchvision builders whose default resolution is not 224 (segmentation: its reference 520).
_TV_INPUTS = {"inception_v3": (1, 3, 299, 299)}


def undilate(model: nn.Module) -> nn.Module:
    """Set every conv's dilation to 1 and shrink its padding so each output keeps its size.

    For a conv of kernel ``k``, dilation ``d`` and padding ``p``, the output size is kept by padding
    ``p - (d - 1)(k - 1) / 2`` (torchvision's ``padding = d`` for 3×3 becomes 1). Strides are not
    touched, so every feature map — and so every layer's MAC count — is that of the dilated model;
    only the receptive fields (the ``*dilation`` coefficients and Inputs footprints) differ.
    """
    for name, module in model.named_modules():
        if not isinstance(module, nn.modules.conv._ConvNd) or all(d == 1 for d in module.dilation):
            continue
        if isinstance(module.padding, str):
            module.dilation = tuple(1 for _ in module.dilation)
            continue
        padding = []
        for k, d, p in zip(module.kernel_size, module.dilation, module.padding, strict=True):
            shrink = (d - 1) * (k - 1)
            if shrink % 2 or p < shrink // 2:
                raise InputError(f"cannot keep the output size of {name} without dilation "
                                 f"(kernel {k}, dilation {d}, padding {p})", field="dilated")
            padding.append(p - shrink // 2)
        module.dilation = tuple(1 for _ in module.dilation)
        module.padding = tuple(padding)
    return model


def deeplabv3(dilated: bool = True, variant: str | None = None, backbone: str = "resnet50",
              **options: Any) -> nn.Module:
    """torchvision's DeepLabv3 (output stride 8, ASPP rates 12/24/36), or its undilated twin.

    The twin has the same layers and channel counts with every dilation set to 1; resolution is kept
    (strides unchanged, output stride stays 8) and padding shrinks so every conv keeps its output
    size (see :func:`undilate`).
    """
    if variant is not None:
        if variant not in ("dilated", "undilated"):
            raise InputError(f"unknown variant {variant!r}; use dilated or undilated",
                             field="variant")
        dilated = variant == "dilated"
    if backbone not in ("resnet50", "resnet101"):
        raise InputError(f"unknown backbone {backbone!r}; use resnet50 or resnet101",
                         field="backbone")
    built = _call(_torchvision_builder(f"deeplabv3_{backbone}"), f"deeplabv3_{backbone}", options)
    return built if dilated else undilate(built)


def _in_repo() -> dict[str, Callable[..., nn.Module]]:
    models: dict[str, Callable[..., nn.Module]] = {
        f"cifar_resnet{d}": (lambda depth: lambda **kw: cifar_resnet(depth, **kw))(d)
        for d in CIFAR_DEPTHS
    }
    models["digits_cnn"] = DigitsCNN
    models["deeplabv3"] = deeplabv3
    models["deeplabv3_undilated"] = lambda **kw: deeplabv3(**{**kw, "dilated": False})
    return models


def _torchvision_names() -> dict[str, str]:
    """torchvision model name -> the submodule that builds it (classification or segmentation)."""
    import torchvision.models as tvm

    names = {n: "classification" for n in tvm.list_models(module=tvm)}
    names.update({n: "segmentation" for n in tvm.list_models(module=tvm.segmentation)})
    return names


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    import torchvision.models as tvm

    return tvm.get_model_builder(name)


def list_models() -> list[str]:
    """Every registered name (import paths are accepted too but not listed)."""
    return sorted(set(_in_repo()) | set(_torchvision_names()))


def _call(builder: Callable[..., nn.Module], name: str, options: dict[str, Any]) -> nn.Module:
    """Build without weights; a bad option is the user's error, named as such."""
    if options.get("weights") or options.get("weights_backbone"):
        raise InputError("pretrained weights are never downloaded; drop the option",
                         field=f"{name}.weights")
    kwargs = dict(options)
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = {}
    for key in ("weights", "weights_backbone"):
        if key in params:
            kwargs[key] = None
    try:
        model = builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot build with options {options}: {exc}", field=name) from None
    if not isinstance(model, nn.Module):
        raise InputError(f"{name!r} is not a model: it returned a {type(model).__name__}, not a "
                         "torch.nn.Module", field="model")
    return model


def _import_path(name: str) -> Callable[..., nn.Module]:
    module_name, _, attr = name.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot import {name!r}: {exc}", field="model") from None
    if not callable(target):
        raise InputError(f"{name!r} is not callable", field="model")
    return target


def _unknown(name: str) -> InputError:
    close = difflib.get_close_matches(name, list_models(), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see list_models()"
    return InputError(f"unknown model {name!r}{hint}", field="model")


def get_model(name: str, **options: Any) -> nn.Module:
    """Build the named model (untrained, in eval mode: inference is what every stage studies) with
    ``options`` as builder keyword arguments."""
    return _build(name, options).eval()


def _build(name: str, options: dict[str, Any]) -> nn.Module:
    if name.startswith("torchvision:"):
        tv = name.split(":", 1)[1]
        if tv not in _torchvision_names():
            raise _unknown(tv)
        return _call(_torchvision_builder(tv), tv, options)
    in_repo = _in_repo()
    if name in in_repo:
        return _call(in_repo[name], name, options)
    if name in _torchvision_names():
        return _call(_torchvision_builder(name), name, options)
    if ":" in name:
        return _call(_import_path(name), name, options)
    raise _unknown(name)


def default_input(name: str) -> tuple[int, ...]:
    """The input shape the model is meant for (batch 1): its dataset's resolution."""
    name = name.removeprefix("torchvision:")
    if name in _IN_REPO_INPUTS:
        return _IN_REPO_INPUTS[name]
    kinds = _torchvision_names()
    if name in kinds:
        return _TV_INPUTS.get(name, (1, 3, 520, 520) if kinds[name] == "segmentation"
                              else (1, 3, 224, 224))
    if ":" in name:
        shape = getattr(_import_path(name), "default_input", None)
        if shape is None:
            raise InputError(f"no default input for {name!r}; give one (e.g. --input 1x3x224x224)",
                             field="input")
        return tuple(shape)
    raise _unknown(name)
