"""``load_arch``: one entry point for every way a design can be given."""

from __future__ import annotations

from pathlib import Path

from dse import validate
from dse.arch._yaml import load_yaml
from dse.arch.designs import arch_from_design, design_path, is_design, list_designs
from dse.arch.energy import builtin_energy, estimate_energy
from dse.arch.ert import apply_art, apply_ert, read_art, read_ert
from dse.arch.native import arch_from_native, is_native
from dse.arch.spec import Arch
from dse.arch.v04 import is_v04, load_v04
from dse.errors import InputError

GENERIC_STEMS = {"arch", "timeloop_input", "parsed-processed-input", "architecture", "design"}


def _default_name(path: Path) -> str:
    if path.stem in GENERIC_STEMS:
        for parent in path.parents:
            if parent.name not in ("inputs", "mapper", "model", ""):
                return parent.name.split("__")[0]
    return path.stem


def load_arch(name_or_path: str | Path, *, energy: str | Path = "auto") -> Arch:
    """Load a design: a name from ``designs/``, a v0.4 ``arch.yaml`` (``components/`` beside it),
    a native Timeloop tree YAML, or a dse design file, with energies attached.

    ``energy``: ``"auto"`` (an Accelergy ``*ERT.yaml`` (and ``*ART.yaml``) beside a native spec
    if there is exactly one, as Timeloop would use; otherwise :func:`estimate_energy`),
    ``"builtin"``, ``"none"`` (structure only), or the path of an ERT file.
    """
    with validate.parsing(name_or_path, "design"):
        arch, path = _load_structure(name_or_path)
        return _attach_energy(arch, path, energy)


def _attach_energy(arch: Arch, path: Path, energy: str | Path) -> Arch:
    if str(energy) == "none":
        arch.energy_source = "none"
        return arch
    if str(energy) == "builtin":
        return builtin_energy(arch)
    if str(energy) != "auto":
        return apply_ert(arch, read_ert(energy))
    erts = sorted(path.parent.glob("*ERT.yaml")) if path.name != "design.yaml" else []
    if len(erts) == 1:
        arch = apply_ert(arch, read_ert(erts[0]))
        arts = sorted(path.parent.glob("*ART.yaml"))
        return apply_art(arch, read_art(arts[0])) if len(arts) == 1 else arch
    return estimate_energy(arch)


def _load_structure(name_or_path: str | Path) -> tuple[Arch, Path]:
    text = validate.path_name(str(name_or_path), "design")
    named = design_path(text) if "/" not in text and not text.endswith((".yaml", ".yml")) else None
    path = named or Path(name_or_path)
    if path.is_dir():
        for candidate in ("design.yaml", "arch.yaml"):
            if (path / candidate).is_file():
                path = path / candidate
                break
    if not path.exists():
        raise InputError(f"no such design or file (shipped designs: {', '.join(list_designs())})",
                         file=text)
    if path.is_dir():
        raise InputError("expected a design file, got a directory", file=str(path))
    doc = load_yaml(path)
    if is_native(doc):
        return arch_from_native(doc, name=_default_name(path), file=str(path)), path
    if is_design(doc):
        return arch_from_design(doc, file=str(path)), path
    if is_v04(doc):
        return load_v04(path, name=_default_name(path)), path
    raise InputError("not a recognised architecture spec (expected 'architecture:' with "
                     "'subtree'/'local' or 'nodes')", file=str(path), field="architecture")
