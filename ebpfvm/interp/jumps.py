"""JMP and JMP32: conditions, ``ja``, calls and ``exit`` (RFC 9669 §4.3).

``CONDITIONS`` maps each conditional jump to ``(compare, signed)``: the
comparison is applied to unsigned operands (both masked to the width: 32 bits
for JMP32) or, for the signed jumps, to their two's-complement values. K-forms
compare against ``imm`` sign-extended to 64 bits (JMP) or its 32 bits (JMP32).
``jset`` jumps when ``dst & src`` is non-zero.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Callable

from ..errors import UnknownHelper
from ..isa.instruction import Instruction
from ..isa.jump import CallKind, JmpOp
from ..isa.opcode import CLASS_MASK, OPERATION_MASK, SOURCE_MASK, InsnClass, Source
from ..isa.targets import slot_target
from .faults import UnsupportedInstruction
from .ops import MASK32, MASK64, Op, s32, s64

if TYPE_CHECKING:
    from .machine import Machine

CONDITIONS: dict[int, tuple[Callable[[int, int], object], bool]] = {
    JmpOp.JEQ: (operator.eq, False),
    JmpOp.JNE: (operator.ne, False),
    JmpOp.JGT: (operator.gt, False),
    JmpOp.JGE: (operator.ge, False),
    JmpOp.JLT: (operator.lt, False),
    JmpOp.JLE: (operator.le, False),
    JmpOp.JSET: (operator.and_, False),  # truthy when any bit is common
    JmpOp.JSGT: (operator.gt, True),
    JmpOp.JSGE: (operator.ge, True),
    JmpOp.JSLT: (operator.lt, True),
    JmpOp.JSLE: (operator.le, True),
}


def condition_holds(opcode: int, a: int, b: int) -> bool:
    """Reference predicate: does the jump ``opcode`` with unsigned 64-bit
    operands ``a`` (dst) and ``b`` (src or sign-extended imm) jump?"""
    compare, signed = CONDITIONS[opcode & OPERATION_MASK]
    if opcode & CLASS_MASK == InsnClass.JMP32:
        a, b = (s32(a), s32(b)) if signed else (a & MASK32, b & MASK32)
    elif signed:
        a, b = s64(a), s64(b)
    return bool(compare(a, b))


def build_ja(insn: Instruction, pc: int, m: "Machine") -> Op:
    target = slot_target(insn, pc)  # JMP uses the 16-bit off; JMP32 (gotol) the 32-bit imm

    def ja() -> int:
        return target
    return ja


def build_jump(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s = m.regs, insn.dst, insn.src
    target, nxt = slot_target(insn, pc), pc + 1
    compare, signed = CONDITIONS[insn.opcode & OPERATION_MASK]
    is32 = insn.opcode & CLASS_MASK == InsnClass.JMP32
    if insn.opcode & SOURCE_MASK == Source.K:
        return _jump_k(compare, signed, is32, r, d, insn.imm, target, nxt)
    return _jump_x(compare, signed, is32, r, d, s, target, nxt)


def _jump_k(compare: Callable, signed: bool, is32: bool, r: list[int], d: int, imm: int,
            target: int, nxt: int) -> Op:
    if signed:
        k = imm  # already the signed value at both widths
        convert = s32 if is32 else s64

        def jump_signed_k() -> int:
            return target if compare(convert(r[d]), k) else nxt
        return jump_signed_k
    if is32:
        k = imm & MASK32

        def jump32_k() -> int:
            return target if compare(r[d] & MASK32, k) else nxt
        return jump32_k
    k = imm & MASK64

    def jump_k() -> int:
        return target if compare(r[d], k) else nxt
    return jump_k


def _jump_x(compare: Callable, signed: bool, is32: bool, r: list[int], d: int, s: int,
            target: int, nxt: int) -> Op:
    if signed:
        convert = s32 if is32 else s64

        def jump_signed_x() -> int:
            return target if compare(convert(r[d]), convert(r[s])) else nxt
        return jump_signed_x
    if is32:
        def jump32_x() -> int:
            return target if compare(r[d] & MASK32, r[s] & MASK32) else nxt
        return jump32_x

    def jump_x() -> int:
        return target if compare(r[d], r[s]) else nxt
    return jump_x


# -- calls and exit -------------------------------------------------------------
def build_call(insn: Instruction, pc: int, m: "Machine") -> Op:
    return _CALLS[insn.src](insn, pc, m)


def _build_helper_call(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, nxt, helper_id = m.regs, pc + 1, insn.imm
    helper = m.helpers.get(helper_id)
    if helper is None:
        # Not an error until executed (the verifier's job is to reject it earlier).
        def call_unknown() -> int:
            raise UnknownHelper(pc, helper_id)
        return call_unknown
    fn = helper.fn

    def call_helper() -> int:
        # r1-r5 keep their values, as in the kernel's own interpreter; the
        # verifier treats them as clobbered, so no valid program can tell.
        m.pc = pc
        r[0] = fn(m, r[1], r[2], r[3], r[4], r[5]) & MASK64
        return nxt
    return call_helper


def _build_local_call(insn: Instruction, pc: int, m: "Machine") -> Op:
    nxt, target = pc + 1, slot_target(insn, pc)
    push_frame = m.push_frame

    def call_local() -> int:
        push_frame(nxt, pc)
        return target
    return call_local


def _build_kfunc_call(insn: Instruction, pc: int, m: "Machine") -> Op:
    btf_id = insn.imm

    def call_kfunc() -> int:
        raise UnsupportedInstruction(pc, f"kfunc call (BTF id {btf_id})")
    return call_kfunc


_CALLS = {
    CallKind.HELPER: _build_helper_call,
    CallKind.LOCAL: _build_local_call,
    CallKind.KFUNC: _build_kfunc_call,
}


def build_callx(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, nxt = m.regs, insn.dst, pc + 1
    helpers = m.helpers

    def callx() -> int:
        helper_id = r[d]
        helper = helpers.get(helper_id)
        if helper is None:
            raise UnknownHelper(pc, helper_id)
        m.pc = pc
        r[0] = helper.fn(m, r[1], r[2], r[3], r[4], r[5]) & MASK64
        return nxt
    return callx


def build_exit(insn: Instruction, pc: int, m: "Machine") -> Op:
    frames, pop_frame = m.frames, m.pop_frame
    halt = m.halt

    def exit_() -> int:
        if frames:
            return pop_frame()
        return halt(pc)
    return exit_
