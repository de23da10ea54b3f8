"""Execution traces: one entry per executed instruction, and their text form."""

from __future__ import annotations

from typing import Iterable, NamedTuple

from ..isa.instruction import Instruction
from ..program import Program


class TraceEntry(NamedTuple):
    """One executed instruction: its step number (from 0), slot, call depth
    when it ran, the instruction, and r0..r10 after it ran."""

    step: int
    pc: int
    depth: int
    insn: Instruction
    regs: tuple[int, ...]


def instruction_text(program: Program, pc: int, style: str = "asm") -> str:
    """The disassembly of slot ``pc`` (``ebpfvm.asm`` when it is available,
    else the raw fields)."""
    try:
        from ..asm import format_instruction
    except ImportError:
        format_instruction = None
    if format_instruction is not None:
        try:
            return format_instruction(program, pc, style)
        except Exception:  # a disassembler bug must not hide the trace itself
            pass
    insn = program[pc]
    return f"op={insn.opcode:#04x} dst=r{insn.dst} src=r{insn.src} off={insn.off} imm={insn.imm}"


def format_entry(entry: TraceEntry, program: Program, previous: tuple[int, ...] | None = None,
                 style: str = "asm") -> str:
    """``step pc: instruction  rN=value ...`` listing the registers that changed
    (all non-zero registers when there is no previous entry)."""
    if previous is None:
        shown = [(i, v) for i, v in enumerate(entry.regs) if v]
    else:
        shown = [(i, v) for i, (v, old) in enumerate(zip(entry.regs, previous)) if v != old]
    regs = " ".join(f"r{i}={v:#x}" for i, v in shown)
    indent = "  " * entry.depth
    text = instruction_text(program, entry.pc, style)
    return f"{entry.step:>7} {entry.pc:>5}: {indent}{text:<32} {regs}".rstrip()


def format_trace(entries: Iterable[TraceEntry], program: Program, style: str = "asm") -> str:
    """One line per entry (see ``format_entry``)."""
    lines = []
    previous: tuple[int, ...] | None = None
    for entry in entries:
        lines.append(format_entry(entry, program, previous, style))
        previous = entry.regs
    return "\n".join(lines)
