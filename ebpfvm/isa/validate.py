"""Static checks of a decoded slot sequence: every problem, with its index.

These are the ISA's rules (RFC 9669), not the verifier's: known opcodes,
reserved fields zero, registers in range, well-formed lddw pairs, and jump
and call targets that land on an instruction inside the program.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import InstructionIssue
from .forms import FORMS, Kind
from .instruction import Instruction
from .targets import slot_target


def lddw_tails(insns: Sequence[Instruction]) -> frozenset[int]:
    """Indices of the second slots of lddw pairs."""
    tails = set()
    pc = 0
    while pc < len(insns):
        if insns[pc].opcode == 0x18:
            tails.add(pc + 1)
            pc += 2
        else:
            pc += 1
    return frozenset(tails)


def find_issues(insns: Sequence[Instruction]) -> list[InstructionIssue]:
    """Every ISA-level problem of the program, in slot order."""
    issues: list[InstructionIssue] = []
    if not insns:
        return [InstructionIssue(0, "empty program")]
    tails = lddw_tails(insns)
    count = len(insns)
    for pc, insn in enumerate(insns):
        if pc in tails:
            if (insn.opcode, insn.dst, insn.src, insn.off) != (0, 0, 0, 0):
                issues.append(InstructionIssue(pc, "second half of lddw must have opcode, registers and offset zero"))
            continue
        form = FORMS.get(insn.opcode)
        if form is None:
            issues.append(InstructionIssue(pc, f"unknown opcode {insn.opcode:#04x}"))
            continue
        for problem in form.violations(insn.dst, insn.src, insn.off, insn.imm):
            issues.append(InstructionIssue(pc, problem))
        if form.kind is Kind.LDDW and pc + 1 >= count:
            issues.append(InstructionIssue(pc, "lddw is truncated: its second slot is missing"))
            continue
        target = slot_target(insn, pc)
        if target is not None:
            what = {Kind.CALL: "call", Kind.LDDW: "lddw function"}.get(form.kind, "jump")
            _check_target(issues, pc, target, count, tails, what)
    return issues


def _check_target(issues: list[InstructionIssue], pc: int, target: int, count: int,
                  tails: frozenset[int], what: str) -> None:
    if not 0 <= target < count:
        issues.append(InstructionIssue(pc, f"{what} target {target} is outside the program (0..{count - 1})"))
    elif target in tails:
        issues.append(InstructionIssue(pc, f"{what} target {target} is the middle of an lddw"))
