"""Jumps: every condition taken and not taken, 64- and 32-bit, K and X forms;
ja, gotol, backward jumps; exit and falling off the end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.interp import FellOffEnd, run
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Instruction, JmpOp

M64 = 2**64 - 1
M32 = 2**32 - 1


def sx(value: int, bits: int) -> int:
    value %= 2**bits
    return value - 2**bits if value >= 2 ** (bits - 1) else value


def taken(insn: Instruction, a: int, c: int = 0) -> bool:
    """Run a jump with r1 = a, r2 = c whose target is 1 slot ahead."""
    prog = b.flatten([b.lddw(1, a), b.lddw(2, c), b.mov64_imm(0, 0), insn, b.exit_insn(),
                      b.mov64_imm(0, 1), b.exit_insn()])
    return run(prog).r0 == 1


def reference(op: JmpOp, a: int, c: int, bits: int) -> bool:
    ua, uc = a % 2**bits, c % 2**bits
    sa, sc = sx(a, bits), sx(c, bits)
    return {
        JmpOp.JEQ: ua == uc, JmpOp.JNE: ua != uc, JmpOp.JSET: (ua & uc) != 0,
        JmpOp.JGT: ua > uc, JmpOp.JGE: ua >= uc, JmpOp.JLT: ua < uc, JmpOp.JLE: ua <= uc,
        JmpOp.JSGT: sa > sc, JmpOp.JSGE: sa >= sc, JmpOp.JSLT: sa < sc, JmpOp.JSLE: sa <= sc,
    }[op]


CONDITIONS = [JmpOp.JEQ, JmpOp.JNE, JmpOp.JSET, JmpOp.JGT, JmpOp.JGE, JmpOp.JLT, JmpOp.JLE,
              JmpOp.JSGT, JmpOp.JSGE, JmpOp.JSLT, JmpOp.JSLE]

# (op, dst, src/imm, taken?) worked out by hand; each op appears taken and not taken.
CASES_64 = [
    (JmpOp.JEQ, 5, 5, True), (JmpOp.JEQ, 5, 6, False),
    (JmpOp.JNE, 5, 6, True), (JmpOp.JNE, 5, 5, False),
    (JmpOp.JSET, 0b1010, 0b0010, True), (JmpOp.JSET, 0b1010, 0b0101, False),
    (JmpOp.JGT, M64, 1, True), (JmpOp.JGT, 1, 1, False),
    (JmpOp.JGE, 1, 1, True), (JmpOp.JGE, 0, 1, False),
    (JmpOp.JLT, 1, M64, True), (JmpOp.JLT, M64, 1, False),
    (JmpOp.JLE, 7, 7, True), (JmpOp.JLE, 8, 7, False),
    (JmpOp.JSGT, 1, M64, True), (JmpOp.JSGT, M64, 1, False),  # 1 > -1; -1 > 1 is false
    (JmpOp.JSGE, M64, M64, True), (JmpOp.JSGE, 2**63, 0, False),
    (JmpOp.JSLT, 2**63, 2**63 - 1, True), (JmpOp.JSLT, 0, M64, False),
    (JmpOp.JSLE, M64 - 1, M64, True), (JmpOp.JSLE, 0, M64, False),
]

CASES_32 = [
    (JmpOp.JEQ, 0xFFFF_FFFF_0000_0005, 5, True), (JmpOp.JEQ, 5, 0x1_0000_0006, False),
    (JmpOp.JNE, 0x1_0000_0000, 1, True), (JmpOp.JNE, 0x1_0000_0000, 0, False),
    (JmpOp.JSET, 0x1_0000_0001, 1, True), (JmpOp.JSET, 0x1_0000_0000, 0x1_0000_0000, False),
    (JmpOp.JGT, M32, 1, True), (JmpOp.JGT, 0x1_0000_0000, 1, False),
    (JmpOp.JGE, 0x7_0000_0002, 2, True), (JmpOp.JGE, 1, 0x1_0000_0002, False),
    (JmpOp.JLT, 0x1_0000_0000, 1, True), (JmpOp.JLT, M32, 1, False),
    (JmpOp.JLE, 0x5_0000_0003, 3, True), (JmpOp.JLE, 4, 3, False),
    (JmpOp.JSGT, 1, M32, True), (JmpOp.JSGT, 0x8000_0000, 1, False),  # w: -2**31 > 1 is false
    (JmpOp.JSGE, 0x1_FFFF_FFFF, M32, True), (JmpOp.JSGE, M32, 0, False),
    (JmpOp.JSLT, 0x8000_0000, 0, True), (JmpOp.JSLT, 0x1_0000_0000, M64, False),
    (JmpOp.JSLE, 0xFFFF_FFFE, M32, True), (JmpOp.JSLE, 0, 0xFFFF_FFFF_FFFF_FFF0, False),
]


def _imm(value: int) -> int:
    return sx(value, 32)


@pytest.mark.parametrize("op, a, c, expected", CASES_64)
def test_jump64(op: JmpOp, a: int, c: int, expected: bool) -> None:
    assert taken(b.jmp_reg(op, 1, 2, 1), a, c) is expected
    if sx(c, 64) == _imm(c):  # the value fits a sign-extended imm
        assert taken(b.jmp_imm(op, 1, _imm(c), 1), a) is expected


@pytest.mark.parametrize("op, a, c, expected", CASES_32)
def test_jump32(op: JmpOp, a: int, c: int, expected: bool) -> None:
    assert taken(b.jmp32_reg(op, 1, 2, 1), a, c) is expected
    assert taken(b.jmp32_imm(op, 1, _imm(c), 1), a) is expected


def test_cases_cover_every_condition_both_ways() -> None:
    for cases in (CASES_64, CASES_32):
        assert {(op, t) for op, _, _, t in cases} == {(op, t) for op in CONDITIONS for t in (True, False)}


def test_imm_is_sign_extended_for_64_bit_compares() -> None:
    assert taken(b.jmp_imm(JmpOp.JEQ, 1, -1, 1), M64)
    assert not taken(b.jmp_imm(JmpOp.JEQ, 1, -1, 1), M32)
    assert taken(b.jmp_imm(JmpOp.JGT, 1, -2, 1), M64)  # unsigned: 2**64-1 > 2**64-2
    assert taken(b.jmp32_imm(JmpOp.JEQ, 1, -1, 1), M32)


@pytest.mark.parametrize("op", CONDITIONS)
@settings(max_examples=40, deadline=None)
@given(a=st.integers(0, M64), c=st.integers(0, M64), imm=st.integers(-(2**31), 2**31 - 1))
def test_conditions_match_reference(op: JmpOp, a: int, c: int, imm: int) -> None:
    assert taken(b.jmp_reg(op, 1, 2, 1), a, c) is reference(op, a, c, 64)
    assert taken(b.jmp32_reg(op, 1, 2, 1), a, c) is reference(op, a, c, 32)
    assert taken(b.jmp_imm(op, 1, imm, 1), a) is reference(op, a, imm, 64)
    assert taken(b.jmp32_imm(op, 1, imm, 1), a) is reference(op, a, imm, 32)


def test_ja_and_gotol() -> None:
    prog = [b.mov64_imm(0, 1), b.ja(1), b.mov64_imm(0, 2), b.gotol(1), b.mov64_imm(0, 3), b.exit_insn()]
    result = run(prog)
    assert (result.r0, result.executed) == (1, 4)


def test_backward_loop() -> None:
    # r0 = sum(1..10) by counting r1 down
    prog = [b.mov64_imm(0, 0), b.mov64_imm(1, 10),
            b.alu64_reg(AluOp.ADD, 0, 1), b.alu64_imm(AluOp.SUB, 1, 1), b.jmp_imm(JmpOp.JNE, 1, 0, -3),
            b.exit_insn()]
    result = run(prog)
    assert result.r0 == 55
    assert result.executed == 2 + 3 * 10 + 1


def test_exit_not_last() -> None:
    prog = [b.mov64_imm(0, 7), b.ja(1), b.exit_insn(), b.mov64_imm(0, 9), b.ja(-3)]
    assert run(prog).r0 == 9


def test_falling_off_the_end_is_a_fault() -> None:
    with pytest.raises(FellOffEnd) as info:
        run([b.mov64_imm(0, 1), b.jmp_imm(JmpOp.JEQ, 0, 2, -2)])
    assert info.value.pc == 2
    assert info.value.length == 2
    assert "fell off the end" in str(info.value)
