"""Instruction constructors in the style of the kernel's ``BPF_*`` macros
(include/linux/filter.h), for tests, benchmarks and hand-built programs.

    prog = [mov64_imm(0, 1), alu64_imm(AluOp.ADD, 0, 41), exit_insn()]

``lddw`` returns two slots; ``flatten`` turns a list with such pairs into a
flat list of instructions.
"""

from __future__ import annotations

from typing import Iterable, Union

from ..isa.alu import AluOp
from ..isa.instruction import Instruction, lddw_pair
from ..isa.jump import CallKind, JmpOp
from ..isa.load_store import AtomicOp, LddwSource, Mode, Size
from ..isa.opcode import InsnClass, Source


def alu64_imm(op: AluOp, dst: int, imm: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.ALU64 | op | Source.K, dst, 0, off, imm)


def alu64_reg(op: AluOp, dst: int, src: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.ALU64 | op | Source.X, dst, src, off, 0)


def alu32_imm(op: AluOp, dst: int, imm: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.ALU | op | Source.K, dst, 0, off, imm)


def alu32_reg(op: AluOp, dst: int, src: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.ALU | op | Source.X, dst, src, off, 0)


def mov64_imm(dst: int, imm: int) -> Instruction:
    return alu64_imm(AluOp.MOV, dst, imm)


def mov64_reg(dst: int, src: int) -> Instruction:
    return alu64_reg(AluOp.MOV, dst, src)


def mov32_imm(dst: int, imm: int) -> Instruction:
    return alu32_imm(AluOp.MOV, dst, imm)


def movsx64(dst: int, src: int, bits: int) -> Instruction:
    return alu64_reg(AluOp.MOV, dst, src, off=bits)


def movsx32(dst: int, src: int, bits: int) -> Instruction:
    return alu32_reg(AluOp.MOV, dst, src, off=bits)


def neg64(dst: int) -> Instruction:
    return Instruction(InsnClass.ALU64 | AluOp.NEG, dst)


def neg32(dst: int) -> Instruction:
    return Instruction(InsnClass.ALU | AluOp.NEG, dst)


def to_le(dst: int, bits: int) -> Instruction:
    return Instruction(InsnClass.ALU | AluOp.END | Source.K, dst, 0, 0, bits)


def to_be(dst: int, bits: int) -> Instruction:
    return Instruction(InsnClass.ALU | AluOp.END | Source.X, dst, 0, 0, bits)


def bswap(dst: int, bits: int) -> Instruction:
    return Instruction(InsnClass.ALU64 | AluOp.END | Source.K, dst, 0, 0, bits)


def jmp_imm(op: JmpOp, dst: int, imm: int, off: int) -> Instruction:
    return Instruction(InsnClass.JMP | op | Source.K, dst, 0, off, imm)


def jmp_reg(op: JmpOp, dst: int, src: int, off: int) -> Instruction:
    return Instruction(InsnClass.JMP | op | Source.X, dst, src, off, 0)


def jmp32_imm(op: JmpOp, dst: int, imm: int, off: int) -> Instruction:
    return Instruction(InsnClass.JMP32 | op | Source.K, dst, 0, off, imm)


def jmp32_reg(op: JmpOp, dst: int, src: int, off: int) -> Instruction:
    return Instruction(InsnClass.JMP32 | op | Source.X, dst, src, off, 0)


def ja(off: int) -> Instruction:
    return Instruction(InsnClass.JMP | JmpOp.JA, off=off)


def gotol(imm: int) -> Instruction:
    return Instruction(InsnClass.JMP32 | JmpOp.JA, imm=imm)


def call_helper(helper_id: int) -> Instruction:
    return Instruction(InsnClass.JMP | JmpOp.CALL, src=CallKind.HELPER, imm=helper_id)


def call_local(off: int) -> Instruction:
    """Call the subprogram ``off`` slots after the next instruction."""
    return Instruction(InsnClass.JMP | JmpOp.CALL, src=CallKind.LOCAL, imm=off)


def callx(dst: int) -> Instruction:
    return Instruction(InsnClass.JMP | JmpOp.CALL | Source.X, dst)


def exit_insn() -> Instruction:
    return Instruction(InsnClass.JMP | JmpOp.EXIT)


def ldx(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.LDX | Mode.MEM | size, dst, src, off)


def ldxs(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.LDX | Mode.MEMSX | size, dst, src, off)


def st(size: Size, dst: int, off: int, imm: int) -> Instruction:
    return Instruction(InsnClass.ST | Mode.MEM | size, dst, 0, off, imm)


def stx(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.STX | Mode.MEM | size, dst, src, off)


def atomic(size: Size, op: AtomicOp, dst: int, src: int, off: int = 0) -> Instruction:
    return Instruction(InsnClass.STX | Mode.ATOMIC | size, dst, src, off, op)


def lddw(dst: int, value: int, src: LddwSource = LddwSource.IMM64) -> tuple[Instruction, Instruction]:
    return lddw_pair(dst, value, src)


def ld_abs(size: Size, imm: int) -> Instruction:
    return Instruction(InsnClass.LD | Mode.ABS | size, imm=imm)


def ld_ind(size: Size, src: int, imm: int) -> Instruction:
    return Instruction(InsnClass.LD | Mode.IND | size, src=src, imm=imm)


Item = Union[Instruction, tuple[Instruction, ...]]


def flatten(items: Iterable[Item]) -> list[Instruction]:
    out: list[Instruction] = []
    for item in items:
        if isinstance(item, Instruction):
            out.append(item)
        else:
            out.extend(item)
    return out
