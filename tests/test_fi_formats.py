"""Bit-exact faults in fp32 / fp16 / bf16 / int8 words, checked against struct packing."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.errors import InputError
from dse.resilience.formats import corrupt, quant_scale


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


@pytest.mark.parametrize("fmt,bit", [("fp32", 32), ("fp16", 16), ("bf16", -1), ("int8", 8)])
def test_bit_outside_the_word_is_input_error(fmt, bit):
    with pytest.raises(InputError, match="bit"):
        corrupt(torch.tensor([1.0]), fmt, [bit], scale=1.0)
