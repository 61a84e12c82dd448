"""Which torch device a command runs on: ``cpu``, ``cuda`` or ``cuda:N``, checked once.

At the top of the package (like :mod:`dse.errors`) because training in :mod:`dse.problems` and the
campaigns in :mod:`dse.resilience` both take ``--device``, and data flows only downstream."""

from __future__ import annotations

import torch

from dse.errors import InputError

DEVICES = ("cpu", "cuda")


def resolve_device(name: str | torch.device = "cpu", *, here: bool = True) -> torch.device:
    """The device named ``name``; InputError naming ``--device`` for an unknown name or, when it
    must exist ``here`` (not on a remote worker), for CUDA on a machine without it (so the CLI
    says so in one line instead of a driver traceback)."""
    if isinstance(name, torch.device):
        name = str(name)
    base, _, number = str(name).partition(":")
    if base not in DEVICES or (number and (base != "cuda" or not number.isdigit())):
        raise InputError(f"unknown device {name!r}; expected cpu or cuda[:N]", field="--device")
    if base == "cuda" and here:
        if not torch.cuda.is_available():
            raise InputError("cuda is not available here (torch.cuda.is_available() is False); "
                             "use --device cpu", field="--device")
        if number and int(number) >= torch.cuda.device_count():
            raise InputError(f"no {name}: {torch.cuda.device_count()} cuda device(s)",
                             field="--device")
    return torch.device(name)
