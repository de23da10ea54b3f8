"""ALU and ALU64 through the interpreter, against values worked out by hand and
against independent reference formulas (plain integer arithmetic on
mathematical integers, written without the interpreter's helpers)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.interp import run
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Instruction

M64 = 2**64 - 1
M32 = 2**32 - 1
INT64_MIN = 2**63
INT32_MIN = 2**31

u64s = st.integers(0, M64)
s32s = st.integers(-(2**31), 2**31 - 1)
# Values that hit edges far more often than uniform sampling would.
edgy64 = st.one_of(u64s, st.sampled_from([0, 1, 2, M64, M64 - 1, INT64_MIN, INT64_MIN - 1, M32, INT32_MIN,
                                          INT32_MIN - 1, 0xFFFF_FFFF_0000_0000, 63, 64, 31, 32]))


def sx(value: int, bits: int) -> int:
    value %= 2**bits
    return value - 2**bits if value >= 2 ** (bits - 1) else value


def trunc_div(a: int, b: int) -> int:
    return int(Fraction(a, b))  # int() of a fraction rounds toward zero


def alu(insn: Instruction, a: int, c: int = 0) -> int:
    """Run ``insn`` with dst = r1 = a and src = r2 = c; return the new r1."""
    prog = b_flat(b.lddw(1, a), b.lddw(2, c), insn, b.mov64_reg(0, 1), b.exit_insn())
    return run(prog).r0


def b_flat(*items):
    return b.flatten(items)


# -- independent references -------------------------------------------------------
def ref64(op: str, a: int, b: int) -> int:
    if op == "add":
        return (a + b) % 2**64
    if op == "sub":
        return (a - b) % 2**64
    if op == "mul":
        return (a * b) % 2**64
    if op == "div":
        return 0 if b == 0 else a // b
    if op == "mod":
        return a if b == 0 else a - b * (a // b)
    if op == "sdiv":
        return 0 if b == 0 else trunc_div(sx(a, 64), sx(b, 64)) % 2**64
    if op == "smod":
        if b == 0:
            return a
        x, y = sx(a, 64), sx(b, 64)
        return (x - y * trunc_div(x, y)) % 2**64
    if op == "or":
        return a | b
    if op == "and":
        return a & b
    if op == "xor":
        return a ^ b
    if op == "lsh":
        return (a * 2 ** (b % 64)) % 2**64
    if op == "rsh":
        return a // 2 ** (b % 64)
    if op == "arsh":
        return (sx(a, 64) // 2 ** (b % 64)) % 2**64
    if op == "mov":
        return b
    raise AssertionError(op)


def ref32(op: str, a: int, b: int) -> int:
    a, b = a % 2**32, b % 2**32
    if op in ("sdiv", "smod"):
        x, y = sx(a, 32), sx(b, 32)
        if y == 0:
            return 0 if op == "sdiv" else a
        q = trunc_div(x, y)
        return (q if op == "sdiv" else x - y * q) % 2**32
    if op in ("lsh", "rsh", "arsh"):
        shift = b % 32
        if op == "lsh":
            return (a * 2**shift) % 2**32
        if op == "rsh":
            return a // 2**shift
        return (sx(a, 32) // 2**shift) % 2**32
    return ref64(op, a, b) % 2**32


OPS = {
    "add": (AluOp.ADD, 0), "sub": (AluOp.SUB, 0), "mul": (AluOp.MUL, 0), "div": (AluOp.DIV, 0),
    "sdiv": (AluOp.DIV, 1), "mod": (AluOp.MOD, 0), "smod": (AluOp.MOD, 1), "or": (AluOp.OR, 0),
    "and": (AluOp.AND, 0), "xor": (AluOp.XOR, 0), "lsh": (AluOp.LSH, 0), "rsh": (AluOp.RSH, 0),
    "arsh": (AluOp.ARSH, 0), "mov": (AluOp.MOV, 0),
}


# -- properties over random values -------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=60, deadline=None)
@given(a=edgy64, c=edgy64)
def test_alu64_reg_matches_reference(name: str, a: int, c: int) -> None:
    op, off = OPS[name]
    assert alu(b.alu64_reg(op, 1, 2, off), a, c) == ref64(name, a, c)


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=60, deadline=None)
@given(a=edgy64, imm=s32s)
def test_alu64_imm_matches_reference(name: str, a: int, imm: int) -> None:
    op, off = OPS[name]
    # K-forms of ALU64 use imm sign-extended to 64 bits.
    assert alu(b.alu64_imm(op, 1, imm, off), a) == ref64(name, a, imm % 2**64)


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=60, deadline=None)
@given(a=edgy64, c=edgy64)
def test_alu32_reg_matches_reference(name: str, a: int, c: int) -> None:
    op, off = OPS[name]
    result = alu(b.alu32_reg(op, 1, 2, off), a, c)
    assert result == ref32(name, a, c)
    assert result <= M32  # always zero-extended


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=60, deadline=None)
@given(a=edgy64, imm=s32s)
def test_alu32_imm_matches_reference(name: str, a: int, imm: int) -> None:
    op, off = OPS[name]
    assert alu(b.alu32_imm(op, 1, imm, off), a) == ref32(name, a, imm % 2**32)


@settings(max_examples=100, deadline=None)
@given(a=edgy64)
def test_neg_matches_reference(a: int) -> None:
    assert alu(b.neg64(1), a) == (2**64 - a) % 2**64
    assert alu(b.neg32(1), a) == (2**32 - a % 2**32) % 2**32


@settings(max_examples=100, deadline=None)
@given(a=edgy64, c=edgy64)
def test_movsx_matches_reference(a: int, c: int) -> None:
    for bits in (8, 16, 32):
        assert alu(b.movsx64(1, 2, bits), a, c) == sx(c, bits) % 2**64
    for bits in (8, 16):
        assert alu(b.movsx32(1, 2, bits), a, c) == sx(c, bits) % 2**32


def _reverse_bytes(value: int, nbytes: int) -> int:
    digits = f"{value % 2 ** (8 * nbytes):0{2 * nbytes}x}"
    pairs = [digits[i:i + 2] for i in range(0, len(digits), 2)]
    return int("".join(reversed(pairs)), 16)


@settings(max_examples=100, deadline=None)
@given(a=edgy64)
def test_byte_swaps_match_reference(a: int) -> None:
    for bits in (16, 32, 64):
        assert alu(b.to_le(1, bits), a) == a % 2**bits
        assert alu(b.to_be(1, bits), a) == _reverse_bytes(a, bits // 8)
        assert alu(b.bswap(1, bits), a) == _reverse_bytes(a, bits // 8)


# -- hand-worked edge cases --------------------------------------------------------
@pytest.mark.parametrize("insn, a, c, expected", [
    # 32-bit results are zero-extended
    (b.alu32_imm(AluOp.ADD, 1, 1), M64, 0, 0),
    (b.alu32_imm(AluOp.ADD, 1, 0), 0xDEAD_BEEF_0000_0001, 0, 1),
    (b.alu32_imm(AluOp.MOV, 1, -1), 0, 0, M32),
    (b.alu64_imm(AluOp.MOV, 1, -1), 0, 0, M64),
    (b.alu32_reg(AluOp.MOV, 1, 2), 5, 0x1_2345_6789, 0x2345_6789),
    (b.alu32_reg(AluOp.SUB, 1, 2), 0, 1, M32),
    (b.alu64_reg(AluOp.SUB, 1, 2), 0, 1, M64),
    (b.alu32_reg(AluOp.MUL, 1, 2), 0x8000_0000, M64, 0x8000_0000),  # INT_MIN * -1 wraps
    (b.alu64_reg(AluOp.MUL, 1, 2), INT64_MIN, M64, INT64_MIN),
    # shift amounts are masked to the width
    (b.alu64_imm(AluOp.LSH, 1, 64), 3, 0, 3),
    (b.alu64_imm(AluOp.LSH, 1, 65), 3, 0, 6),
    (b.alu64_imm(AluOp.LSH, 1, -1), 1, 0, INT64_MIN),  # -1 & 63 == 63
    (b.alu32_imm(AluOp.LSH, 1, 32), 3, 0, 3),
    (b.alu32_imm(AluOp.LSH, 1, 33), 0x1_8000_0001, 0, 2),
    (b.alu64_reg(AluOp.RSH, 1, 2), M64, 0x100 + 60, 0xF),
    (b.alu32_reg(AluOp.RSH, 1, 2), M64, 36, 0x0FFF_FFFF),
    (b.alu64_imm(AluOp.ARSH, 1, 63), INT64_MIN, 0, M64),
    (b.alu64_imm(AluOp.ARSH, 1, 4), 0xF0, 0, 0xF),
    (b.alu32_imm(AluOp.ARSH, 1, 4), 0x8000_0000, 0, 0xF800_0000),
    (b.alu32_imm(AluOp.ARSH, 1, 31), 0x0000_0001_7FFF_FFFF, 0, 0),  # bit 32 is not the sign
    # unsigned division by zero gives 0; modulo by zero keeps dst (ALU64) ...
    (b.alu64_reg(AluOp.DIV, 1, 2), 123, 0, 0),
    (b.alu32_reg(AluOp.DIV, 1, 2), 123, 0, 0),
    (b.alu32_reg(AluOp.DIV, 1, 2), 123, 0x1_0000_0000, 0),  # only the low half divides
    (b.alu64_reg(AluOp.MOD, 1, 2), 0xAAAA_BBBB_CCCC_DDDD, 0, 0xAAAA_BBBB_CCCC_DDDD),
    # ... and for ALU the upper 32 bits are cleared (kernel: dst = (u32)dst)
    (b.alu32_reg(AluOp.MOD, 1, 2), 0xAAAA_BBBB_CCCC_DDDD, 0, 0xCCCC_DDDD),
    (b.alu32_reg(AluOp.MOD, 1, 2, off=1), 0xAAAA_BBBB_CCCC_DDDD, 0, 0xCCCC_DDDD),
    (b.alu64_reg(AluOp.MOD, 1, 2, off=1), M64 - 6, 0, M64 - 6),
    (b.alu64_reg(AluOp.DIV, 1, 2, off=1), M64 - 6, 0, 0),
    (b.alu32_imm(AluOp.DIV, 1, 0, off=1), 77, 0, 0),
    # unsigned division with a "negative" immediate
    (b.alu64_imm(AluOp.DIV, 1, -1), M64, 0, 1),
    (b.alu32_imm(AluOp.DIV, 1, -1), M32, 0, 1),
    (b.alu32_imm(AluOp.DIV, 1, -2), M64, 0, 1),
    # signed division: truncation toward zero, INT_MIN / -1
    (b.alu64_imm(AluOp.DIV, 1, 2, off=1), M64 - 6, 0, M64 - 2),  # -7 / 2 == -3
    (b.alu64_imm(AluOp.MOD, 1, 2, off=1), M64 - 6, 0, M64),  # -7 % 2 == -1
    (b.alu64_imm(AluOp.MOD, 1, -2, off=1), 7, 0, 1),  # 7 % -2 == 1
    (b.alu64_imm(AluOp.DIV, 1, -1, off=1), INT64_MIN, 0, INT64_MIN),
    (b.alu64_imm(AluOp.MOD, 1, -1, off=1), INT64_MIN, 0, 0),
    (b.alu32_imm(AluOp.DIV, 1, -1, off=1), INT32_MIN, 0, INT32_MIN),
    (b.alu32_imm(AluOp.MOD, 1, -1, off=1), INT32_MIN, 0, 0),
    (b.alu32_imm(AluOp.DIV, 1, 3, off=1), 0xFFFF_FFF7, 0, 0xFFFF_FFFD),  # -9 / 3 == -3
    (b.alu32_imm(AluOp.MOD, 1, 5, off=1), 0xFFFF_FFF9, 0, 0xFFFF_FFFE),  # -7 % 5 == -2
    # negation
    (b.neg64(1), 1, 0, M64),
    (b.neg64(1), INT64_MIN, 0, INT64_MIN),
    (b.neg32(1), 0x1_0000_0001, 0, M32),
    (b.neg32(1), INT32_MIN, 0, INT32_MIN),
    # movsx
    (b.movsx64(1, 2, 8), 0, 0x80, M64 - 0x7F),
    (b.movsx64(1, 2, 8), 0, 0x17F, 0x7F),
    (b.movsx64(1, 2, 16), 0, 0xFFFF_8000, 0xFFFF_FFFF_FFFF_8000),
    (b.movsx64(1, 2, 32), 0, 0x8000_0000, 0xFFFF_FFFF_8000_0000),
    (b.movsx64(1, 2, 32), 0, 0xFFFF_FFFF_7FFF_FFFF, 0x7FFF_FFFF),
    (b.movsx32(1, 2, 8), M64, 0xFF, M32),  # sign-extends to 32 bits, then zero-extends
    (b.movsx32(1, 2, 16), 0, 0x8001, 0xFFFF_8001),
    # byte order
    (b.to_be(1, 16), 0, 0, 0),
    (b.to_be(1, 16), 0x1122_3344_5566_7788, 0, 0x8877),
    (b.to_be(1, 32), 0x1122_3344_5566_7788, 0, 0x8877_6655),
    (b.to_be(1, 64), 0x1122_3344_5566_7788, 0, 0x8877_6655_4433_2211),
    (b.to_le(1, 16), 0x1122_3344_5566_7788, 0, 0x7788),
    (b.to_le(1, 32), 0x1122_3344_5566_7788, 0, 0x5566_7788),
    (b.to_le(1, 64), 0x1122_3344_5566_7788, 0, 0x1122_3344_5566_7788),
    (b.bswap(1, 16), 0x1122_3344_5566_7788, 0, 0x8877),
    (b.bswap(1, 32), 0x1122_3344_5566_7788, 0, 0x8877_6655),
    (b.bswap(1, 64), 0x0102_0304_0506_0708, 0, 0x0807_0605_0403_0201),
])
def test_edge_cases(insn: Instruction, a: int, c: int, expected: int) -> None:
    assert alu(insn, a, c) == expected


def test_alu_on_same_register() -> None:
    # dst == src: the operand is read before the result is written.
    assert alu(b.alu64_reg(AluOp.ADD, 1, 1), 21) == 42
    assert alu(b.alu64_reg(AluOp.SUB, 1, 1), 21) == 0
    assert alu(b.alu64_reg(AluOp.MOD, 1, 1), 0) == 0


def test_executed_counts_lddw_once() -> None:
    prog = b_flat(b.lddw(0, 5), b.exit_insn())
    result = run(prog)
    assert (result.r0, result.executed) == (5, 2)
