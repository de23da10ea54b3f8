"""Which opcode bytes exist and which fields each one may use.

RFC 9669 §3: "Unused fields SHALL be cleared to zero". ``FORMS`` maps every
valid opcode byte to a ``Form`` that names its kind and, per field, what is
allowed: ``REG`` (a register r0..r10), ``ANY`` value, or a fixed set of values
(``{0}`` meaning the field is unused). Decoding validation, the assembler and
the disassembler all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Union

from .alu import MOVSX_WIDTHS_32, MOVSX_WIDTHS_64, SIGNED_DIVISION_OFFSET, SWAP_WIDTHS, AluOp
from .jump import CONDITIONAL_JUMPS, CallKind, JmpOp
from .load_store import AtomicOp, LddwSource, Mode, Size
from .opcode import InsnClass, Source

MAX_REGISTER = 10


class Kind(Enum):
    ALU = "alu"  # two-operand arithmetic, including mov
    NEG = "neg"
    END = "end"  # byte swap
    JA = "ja"
    JUMP = "jump"  # conditional jump
    CALL = "call"
    CALLX = "callx"
    EXIT = "exit"
    LOAD = "load"  # ldx
    LOAD_SX = "load_sx"  # ldxs
    STORE_IMM = "store_imm"  # st
    STORE_REG = "store_reg"  # stx
    ATOMIC = "atomic"
    LDDW = "lddw"
    LD_ABS = "ld_abs"
    LD_IND = "ld_ind"


class _Reg:
    def __repr__(self) -> str:
        return "REG"


class _Any:
    def __repr__(self) -> str:
        return "ANY"


REG = _Reg()
ANY = _Any()
ZERO = frozenset({0})
Rule = Union[_Reg, _Any, frozenset]


@dataclass(frozen=True)
class Form:
    opcode: int
    kind: Kind
    dst: Rule
    src: Rule
    off: Rule
    imm: Rule

    def violations(self, dst: int, src: int, off: int, imm: int) -> list[str]:
        """What is wrong with these field values for this opcode (empty if nothing)."""
        problems = []
        for name, rule, value in (("dst", self.dst, dst), ("src", self.src, src),
                                  ("off", self.off, off), ("imm", self.imm, imm)):
            if rule is REG:
                if value > MAX_REGISTER:
                    problems.append(f"invalid {name} register r{value}")
            elif rule is ANY:
                continue
            elif value not in rule:
                if rule == ZERO:
                    problems.append(f"reserved field {name}={value} must be zero")
                else:
                    allowed = ", ".join(str(v) for v in sorted(rule))
                    problems.append(f"{name}={value} not allowed (one of {allowed})")
        return problems


def _build() -> dict[int, Form]:
    forms: dict[int, Form] = {}

    def add(opcode: int, kind: Kind, dst: Rule, src: Rule, off: Rule, imm: Rule) -> None:
        forms[opcode] = Form(opcode, kind, dst, src, off, imm)

    for cls in (InsnClass.ALU, InsnClass.ALU64):
        for op in AluOp:
            k, x = op | Source.K | cls, op | Source.X | cls
            if op is AluOp.NEG:
                add(k, Kind.NEG, REG, ZERO, ZERO, ZERO)
            elif op is AluOp.END:
                add(k, Kind.END, REG, ZERO, ZERO, frozenset(SWAP_WIDTHS))
                if cls is InsnClass.ALU:  # ALU64|END|X is not an instruction
                    add(x, Kind.END, REG, ZERO, ZERO, frozenset(SWAP_WIDTHS))
            else:
                off = ZERO
                if op in (AluOp.DIV, AluOp.MOD):
                    off = frozenset({0, SIGNED_DIVISION_OFFSET})
                add(k, Kind.ALU, REG, ZERO, off, ANY)
                if op is AluOp.MOV:
                    widths = MOVSX_WIDTHS_64 if cls is InsnClass.ALU64 else MOVSX_WIDTHS_32
                    off = frozenset({0, *widths})
                add(x, Kind.ALU, REG, REG, off, ZERO)

    add(InsnClass.JMP | JmpOp.JA, Kind.JA, ZERO, ZERO, ANY, ZERO)
    add(InsnClass.JMP32 | JmpOp.JA, Kind.JA, ZERO, ZERO, ZERO, ANY)  # gotol
    for cls in (InsnClass.JMP, InsnClass.JMP32):
        for op in CONDITIONAL_JUMPS:
            add(cls | op | Source.K, Kind.JUMP, REG, ZERO, ANY, ANY)
            add(cls | op | Source.X, Kind.JUMP, REG, REG, ANY, ZERO)
    add(InsnClass.JMP | JmpOp.CALL, Kind.CALL, ZERO, frozenset(int(k) for k in CallKind), ZERO, ANY)
    add(InsnClass.JMP | JmpOp.CALL | Source.X, Kind.CALLX, REG, ZERO, ZERO, ZERO)
    add(InsnClass.JMP | JmpOp.EXIT, Kind.EXIT, ZERO, ZERO, ZERO, ZERO)

    for size in Size:
        add(InsnClass.LDX | Mode.MEM | size, Kind.LOAD, REG, REG, ANY, ZERO)
        add(InsnClass.ST | Mode.MEM | size, Kind.STORE_IMM, REG, ZERO, ANY, ANY)
        add(InsnClass.STX | Mode.MEM | size, Kind.STORE_REG, REG, REG, ANY, ZERO)
        if size is not Size.DW:
            add(InsnClass.LDX | Mode.MEMSX | size, Kind.LOAD_SX, REG, REG, ANY, ZERO)
            add(InsnClass.LD | Mode.ABS | size, Kind.LD_ABS, ZERO, ZERO, ZERO, ANY)
            add(InsnClass.LD | Mode.IND | size, Kind.LD_IND, ZERO, REG, ZERO, ANY)
    atomic_ops = frozenset(int(op) for op in AtomicOp)
    for size in (Size.W, Size.DW):
        add(InsnClass.STX | Mode.ATOMIC | size, Kind.ATOMIC, REG, REG, ANY, atomic_ops)
    add(InsnClass.LD | Mode.IMM | Size.DW, Kind.LDDW, REG, frozenset(int(s) for s in LddwSource), ZERO, ANY)
    return forms


FORMS: dict[int, Form] = _build()
