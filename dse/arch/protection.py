"""Protection what-ifs for storage levels: parity, SEC-DED ECC and TMR.

A protected level stores extra check bits (or extra copies) beside every code word, so each access
moves a wider physical word and the array is larger. dse keeps the level's *logical* geometry (word
bits, width, depth: what the mapping and the access counts see) and changes only its energy per
action and its area:

    E_protected(action) = E_design(action) x copies x E_builtin(physical width) / E_builtin(width)
    area_protected      = area_design      x copies x A_builtin(physical width) / A_builtin(width)

where ``E_builtin`` is dse's builtin estimator (the same tables as for any design) evaluated on the
level with its width widened to the physical width, and ``copies`` is 3 for TMR, else 1. The
ratio form keeps an Accelergy or ERT-file energy as the base when the design came with one. The
encoder, decoder and voter logic are not costed (they are small next to the arrays; stated here
so nobody reads the figure as including them).

Physical width per access = code words per access x (data bits + check bits):

* ``parity``: one check bit per word; detects any odd number of flipped bits (a detected,
  uncorrected error: DUE).
* ``secded``: extended Hamming code per word, r + 1 check bits with 2^r >= k + r + 1 for k data
  bits (8 -> 5, 16 -> 6, 32 -> 7, 64 -> 8); corrects one flipped bit, detects two.
* ``secded_block``: the same code over a whole access (``width`` data bits), so fewer check bits
  per word but one code word spans ``block_size`` words.
* ``tmr``: three copies and a bitwise majority vote; allowed on registers only (levels of at most
  ``TMR_MAX_BITS`` bits per instance), where a triple array is a realistic choice.

DRAM and timeloopfe's dummy spatial levels cannot be protected here (DRAM is excluded from fault
sites by default; dummy levels store nothing).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from dse.arch.energy import storage_energy
from dse.arch.spec import Arch, StorageLevel
from dse.errors import InputError

#: Largest level (bits per instance) that may take TMR: a register file, not an SRAM macro.
TMR_MAX_BITS = 4096


@dataclass(frozen=True)
class Scheme:
    """One protection option: how many data bits one code word covers and what it adds."""

    name: str
    per_block: bool  # one code word per access (True) or per word (False)
    copies: int = 1
    what: str = ""

    def check_bits(self, data_bits: int) -> int:
        """Check bits one code word of ``data_bits`` data bits carries."""
        if self.name == "none" or self.name == "tmr":
            return 0
        if self.name == "parity":
            return 1
        return secded_check_bits(data_bits)


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("none", False, what="unprotected"),
    Scheme("parity", False, what="1 parity bit per word: detects odd-weight errors (DUE)"),
    Scheme("secded", False, what="extended Hamming per word: corrects 1 bit, detects 2"),
    Scheme("secded_block", True, what="extended Hamming per access: corrects 1 bit, detects 2"),
    Scheme("tmr", False, copies=3, what="three copies, bitwise majority vote (registers only)"),
)}


def secded_check_bits(data_bits: int) -> int:
    """Check bits of an extended Hamming (SEC-DED) code over ``data_bits`` data bits."""
    r = 1
    while 2 ** r < data_bits + r + 1:
        r += 1
    return r + 1


def code_data_bits(lvl: StorageLevel, scheme: Scheme) -> int:
    """Data bits one code word of ``scheme`` covers at level ``lvl``."""
    return lvl.block_size * lvl.word_bits if scheme.per_block else lvl.word_bits


def physical_width(lvl: StorageLevel, scheme: Scheme) -> int:
    """Bits one access moves, check bits included (copies not included)."""
    k = code_data_bits(lvl, scheme)
    words_per_code = lvl.block_size if scheme.per_block else 1
    codes = lvl.block_size // words_per_code
    return codes * (k + scheme.check_bits(k))


def scheme_named(name: str, field: str) -> Scheme:
    """The scheme called ``name`` (one-line error naming ``field`` otherwise)."""
    try:
        return SCHEMES[str(name)]
    except KeyError:
        raise InputError(f"unknown protection {name!r} (known: {', '.join(SCHEMES)})",
                         field=field) from None


def _check_allowed(lvl: StorageLevel, scheme: Scheme, field: str) -> None:
    if scheme.name == "none":
        return
    if lvl.dummy or lvl.component_class in ("dummy_storage", "DRAM") or lvl.depth is None:
        raise InputError(f"level {lvl.name!r} ({lvl.component_class}) cannot take protection "
                         f"{scheme.name!r}: only on-chip buffers can", field=field)
    if scheme.name == "tmr":
        bits = lvl.depth * lvl.width
        if bits > TMR_MAX_BITS:
            raise InputError(f"tmr is for registers of at most {TMR_MAX_BITS} bits; level "
                             f"{lvl.name!r} holds {bits} bits (use secded)", field=field)


def _ratio(lvl: StorageLevel, wide: StorageLevel, tech: str | None) -> dict[str, float]:
    """Builtin estimate of the widened level over the logical one, per action and area."""
    base = storage_energy(lvl, tech)
    new = storage_energy(wide, tech)
    return {a: (new[a] / base[a] if base[a] else 1.0) for a in base}


def protect(arch: Arch, plan: dict[str, str]) -> Arch:
    """A copy of ``arch`` with ``plan`` ({level name: scheme name}) applied (module docstring)."""
    out = copy.deepcopy(arch)
    for name, scheme_name in plan.items():
        field = f"protect.{name}"
        try:
            lvl = out.level(name)
        except KeyError:
            raise InputError(f"no level {name!r} (levels: {[x.name for x in out.levels]})",
                             field=field) from None
        scheme = scheme_named(scheme_name, field)
        _check_allowed(lvl, scheme, field)
        if scheme.name == "none":
            continue
        wide = copy.deepcopy(lvl)
        wide.width = physical_width(lvl, scheme)
        ratio = _ratio(lvl, wide, lvl.technology or out.technology)
        lvl.energy = {a: round(v * scheme.copies * ratio.get(a, 1.0), 6)
                      for a, v in lvl.energy.items()}
        if lvl.area_um2 is not None:
            lvl.area_um2 = round(lvl.area_um2 * scheme.copies * ratio["area"], 6)
        lvl.attributes["protection"] = scheme.name
    return out


def level_protection(lvl: StorageLevel) -> Scheme:
    """The scheme a level carries (``none`` when unprotected)."""
    return SCHEMES[str(lvl.attributes.get("protection", "none"))]


__all__ = ["SCHEMES", "Scheme", "code_data_bits", "level_protection", "physical_width", "protect",
           "scheme_named", "secded_check_bits"]
