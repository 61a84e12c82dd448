"""What a protected storage level does to the bits a fault flips: a literal code, not a table.

Each scheme of ``dse.arch.protection`` is implemented bit by bit, so the outcome of a fault in a
protected word is decoded, not assumed:

* ``secded`` / ``secded_block``: an extended Hamming code (check bits at the power-of-two
  positions 1, 2, 4, ... of the code word, an overall parity bit at position 0). The decoder
  corrects a single flipped bit (syndrome = its position), flags two (syndrome != 0 with even
  overall parity) and a syndrome that points past the (shortened) code word, and *miscorrects*
  or misses some heavier patterns: those escape.
* ``parity``: flags every odd-weight error; even-weight errors escape.
* ``tmr``: three copies, bitwise majority; a bit escapes when two copies flip it.

``decode`` returns the status (``corrected``, ``detected`` = a DUE, ``escaped`` or ``clean`` =
nothing flipped) and the XOR mask over the data bits the reader receives, so the rest of a
campaign applies that mask to the stored word exactly as it would apply an unprotected flip.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from dse.arch.protection import SCHEMES, Scheme, level_protection
from dse.arch.spec import Arch

#: Patterns enumerated exactly up to this count; above it ``escape_fraction`` samples.
ENUMERATE_LIMIT = 200_000


@dataclass(frozen=True)
class Decoded:
    """What the reader of a protected word sees after ``flips`` hit the stored code word."""

    status: str  # "clean" | "corrected" | "detected" | "escaped"
    data_mask: int  # XOR over the data bits delivered (0 unless escaped)


def code_bits(scheme: Scheme, data_bits: int) -> int:
    """Physical bits one code word of ``data_bits`` data bits occupies (all copies)."""
    return scheme.copies * (data_bits + scheme.check_bits(data_bits))


def _hamming_layout(k: int) -> tuple[list[int], int]:
    """Code-word positions (1-based, non powers of two) of the k data bits, and n = k + r."""
    r = SCHEMES["secded"].check_bits(k) - 1
    n = k + r
    data = [p for p in range(1, n + 1) if p & (p - 1)]
    return data[:k], n


def _decode_secded(k: int, flips: tuple[int, ...]) -> Decoded:
    """Physical bit b in [0, k + r + 1): b = 0 is the overall parity, b >= 1 is position b."""
    data_pos, n = _hamming_layout(k)
    err = 0  # error pattern over positions 0..n as a bit set
    for b in flips:
        err ^= 1 << b
    if not err:
        return Decoded("clean", 0)
    syndrome = 0
    for p in range(1, err.bit_length()):
        if err >> p & 1:
            syndrome ^= p
    overall = bin(err).count("1") & 1
    if overall and syndrome > n:  # points past the code word: uncorrectable, flagged
        return Decoded("detected", 0)
    if overall:  # the decoder believes one bit flipped, at `syndrome` (0: the parity bit)
        err ^= 1 << syndrome
    elif syndrome:
        return Decoded("detected", 0)
    mask = sum(1 << i for i, p in enumerate(data_pos) if err >> p & 1)
    return Decoded("corrected" if mask == 0 else "escaped", mask)


def data_bit_position(scheme: Scheme | str, data_bits: int, bit: int) -> int:
    """Physical bit (in :func:`decode`'s numbering) that holds data bit ``bit`` of a code word
    (copy 0 for TMR)."""
    s = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    if s.name in ("secded", "secded_block"):
        return _hamming_layout(data_bits)[0][bit]
    return bit


def decode(scheme: Scheme | str, data_bits: int, flips: tuple[int, ...]) -> Decoded:
    """Outcome of flipping the physical bits ``flips`` (0 <= b < code_bits) of one code word.

    Bit numbering: ``none`` and ``parity`` put data bit i at i (parity at ``data_bits``);
    ``secded*`` use the code word's positions (see ``_decode_secded``); ``tmr`` puts bit i of
    copy c at ``c * data_bits + i``."""
    s = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    k = data_bits
    flips = tuple(sorted(set(flips)))
    if not flips:
        return Decoded("clean", 0)
    if s.name in ("secded", "secded_block"):
        return _decode_secded(k, flips)
    if s.name == "tmr":
        votes = [0] * k
        for b in flips:
            votes[b % k] += 1
        mask = sum(1 << i for i, v in enumerate(votes) if v >= 2)
        return Decoded("escaped" if mask else "corrected", mask)
    mask = sum(1 << b for b in flips if b < k)
    if s.name == "parity" and len(flips) % 2:
        return Decoded("detected", 0)
    return Decoded("escaped" if mask else "corrected", mask)


def escape_fraction(scheme: Scheme | str, data_bits: int, m: int, *, samples: int = 20_000,
                    seed: int = 0) -> dict[str, float]:
    """Shares of the m-bit error patterns (uniform over the code word's physical bits) that the
    scheme corrects, detects or lets escape: exact enumeration when there are at most
    ``ENUMERATE_LIMIT`` patterns, else ``samples`` seeded draws."""
    s = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    n = code_bits(s, data_bits)
    if not 1 <= m <= n:
        raise ValueError(f"m must be in [1, {n}], got {m}")
    if math.comb(n, m) <= ENUMERATE_LIMIT:
        patterns = itertools.combinations(range(n), m)
        total = math.comb(n, m)
    else:
        rng = np.random.default_rng(seed)
        patterns = (tuple(rng.choice(n, m, replace=False)) for _ in range(samples))
        total = samples
    counts = {"corrected": 0, "detected": 0, "escaped": 0}
    for flips in patterns:
        counts[decode(s, data_bits, flips).status] += 1
    return {key: v / total for key, v in counts.items()}


def screen(faults: list, sites: list, arch: Arch) -> tuple[list, list[str]]:
    """Pass a campaign's drawn faults through the protection of the levels they strike.

    A fault whose word the level's code corrects (or, with parity, flags) never reaches the
    layer: it is returned with zero output deltas, and counted as ``corrected`` or ``detected``
    (a DUE); an escaping fault keeps its deltas. Returns the faults and each one's status
    (``unprotected``, ``corrected``, ``detected`` or ``escaped``). Faults flip data bit
    ``fault.bit`` of a word of ``site.bits`` bits (single-bit faults: SEC-DED and TMR correct
    them all, parity flags them all; the multi-bit escape shares are :func:`escape_fraction`)."""
    out, status = [], []
    for f in faults:
        site = sites[f.site]
        scheme = (level_protection(arch.levels[site.level]) if site.level < len(arch.levels)
                  else SCHEMES["none"])
        if scheme.name == "none":
            status.append("unprotected")
            out.append(f)
            continue
        k = site.bits * (arch.levels[site.level].block_size if scheme.per_block else 1)
        got = decode(scheme, k, (data_bit_position(scheme, k, f.bit),))
        status.append(got.status)
        if got.status == "escaped":
            out.append(f)
        else:
            out.append(dataclasses.replace(f, word_delta=np.zeros_like(f.word_delta),
                                           deltas=np.zeros_like(f.deltas)))
    return out, status


def tally(status: list[str]) -> dict[str, int]:
    """Counts of :func:`screen`'s statuses (every status present, zeros included)."""
    return {k: status.count(k) for k in ("unprotected", "corrected", "detected", "escaped")}


__all__ = ["Decoded", "code_bits", "data_bit_position", "decode", "escape_fraction", "screen",
           "tally"]
