"""Stable content hashes: the keys that make a sweep resumable.

A result row is keyed by a hash of everything that determines it, so a rerun can tell "already
computed" from "an input changed" without trusting file names or timestamps. The hash is over a
canonical JSON form (sorted keys, exact float reprs, sets sorted) so it is identical across
processes, machines and Python hash seeds.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import dse

# Stages whose source decides a row's numbers: editing any of them invalidates stored rows.
_RESULT_PACKAGES = ("problems", "arch", "model", "mapper", "resilience")


def to_plain(obj: Any) -> Any:
    """Turn dataclasses, tuples, sets, numpy scalars and paths into JSON-able values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((to_plain(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        # NaN/inf are not JSON; exact repr keeps 0.1 and 0.1000000001 apart.
        return repr(obj) if not math.isfinite(obj) else obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalar
        return to_plain(obj.item())
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return repr(obj)


def canonical_json(obj: Any) -> str:
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"))


def stable_hash(*parts: Any) -> str:
    """SHA-256 (first 24 hex digits) of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:24]


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version plus a digest of the sources of every stage that produces numbers.

    Why a source digest and not just the version: during development the version string does not
    change when the model or mapper is fixed, and stale rows must not survive such a fix.
    """
    root = Path(dse.__file__).resolve().parent
    digest = hashlib.sha256(getattr(dse, "__version__", "0").encode())
    for pkg in _RESULT_PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return f"{getattr(dse, '__version__', '0')}+{digest.hexdigest()[:12]}"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (checkpoints, data sets): a renamed copy keeps its rows."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:24]
