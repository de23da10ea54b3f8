"""Printing one instruction in the assembler's own dialect.

The spelling comes from the shared mnemonic table, so whatever this prints
assembles back to the same slot(s). Slots that are not a valid instruction
print as an ``<invalid ...>`` marker, which the assembler rejects rather than
silently mis-assembling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ..isa import FORMS, Instruction, LddwSource, lddw_value
from ..isa.load_store import LDDW_OPCODE
from .mnemonics import LDDW_KEYWORD_OF, Operand, entry_for

# What the lexer reads as one name: the only label spellings worth printing.
LABEL_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


def is_valid_instruction(insns: Sequence[Instruction], pc: int) -> bool:
    """Whether slot ``pc`` holds a well-formed instruction (an lddw with its tail)."""
    insn = insns[pc]
    form = FORMS.get(insn.opcode)
    if form is None or form.violations(insn.dst, insn.src, insn.off, insn.imm):
        return False
    if insn.opcode == LDDW_OPCODE:
        if pc + 1 >= len(insns):
            return False
        tail = insns[pc + 1]
        return (tail.opcode, tail.dst, tail.src, tail.off) == (0, 0, 0, 0)
    return True


def invalid_marker(insn: Instruction) -> str:
    return (f"<invalid: opcode {insn.opcode:#04x} dst {insn.dst} src {insn.src} "
            f"off {insn.off} imm {insn.imm}>")


def format_asm(insns: Sequence[Instruction], pc: int, labels: Mapping[int, str]) -> str:
    """Slot ``pc`` in the asm dialect; jump targets named in ``labels`` print as
    those names, others as signed offsets."""
    insn = insns[pc]
    entry = entry_for(insn) if is_valid_instruction(insns, pc) else None
    if entry is None:
        return invalid_marker(insn)

    def target(offset: int) -> str:
        return labels.get(pc + 1 + offset) or f"{offset:+d}"

    operands = [_FORMATTERS[op](insns, pc, target) for op in entry.operands]
    return f"{entry.name} {', '.join(operands)}" if operands else entry.name


def _mem(reg: int, off: int) -> str:
    return f"[%r{reg}{off:+d}]" if off else f"[%r{reg}]"


def _lddw(insns: Sequence[Instruction], pc: int, target: Callable[[int], str]) -> str:
    head, tail = insns[pc], insns[pc + 1]
    if head.src == LddwSource.IMM64:
        return f"{lddw_value(head, tail):#x}"
    keyword = LDDW_KEYWORD_OF[head.src]
    value = target(head.imm) if head.src == LddwSource.FUNC else str(head.imm)
    # A non-zero second-slot imm (the offset into a map value) is a third operand.
    return f"{keyword} {value}, {tail.imm}" if tail.imm else f"{keyword} {value}"


Formatter = Callable[[Sequence[Instruction], int, Callable[[int], str]], str]

_FORMATTERS: dict[Operand, Formatter] = {
    Operand.DST: lambda insns, pc, target: f"%r{insns[pc].dst}",
    Operand.SRC: lambda insns, pc, target: f"%r{insns[pc].src}",
    Operand.IMM: lambda insns, pc, target: str(insns[pc].imm),
    Operand.HELPER: lambda insns, pc, target: str(insns[pc].imm),
    Operand.DST_MEM: lambda insns, pc, target: _mem(insns[pc].dst, insns[pc].off),
    Operand.SRC_MEM: lambda insns, pc, target: _mem(insns[pc].src, insns[pc].off),
    Operand.OFF_TARGET: lambda insns, pc, target: target(insns[pc].off),
    Operand.IMM_TARGET: lambda insns, pc, target: target(insns[pc].imm),
    Operand.LDDW: _lddw,
}
