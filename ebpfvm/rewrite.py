"""Program rewriting that keeps every jump, call and function reference pointing
at the same instruction: the kernel bridge wraps programs in a prologue and
epilogue with this, and later passes can patch code the same way."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .errors import InstructionIssue, DecodeError
from .isa.instruction import Instruction
from .isa.targets import target_field
from .isa.validate import lddw_tails
from .program import Program


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
    tails = lddw_tails(program.instructions)
    for pc, insn in enumerate(program.instructions):
        if pc == at:
            out.extend(new)
        field = None if pc in tails else target_field(insn)
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
    return program.with_instructions(out, labels)
