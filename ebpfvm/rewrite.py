"""Program rewriting that keeps every jump, call and function reference pointing
at the same instruction: the kernel bridge wraps programs in a prologue and
epilogue with this, and later passes can patch code the same way."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .errors import InstructionIssue, DecodeError
from .isa.forms import FORMS, Kind
from .isa.instruction import Instruction
from .isa.jump import CallKind
from .isa.load_store import LddwSource
from .isa.opcode import InsnClass
from .program import Program


def _relative_field(insn: Instruction) -> str | None:
    """Which field of ``insn`` holds a slot-relative target, if any."""
    form = FORMS.get(insn.opcode)
    if form is None:
        return None
    if form.kind is Kind.JA:
        return "imm" if insn.opcode & 0x07 == InsnClass.JMP32 else "off"
    if form.kind is Kind.JUMP:
        return "off"
    if form.kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return "imm"
    if form.kind is Kind.LDDW and insn.src == LddwSource.FUNC:
        return "imm"
    return None


def insert_instructions(program: Program, at: int, new: Sequence[Instruction]) -> Program:
    """A copy of ``program`` with ``new`` inserted before slot ``at``.

    Branches in the original code that pointed at slot ``at`` or later still
    reach the same original instruction; the inserted code is reached only by
    falling into it or by branches it contains itself (relative to its own
    position, taken as written)."""
    if not 0 <= at <= len(program):
        raise ValueError(f"insertion point {at} outside 0..{len(program)}")
    count = len(new)
    shift = lambda index: index + count if index >= at else index  # noqa: E731
    out: list[Instruction] = []
    tails = {pc + 1 for pc, insn in enumerate(program.instructions) if insn.opcode == 0x18}
    for pc, insn in enumerate(program.instructions):
        if pc == at:
            out.extend(new)
        field = None if pc in tails else _relative_field(insn)
        if field is not None:
            delta = getattr(insn, field)
            target = pc + 1 + delta
            new_delta = shift(target) - (shift(pc) + 1)
            limit = 0x7FFF if field == "off" else 0x7FFF_FFFF
            if not -limit - 1 <= new_delta <= limit:
                raise DecodeError([InstructionIssue(pc, f"branch offset {new_delta} no longer fits after rewriting")],
                                  program.source)
            insn = replace(insn, **{field: new_delta})
        out.append(insn)
    if at == len(program):
        out.extend(new)
    labels = {shift(pc): name for pc, name in program.labels.items()}
    return Program(out, labels=labels, source=program.source, name=program.name)
