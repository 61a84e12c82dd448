"""Reading a YAML file at the edge: a missing file or a syntax error becomes one InputError line
naming the file and the place, the same way for every stage (problems, designs, mappings, sweeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dse.errors import InputError

#: libyaml's safe loader where PyYAML was built with it (about 10x faster than the pure-Python
#: one: reading a design and a layer was a fifth of a short ``dse map`` run); same safe constructors.
FastSafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | Path, loader: type = FastSafeLoader) -> Any:
    """Parse ``path`` with ``loader`` (a safe loader, or a subclass with extra tags)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text file (byte {exc.start} is not UTF-8)",
                         file=str(path)) from None
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - always a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"not valid YAML: syntax error{where}: {exc.problem}",
                         file=str(path)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}".splitlines()[0], file=str(path)) from None
