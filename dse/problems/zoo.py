"""The one model registry, by name, used by every command and the sweep; never downloads weights.

Names it knows:

- in-repo models (:data:`ZOO`), CIFAR-sized unless named otherwise: ``cifar_resnet20/32/44/56/110``
  and ``cifar_resnet18``, ``cifar_vgg11_bn/13/16/19``, ``cifar_mobilenet_v2``,
  ``cifar_densenet121/161``, ``cifar_googlenet`` (the networks reliability studies compare on, with
  CIFAR-10 / CIFAR-100 / GTSRB heads through ``num_classes``), ``digits_cnn`` and
  ``digits_resnet20`` (8x8 digits), ``deeplabv3`` (ResNet-50 DeepLabv3, dilated as torchvision
  builds it) and ``deeplabv3_undilated`` (its undilated twin);
- torchvision classification and segmentation builders (``resnet18``, ``resnet50``,
  ``mobilenet_v2``, ``vgg16_bn``, ``vit_b_16``, ``deeplabv3_resnet50``...), also spelled
  ``torchvision:NAME``; always built with ``weights=None`` (and ``weights_backbone=None``);
- any ``package.module:function`` import path; keyword options go to the function.

In-repo names never collide with torchvision's (a test checks): ``resnet50`` is torchvision's
everywhere, the CIFAR networks carry a ``cifar_`` prefix. Every in-repo builder takes
``num_classes`` and ``in_channels``, so one network serves every dataset's head.

``deeplabv3`` also takes ``dilated=False`` or ``variant="undilated"`` (what ``dse compare`` passes)
and ``backbone="resnet101"``.

To add a model: one :class:`ZooModel` line in :data:`ZOO` naming its builder by import path (the
module is imported only when the model is built, so optional dependencies stay optional).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dse.errors import InputError

if TYPE_CHECKING:  # torch loads with the first model built: name checks and defaults need none
    from torch import nn

CIFAR_DEPTHS = (20, 32, 44, 56, 110)
CIFAR = (1, 3, 32, 32)
# torchvision builders whose default resolution is not 224 (segmentation: its reference 520).
_TV_INPUTS = {"inception_v3": (1, 3, 299, 299)}


@dataclass(frozen=True)
class ZooModel:
    """An in-repo model: its builder (``module:function``), fixed builder options, the input it is
    meant for (batch 1), and the dataset and epochs it is trained with by default (None: no
    default; ``dse inject`` and friends train it on first use when there is one)."""

    builder: str
    input_shape: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    epochs: int = 10


_M, _C = "dse.problems.models", "dse.problems.cifar_zoo"
ZOO: dict[str, ZooModel] = {
    "digits_cnn": ZooModel(f"{_M}:DigitsCNN", (1, 1, 8, 8), dataset="digits", epochs=15),
    "digits_resnet20": ZooModel(f"{_M}:cifar_resnet", (1, 1, 8, 8),
                                {"depth": 20, "in_channels": 1}, dataset="digits", epochs=8),
    **{f"cifar_resnet{d}": ZooModel(f"{_M}:cifar_resnet", CIFAR, {"depth": d})
       for d in CIFAR_DEPTHS},
    "cifar_resnet18": ZooModel(f"{_C}:resnet18", CIFAR),
    **{f"cifar_vgg{d}_bn": ZooModel(f"{_C}:vgg_bn", CIFAR, {"depth": d}) for d in (11, 13, 16, 19)},
    "cifar_mobilenet_v2": ZooModel(f"{_C}:mobilenet_v2", CIFAR),
    **{f"cifar_densenet{d}": ZooModel(f"{_C}:densenet", CIFAR, {"depth": d}) for d in (121, 161)},
    "cifar_googlenet": ZooModel(f"{_C}:googlenet", CIFAR),
    "deeplabv3": ZooModel("dse.problems.zoo:deeplabv3", (1, 3, 520, 520)),
    "deeplabv3_undilated": ZooModel("dse.problems.zoo:deeplabv3", (1, 3, 520, 520),
                                    {"dilated": False}),
    # spiking (snntorch), input time first: 10 steps of rate-coded 8x8 digits; trained on first
    # use by dse snn-inject (dse.resilience.snn.data), not by the non-spiking trainer
    "csnn": ZooModel("dse.problems.snn_models:CSNN", (10, 1, 1, 8, 8)),
    "fcsnn": ZooModel("dse.problems.snn_models:FCSNN", (10, 1, 1, 8, 8)),
}

# The reliability benchmark zoo: (model, dataset) pairs with trained weights in the published
# comparisons (CIFAR-10, CIFAR-100 and GTSRB heads of the networks above).
BENCHMARK = (
    *((f"cifar_resnet{d}", "cifar10") for d in CIFAR_DEPTHS),
    ("cifar_mobilenet_v2", "cifar10"),
    *((f"cifar_vgg{d}_bn", "cifar10") for d in (11, 13, 16, 19)),
    ("cifar_densenet121", "cifar10"), ("cifar_densenet161", "cifar10"),
    ("cifar_googlenet", "cifar10"),
    ("cifar_resnet18", "cifar100"), ("cifar_densenet121", "cifar100"),
    ("cifar_googlenet", "cifar100"),
    ("cifar_resnet20", "gtsrb"), ("cifar_densenet121", "gtsrb"), ("cifar_vgg11_bn", "gtsrb"),
)


def undilate(model: nn.Module) -> nn.Module:
    """Set every conv's dilation to 1 and shrink its padding so each output keeps its size.

    For a conv of kernel ``k``, dilation ``d`` and padding ``p``, the output size is kept by padding
    ``p - (d - 1)(k - 1) / 2`` (torchvision's ``padding = d`` for 3×3 becomes 1). Strides are not
    touched, so every feature map — and so every layer's MAC count — is that of the dilated model;
    only the receptive fields (the ``*dilation`` coefficients and Inputs footprints) differ.
    """
    from torch import nn

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
    return sorted(set(ZOO) | set(_torchvision_names()))


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
    from torch import nn

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


def _builder(name: str) -> tuple[Callable[..., nn.Module], str, dict[str, Any]]:
    """(builder, the name it is reported under, fixed options) for any accepted name."""
    if name.startswith("torchvision:"):
        tv = name.split(":", 1)[1]
        if tv not in _torchvision_names():
            raise _unknown(tv)
        return _torchvision_builder(tv), tv, {}
    if name in ZOO:
        return _import_path(ZOO[name].builder), name, ZOO[name].options
    if name in _torchvision_names():
        return _torchvision_builder(name), name, {}
    if ":" in name:
        return _import_path(name), name, {}
    raise _unknown(name)


def _build(name: str, options: dict[str, Any]) -> nn.Module:
    builder, shown, fixed = _builder(name)
    return _call(builder, shown, {**fixed, **options})


def accepts(name: str, option: str) -> bool:
    """Whether the model's builder takes keyword ``option`` (``num_classes``, ``in_channels``):
    torchvision builders pass any keyword on to the model class, which takes ``num_classes``."""
    builder, _, _ = _builder(name)
    params = inspect.signature(builder).parameters
    if option in params:
        return True
    keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return keywords and option == "num_classes" and builder.__module__.startswith("torchvision")


def default_dataset(name: str) -> str | None:
    """The dataset an in-repo model is trained on by default (digits models), else None."""
    entry = ZOO.get(name)
    return entry.dataset if entry else None


def default_epochs(name: str) -> int:
    """Training epochs when the user names none: the model's own, else 10."""
    return ZOO[name].epochs if name in ZOO else 10


def default_input(name: str) -> tuple[int, ...]:
    """The input shape the model is meant for (batch 1): its dataset's resolution."""
    if name in ZOO:
        return ZOO[name].input_shape
    name = name.removeprefix("torchvision:")
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
