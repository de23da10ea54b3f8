"""The instruction slot codec and the ISA validity rules (RFC 9669)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebpfvm import DecodeError, Program
from ebpfvm.isa import FORMS, Instruction, lddw_pair, lddw_value

# Every opcode byte listed in RFC 9669's opcode table (Appendix A), written out
# by hand so that the generated FORMS table is checked against the document.
RFC9669_OPCODES = {
    # ALU64, K then X sources
    0x07, 0x17, 0x27, 0x37, 0x47, 0x57, 0x67, 0x77, 0x87, 0x97, 0xA7, 0xB7, 0xC7, 0xD7,
    0x0F, 0x1F, 0x2F, 0x3F, 0x4F, 0x5F, 0x6F, 0x7F, 0x9F, 0xAF, 0xBF, 0xCF,
    # ALU (32-bit), including le (0xd4) and be (0xdc)
    0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xA4, 0xB4, 0xC4, 0xD4,
    0x0C, 0x1C, 0x2C, 0x3C, 0x4C, 0x5C, 0x6C, 0x7C, 0x9C, 0xAC, 0xBC, 0xCC, 0xDC,
    # JMP: ja, conditionals K and X, call, callx, exit
    0x05, 0x15, 0x25, 0x35, 0x45, 0x55, 0x65, 0x75, 0xA5, 0xB5, 0xC5, 0xD5,
    0x1D, 0x2D, 0x3D, 0x4D, 0x5D, 0x6D, 0x7D, 0xAD, 0xBD, 0xCD, 0xDD, 0x85, 0x8D, 0x95,
    # JMP32: gotol, conditionals K and X
    0x06, 0x16, 0x26, 0x36, 0x46, 0x56, 0x66, 0x76, 0xA6, 0xB6, 0xC6, 0xD6,
    0x1E, 0x2E, 0x3E, 0x4E, 0x5E, 0x6E, 0x7E, 0xAE, 0xBE, 0xCE, 0xDE,
    # LD: lddw, legacy abs and ind packet loads
    0x18, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50,
    # LDX, LDX sign-extending, ST, STX, atomics
    0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91,
    0x62, 0x6A, 0x72, 0x7A, 0x63, 0x6B, 0x73, 0x7B, 0xC3, 0xDB,
}

EXIT = "9500000000000000"


def test_forms_match_the_rfc_opcode_table():
    assert set(FORMS) == RFC9669_OPCODES


@given(st.binary(min_size=8, max_size=8))
def test_slot_decode_encode_round_trip(slot):
    assert Instruction.decode(slot).encode() == slot


@given(opcode=st.integers(0, 255), dst=st.integers(0, 15), src=st.integers(0, 15),
       off=st.integers(-0x8000, 0x7FFF), imm=st.integers(-0x8000_0000, 0x7FFF_FFFF))
def test_slot_fields_land_where_the_rfc_draws_them(opcode, dst, src, off, imm):
    raw = Instruction(opcode, dst, src, off, imm).encode()
    assert raw[0] == opcode
    assert raw[1] == dst | (src << 4)
    assert struct.unpack("<h", raw[2:4])[0] == off
    assert struct.unpack("<i", raw[4:8])[0] == imm


@pytest.mark.parametrize("field, value", [("opcode", 256), ("dst", 16), ("off", 0x8000), ("imm", 1 << 31)])
def test_instruction_rejects_values_that_cannot_be_encoded(field, value):
    with pytest.raises(ValueError):
        Instruction(**{"opcode": 0x07, field: value})


@given(st.integers(0, (1 << 64) - 1))
def test_lddw_pair_carries_64_bits(value):
    head, tail = lddw_pair(3, value)
    assert lddw_value(head, tail) == value
    program = Program.from_bytes(head.encode() + tail.encode() + bytes.fromhex(EXIT))
    assert program.to_bytes()[:16] == head.encode() + tail.encode()


def _issues(hex_program: str) -> list[tuple[int, str]]:
    with pytest.raises(DecodeError) as info:
        Program.from_bytes(bytes.fromhex(hex_program), source="prog.bin")
    return [(issue.index, issue.message) for issue in info.value.issues]


@pytest.mark.parametrize("hex_program, index, fragment", [
    ("0700010001000000" + EXIT, 0, "off=1"),          # add imm with an offset
    ("0710000001000000" + EXIT, 0, "src=1"),          # add imm with a source register
    ("0f00000001000000" + EXIT, 0, "imm=1"),          # add reg with an immediate
    ("9501000000000000", 0, "dst=1"),                 # exit with a destination register
    ("8500010000000000", 0, "off=1"),                 # call with an offset
    ("b70b000000000000" + EXIT, 0, "r11"),            # destination register out of range
    ("bf0c000000000000" + EXIT, 0, "r12"),            # ... and source register
    ("ff00000000000000" + EXIT, 0, "unknown opcode 0xff"),
    ("8f00000000000000" + EXIT, 0, "unknown opcode 0x8f"),  # neg has no register form
    ("d700000018000000" + EXIT, 0, "imm=24"),         # bswap of 24 bits
    ("bf10070000000000" + EXIT, 0, "off=7"),          # movsx of 7 bits
    ("0500050000000000" + EXIT, 0, "outside the program"),
    ("05000100000000001800000000000000000000000000000095000000000000000000000000000000", 0, "middle of an lddw"),
    ("1800000000000000", 0, "truncated"),
    ("1800000000000000" + EXIT, 1, "second half of lddw"),
    ("8510000003000000" + EXIT, 0, "outside the program"),  # local call past the end
])
def test_malformed_programs_name_the_instruction(hex_program, index, fragment):
    issues = _issues(hex_program)
    assert any(i == index and fragment in message for i, message in issues), issues


def test_every_issue_is_reported_not_just_the_first():
    issues = _issues("ff00000000000000" + "0710000001000000" + EXIT)
    assert [i for i, _ in issues] == [0, 1]


def test_truncated_bytes_name_the_partial_slot():
    with pytest.raises(DecodeError) as info:
        Program.from_bytes(bytes.fromhex(EXIT + "b700"), source="x.bin")
    assert info.value.issues[0].index == 1
    assert str(info.value).startswith("x.bin: insn 1: truncated")


def test_non_strict_decoding_keeps_bad_programs_for_the_verifier():
    program = Program.from_bytes(bytes.fromhex("ff00000000000000" + EXIT), strict=False)
    assert len(program) == 2
    assert program.issues()[0].index == 0


def test_subprogram_entries_include_call_targets_and_callbacks():
    call = Instruction(0x85, 0, 1, 0, 1).encode()      # call local +1 -> 2
    func_addr = lddw_pair(2, 1, src=4)                  # lddw r2, func: target = 2 + 1 + imm = 4 (as the kernel counts)
    program = Program.from_bytes(call + bytes.fromhex(EXIT) + func_addr[0].encode() + func_addr[1].encode()
                                 + bytes.fromhex(EXIT) + bytes.fromhex(EXIT) + bytes.fromhex(EXIT))
    assert program.subprogram_entries() == (0, 2, 4)
