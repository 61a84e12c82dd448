"""YAML reading for architecture specs: v0.4 tags, key normalisation, one-line errors.

Timeloop's v0.4 files tag nodes (``!Container``, ``!Component``, ``!Parallel``, ``!Nothing``...);
a plain ``safe_load`` rejects them, and a full loader would run arbitrary constructors. A SafeLoader
subclass that turns each known tag into a ``{"!tag": name, ...}`` mapping keeps loading safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dse.yamlfile import FastSafeLoader, read_yaml

TAG_KEY = "!tag"
V04_TAGS = ("Container", "Component", "Parallel", "Nothing", "Hierarchical", "Pipelined")


class SpecLoader(FastSafeLoader):
    """SafeLoader that knows the v0.4 node tags (and nothing executable)."""


def _tagged(tag: str):
    def construct(loader: SpecLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = {"nodes": loader.construct_sequence(node, deep=True)}
        else:
            value = {}
        return {TAG_KEY: tag, **value}

    return construct


for _tag in V04_TAGS:
    SpecLoader.add_constructor(f"!{_tag}", _tagged(_tag))


def load_yaml(path: str | Path) -> Any:
    """Load one spec file; a missing file or a syntax error becomes an InputError naming it."""
    return read_yaml(path, SpecLoader)


def norm_key(key: object) -> str:
    """Timeloop v3.0 spells keys with hyphens, newer versions with underscores: accept both."""
    return str(key).replace("-", "_")


def norm_keys(mapping: dict[str, Any] | None) -> dict[str, Any]:
    """Shallow copy of a mapping with normalised keys (values untouched)."""
    return {norm_key(k): v for k, v in (mapping or {}).items()}
