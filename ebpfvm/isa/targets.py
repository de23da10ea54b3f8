"""Slot-relative references: where jumps, local calls and ``lddw func`` point.

All three count 8-byte slots from the instruction after the referring one
(the kernel resolves ``lddw rX, func`` the same way as a local call), so one
rule serves the validator, the disassembler and code rewriting.
"""

from __future__ import annotations

from .forms import FORMS, Kind
from .instruction import Instruction
from .jump import CallKind
from .load_store import LddwSource
from .opcode import CLASS_MASK, InsnClass


def target_field(insn: Instruction) -> str | None:
    """``"off"`` or ``"imm"``: the field holding a slot-relative reference, if any."""
    form = FORMS.get(insn.opcode)
    if form is None:
        return None
    if form.kind is Kind.JA:
        return "imm" if insn.opcode & CLASS_MASK == InsnClass.JMP32 else "off"
    if form.kind is Kind.JUMP:
        return "off"
    if form.kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return "imm"
    if form.kind is Kind.LDDW and insn.src == LddwSource.FUNC:
        return "imm"
    return None


def slot_target(insn: Instruction, pc: int) -> int | None:
    """The slot that the reference in ``insn`` at ``pc`` names, or None."""
    field = target_field(insn)
    return None if field is None else pc + 1 + getattr(insn, field)


def branch_target(insn: Instruction, pc: int) -> int | None:
    """Where control goes from a jump or local call at ``pc`` (None otherwise)."""
    form = FORMS.get(insn.opcode)
    if form is None or form.kind is Kind.LDDW:
        return None
    return slot_target(insn, pc)
