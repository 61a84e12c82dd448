"""Bit-exact faults in fp32 / fp16 / bf16 / intN words, checked against struct packing and
hand-computed fixed-point codes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.errors import InputError
from dse.resilience.fault import Fault
from dse.resilience.fault import corrupt as corrupt_fault
from dse.resilience.formats import decode, encode, fixed_scale, number_format, word_delta


def corrupt(values, fmt, bits, kind="bitflip", scale=None):
    """``values`` after a ``kind`` fault on ``bits`` of their ``fmt`` words."""
    return corrupt_fault(values, Fault.of("x", (0,), bits, kind=kind, fmt=fmt), scale)


def quant_scale(values, per_channel=False, axis=0):
    return fixed_scale(values, 8, per_channel, axis)


def _flip32(x: float, bit: int) -> float:
    (word,) = struct.unpack("<I", struct.pack("<f", x))
    return struct.unpack("<f", struct.pack("<I", word ^ (1 << bit)))[0]


def _flip16(x: float, bit: int) -> float:
    (word,) = struct.unpack("<H", struct.pack("<e", x))
    return struct.unpack("<e", struct.pack("<H", word ^ (1 << bit)))[0]


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e4, 1e4, width=32), st.integers(0, 31))
def test_fp32_flip_matches_struct(x, bit):
    got = corrupt(torch.tensor([x]), "fp32", [bit])[0].item()
    want = _flip32(x, bit)
    assert got == want or (np.isnan(got) and np.isnan(want))


@settings(max_examples=200, deadline=None)
@given(st.floats(-6e4, 6e4, width=16), st.integers(0, 15))
def test_fp16_flip_matches_struct(x, bit):
    got = corrupt(torch.tensor([x]), "fp16", [bit])[0].item()
    want = _flip16(x, bit)
    assert got == want or (np.isnan(got) and np.isnan(want))


def test_bf16_keeps_the_top_half_of_the_fp32_word():
    # 1.0 = 0x3F80 in bf16: bit 7 is the exponent's lowest bit, bit 15 the sign
    assert corrupt(torch.tensor([1.0]), "bf16", [7]).item() == 0.5
    assert corrupt(torch.tensor([1.0]), "bf16", [15]).item() == -1.0
    assert corrupt(torch.tensor([1.0]), "bf16", [6]).item() == 1.5


def test_int8_is_twos_complement_of_the_symmetric_quantization():
    w = torch.tensor([1.27, -0.5, 0.0])
    s = quant_scale(w)
    assert s.item() == pytest.approx(0.01)
    q = corrupt(w, "int8", [7], scale=s)  # 127 -> -1, -50 -> 78, 0 -> -128
    assert q.tolist() == pytest.approx([-0.01, 0.78, -1.28])
    per_ch = quant_scale(torch.tensor([[1.0, 2.0], [0.5, 0.1]]), per_channel=True, axis=0)
    assert per_ch.flatten().tolist() == pytest.approx([2 / 127, 0.5 / 127])


def test_stuck_at_the_stored_value_changes_nothing_bitwise():
    w = torch.tensor([0.1234567, -3.0, 1e-20])
    words = w.view(torch.int32)
    for bit in (0, 5, 22, 30, 31):
        set_bits = ((words >> bit) & 1).bool()
        s0, s1 = corrupt(w, "fp32", [bit], "stuck0"), corrupt(w, "fp32", [bit], "stuck1")
        assert torch.equal(s1.view(torch.int32)[set_bits], words[set_bits])
        assert torch.equal(s0.view(torch.int32)[~set_bits], words[~set_bits])
    # fp16 stuck-at that leaves the fp16 word alone keeps the fp32 value (no rounding change)
    x = torch.tensor([0.1])
    assert torch.equal(corrupt(x, "fp16", [15], "stuck0"), x)


def test_multi_bit_flip_flips_every_bit():
    assert corrupt(torch.tensor([1.0]), "fp32", [31, 23]).item() == _flip32(_flip32(1.0, 31), 23)


@pytest.mark.parametrize("fmt,bit", [("fp32", 32), ("fp16", 16), ("bf16", -1), ("int8", 8),
                                     ("int16", 16)])
def test_bit_outside_the_word_is_input_error(fmt, bit):
    with pytest.raises(InputError, match="bit"):
        corrupt(torch.tensor([1.0]), fmt, [bit], scale=1.0)


def test_int8_scale_rule_and_codes_by_hand():
    # scale = max|x| / (2^7 - 1) = 2.54 / 127 = 0.02; codes round half to even
    x = torch.tensor([2.54, -1.0, 0.01, 0.03, -2.54], dtype=torch.float64)
    s = fixed_scale(x, 8)
    assert s.item() == pytest.approx(0.02)
    # 127, -50, round(0.5) = 0, round(1.5) = 2, -127 -> two's complement words
    assert encode(x, "int8", s).tolist() == [127, 256 - 50, 0, 2, 256 - 127]
    assert decode(encode(x, "int8", s), "int8", s, torch.float64).tolist() == pytest.approx(
        [2.54, -1.0, 0.0, 0.04, -2.54])
    # flip bit 6 of 127 (0b0111_1111) -> 63; of -50 (0b1100_1110) -> -114; sign bit of 0 -> -128
    assert word_delta(x[:2], "int8", lambda w: w ^ 64, s).tolist() == pytest.approx(
        [-64 * 0.02, -64 * 0.02])
    assert word_delta(x[2:3], "int8", lambda w: w ^ 128, s).tolist() == pytest.approx(
        [-128 * 0.02])


def test_int16_scale_rule_and_codes_by_hand():
    # scale = 3.2767 / (2^15 - 1) = 1e-4: 1.0 -> 10000 = 0x2710, -0.5 -> -5000 = 0xEC78
    x = torch.tensor([3.2767, 1.0, -0.5], dtype=torch.float64)
    s = fixed_scale(x, 16)
    assert s.item() == pytest.approx(1e-4)
    words = encode(x, "int16", s)
    assert words.tolist() == [32767, 0x2710, 0xEC78]
    # bit 15 (sign) flips 10000 -> 10000 - 32768; bit 13 is set in 10000 (0b10_0111_0001_0000)
    assert corrupt(x.float(), "int16", [15], scale=s.float())[1].item() == pytest.approx(
        (10000 - 32768) * 1e-4, rel=1e-6)
    assert word_delta(x[1:2], "int16", lambda w: w ^ (1 << 13), s).item() == pytest.approx(
        -8192 * 1e-4)
    # stuck-at a bit the word already holds leaves the value bit-identical
    assert torch.equal(corrupt(x.float(), "int16", [13], "stuck1", s.float())[1], x.float()[1])


def test_zero_tensor_gets_scale_one_and_per_channel_scales_follow_the_rule():
    assert fixed_scale(torch.zeros(3), 8).item() == 1.0
    w = torch.tensor([[1.0, -2.0], [0.5, 0.1]])
    assert fixed_scale(w, 16, per_channel=True, axis=0).flatten().tolist() == pytest.approx(
        [2 / 32767, 0.5 / 32767])


@pytest.mark.parametrize("name", ["int1", "int33", "fp8", "int8:row", "fp16:channel"])
def test_unknown_formats_are_input_errors(name):
    with pytest.raises(InputError, match="format|scale|channel"):
        number_format(name)
