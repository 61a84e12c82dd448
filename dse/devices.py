"""Which torch device a command runs on: ``cpu``, ``cuda`` or ``cuda:N``, checked once.

At the top of the package (like :mod:`dse.errors`) because training in :mod:`dse.problems` and the
campaigns in :mod:`dse.resilience` both take ``--device``, and data flows only downstream. torch is
imported only to look for CUDA or to build the device: checking a sweep's ``cpu`` needs none, so a
sweep that never runs a model never pays for importing it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dse.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("cpu", "cuda")


def check_device(name: str, *, here: bool = True) -> None:
    """InputError naming ``--device`` for an unknown name or, when it must exist ``here`` (not on
    a remote worker), for CUDA on a machine without it (so the CLI says so in one line instead of
    a driver traceback)."""
    base, _, number = str(name).partition(":")
    if base not in DEVICES or (number and (base != "cuda" or not number.isdigit())):
        raise InputError(f"unknown device {name!r}; expected cpu or cuda[:N]", field="--device")
    if base == "cuda" and here:
        import torch

        if not torch.cuda.is_available():
            raise InputError("cuda is not available here (torch.cuda.is_available() is False); "
                             "use --device cpu", field="--device")
        if number and int(number) >= torch.cuda.device_count():
            raise InputError(f"no {name}: {torch.cuda.device_count()} cuda device(s)",
                             field="--device")


def resolve_device(name: str | torch.device = "cpu", *, here: bool = True) -> torch.device:
    """The device named ``name``, after :func:`check_device`."""
    import torch

    check_device(str(name), here=here)
    return torch.device(str(name))
