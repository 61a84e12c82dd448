"""Small helpers shared by the subcommands (JSON output, input parsing)."""

from __future__ import annotations

import json
import sys
from typing import Any

from dse import validate


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
    return validate.shape(text, field)
