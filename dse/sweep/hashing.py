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
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import dse
from dse.errors import InputError

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
    change when the model or mapper is fixed, and stale rows must not survive such a fix. The
    sources are found through ``importlib.resources`` on the package (never ``dse.__file__``,
    which is None when a ``dse/`` folder without ``__init__.py`` shadows the package), so the key
    is the same for an editable install, a wheel or a zip. The stage packages are read as folders,
    not imported: importing ``dse.resilience`` would load torch into a sweep that needs none. When
    they cannot be read the run stops with one line rather than keying results by a guess.
    """
    version = _version()
    digest = hashlib.sha256(version.encode())
    for pkg in _RESULT_PACKAGES:
        try:
            files = sorted(_sources(resources.files("dse").joinpath(pkg), pkg))
        except (ImportError, OSError, TypeError, ValueError) as exc:
            raise InputError(f"cannot read the sources of dse.{pkg} to key results ({exc}); "
                             "reinstall dse (pip install -e .)", field="code_version") from None
        if not files:
            raise InputError(f"no Python sources found for dse.{pkg}; cannot key results; "
                             "reinstall dse (pip install -e .)", field="code_version")
        for rel, data in files:
            digest.update(rel.encode())
            digest.update(data)
    return f"{version}+{digest.hexdigest()[:12]}"


def _version() -> str:
    """The installed distribution's version; the package's own attribute when not installed."""
    own = getattr(dse, "__version__", None)
    if own:
        return str(own)
    try:
        return metadata.version("dse")
    except metadata.PackageNotFoundError:
        raise InputError("dse is neither installed nor imported from its package folder (a 'dse/'"
                         " folder without __init__.py may shadow it: run from another folder)",
                         field="code_version") from None


def _sources(node: Any, rel: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for child in node.iterdir():
        name = f"{rel}/{child.name}"
        if child.is_dir() and child.name != "__pycache__":
            out += _sources(child, name)
        elif child.name.endswith(".py"):
            out.append((name, child.read_bytes()))
    return out


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (checkpoints, data sets): a renamed copy keeps its rows."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:24]
