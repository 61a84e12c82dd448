"""The protection codes decode fault patterns as a literal code would."""

from __future__ import annotations

import itertools

import pytest

from dse.arch.protection import SCHEMES
from dse.resilience.mapped.ecc import code_bits, decode, escape_fraction


def _encode(k: int, data: int) -> int:
    """Independent extended-Hamming encoder: data at non-power-of-two positions, check bit 2^j
    the parity of the positions with bit j set, overall parity at position 0."""
    pos, word = 1, 0
    placed = 0
    while placed < k:
        if pos & (pos - 1):
            word |= (data >> placed & 1) << pos
            placed += 1
        pos += 1
    n = pos - 1
    j = 1
    while j <= n:
        parity = sum(word >> p & 1 for p in range(1, n + 1) if p & j) & 1
        word |= parity << j
        j <<= 1
    return word | (bin(word).count("1") & 1)


def _data(k: int, word: int) -> int:
    positions = [p for p in range(1, 2 * k + 8) if p & (p - 1)][:k]
    return sum((word >> p & 1) << i for i, p in enumerate(positions))


@pytest.mark.parametrize("k", [8, 16])
def test_secded_decoder_equals_nearest_codeword_decoding(k: int) -> None:
    n = code_bits(SCHEMES["secded"], k)
    codewords = {_encode(k, d): d for d in range(2 ** k)} if k == 8 else None
    data = 0b10110010 if k == 8 else 0xBEEF
    sent = _encode(k, data)
    assert _data(k, sent) == data
    for m in (1, 2, 3):
        for flips in itertools.combinations(range(n), m):
            got = decode("secded", k, flips)
            received = sent
            for b in flips:
                received ^= 1 << b
            if m == 1:
                assert got.status == "corrected"
            elif m == 2:
                assert got.status == "detected"
            if codewords is not None:  # brute force: codewords within distance 1 of `received`
                near = [c for c in codewords if bin(c ^ received).count("1") <= 1]
                if not near:
                    assert got.status == "detected"
                else:
                    assert len(near) == 1
                    assert got.data_mask == codewords[near[0]] ^ data
                    assert got.status == ("corrected" if codewords[near[0]] == data else "escaped")


def test_parity_detects_odd_and_misses_even_errors() -> None:
    assert decode("parity", 8, (3,)).status == "detected"
    assert decode("parity", 8, (8,)).status == "detected"  # the parity bit itself
    esc = decode("parity", 8, (1, 4))
    assert esc.status == "escaped" and esc.data_mask == 0b10010


def test_tmr_outvotes_one_copy_and_not_two() -> None:
    assert decode("tmr", 8, (2, 5, 7)).status == "corrected"  # all in copy 0
    esc = decode("tmr", 8, (2, 8 + 2))
    assert esc.status == "escaped" and esc.data_mask == 0b100


def test_escape_fractions_of_secded_by_error_weight() -> None:
    assert escape_fraction("secded", 16, 1) == {"corrected": 1.0, "detected": 0.0, "escaped": 0.0}
    assert escape_fraction("secded", 16, 2)["detected"] == 1.0
    three = escape_fraction("secded", 16, 3)
    assert three["escaped"] > 0.5 and sum(three.values()) == pytest.approx(1.0)
    assert escape_fraction("none", 8, 1)["escaped"] == 1.0


@pytest.mark.parametrize("k", [8, 16, 64])
def test_a_single_flip_in_a_check_bit_is_never_an_sdc(k: int) -> None:
    """Why exposure counts data bits only (docs/resilience.md, "Check bits"): every physical bit
    that holds no data, flipped alone, is corrected by SEC-DED, outvoted by TMR, flagged (a DUE,
    never an SDC) by parity."""
    data = set(range(k))
    secded_data = {p for p in range(1, 2 * k + 8) if p & (p - 1)}
    for b in range(code_bits(SCHEMES["secded"], k)):
        if b not in secded_data:
            assert decode("secded", k, (b,)).status == "corrected"
    assert decode("parity", k, (k,)).status == "detected"  # the parity bit itself
    for b in range(code_bits(SCHEMES["tmr"], k)):
        if b not in data:  # copies 1 and 2
            assert decode("tmr", k, (b,)).status == "corrected"
