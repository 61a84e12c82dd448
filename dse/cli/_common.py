"""Small helpers shared by the subcommands (JSON output, input parsing)."""

from __future__ import annotations

import json
import sys
from typing import Any

from dse.errors import InputError


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (numpy scalars and paths become plain values)."""
    json.dump(obj, sys.stdout, indent=2, default=_plain)
    sys.stdout.write("\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def parse_shape(text: str, *, field: str = "--input") -> tuple[int, ...]:
    """Parse ``1x3x224x224`` (or ``1,3,224,224``) into a shape tuple."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"malformed shape {text!r}; expected e.g. 1x3x224x224", field=field) from None
    if not shape or any(s <= 0 for s in shape):
        raise InputError(f"shape {text!r} must be positive integers", field=field)
    return shape
