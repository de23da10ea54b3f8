"""``assemble``: source text in the bpf_conformance dialect to a ``Program``.

Two passes: the first parses every line and gives each label the slot index
of the instruction after it (lddw takes two slots); the second resolves label
targets into pc-relative offsets and encodes the slots.
"""

from __future__ import annotations

from ..errors import AssemblyError
from ..isa import Instruction, lddw_pair
from ..isa.load_store import LDDW_OPCODE
from ..program import Program
from .parser import FIELD_BITS, FIELD_RANGE, Statement, TargetRef, parse_line

# bpf_conformance treats "exit" as a label for the first exit instruction
# when no label of that name is defined ("jeq %r1, 5, exit").
IMPLICIT_EXIT_LABEL = "exit"


def assemble(text: str, *, source: str | None = None, strict: bool = True) -> Program:
    """Assemble ``text``; ``source`` names it in error messages.

    Every problem raises ``AssemblyError`` with a 1-based line and column.
    With ``strict`` (the default) the result must also pass the ISA checks
    (jump targets inside the program, at least one instruction); without it
    the program is returned as written so that a verifier can be shown code
    that jumps out of bounds.
    """
    statements: list[tuple[int, Statement]] = []
    labels: dict[str, int] = {}
    label_lines: dict[str, int] = {}
    first_exit: int | None = None
    pc = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        parsed = parse_line(raw, number, source)
        for name, column in parsed.labels:
            if name in labels:
                raise AssemblyError(f"duplicate label {name!r} (first defined on line {label_lines[name]})",
                                    number, column, source)
            labels[name] = pc
            label_lines[name] = number
        stmt = parsed.statement
        if stmt is not None:
            statements.append((pc, stmt))
            if first_exit is None and stmt.entry.name == "exit":
                first_exit = pc
            pc += stmt.size
    if first_exit is not None:
        labels.setdefault(IMPLICIT_EXIT_LABEL, first_exit)
        label_lines.setdefault(IMPLICIT_EXIT_LABEL, 0)

    insns: list[Instruction] = []
    for pc, stmt in statements:
        if stmt.target is not None:
            stmt.fields[stmt.target.field] = _resolve(stmt, stmt.target, pc, labels, source)
        insns.extend(_encode(stmt))

    names: dict[int, str] = {}
    for name, at in labels.items():
        if label_lines[name]:  # the implicit exit label is not the user's
            names.setdefault(at, name)
    program = Program(insns, labels=names, source=source)
    if strict:
        _check(program, dict(statements), source)
    return program


def _resolve(stmt: Statement, target: TargetRef, pc: int, labels: dict[str, int], source: str | None) -> int:
    if target.label is None:
        return target.offset
    at = labels.get(target.label)
    if at is None:
        raise AssemblyError(f"undefined label {target.label!r}", stmt.line, target.column, source)
    offset = at - (pc + 1)
    low, high = FIELD_RANGE[target.field]
    if not low <= offset <= high:
        hint = " (ja32 reaches further)" if stmt.entry.name == "ja" else ""
        raise AssemblyError(f"label {target.label!r} is {offset:+d} slots away, which does not fit in a "
                            f"{FIELD_BITS[target.field]}-bit offset{hint}", stmt.line, target.column, source)
    return offset


def _encode(stmt: Statement) -> tuple[Instruction, ...]:
    f = stmt.fields
    if stmt.entry.opcode == LDDW_OPCODE:
        value = ((f["tail"] & 0xFFFF_FFFF) << 32) | (f["imm"] & 0xFFFF_FFFF)
        return lddw_pair(f["dst"], value, f["src"])
    return (Instruction(stmt.entry.opcode, f["dst"], f["src"], f["off"], f["imm"]),)


def _check(program: Program, at_pc: dict[int, Statement], source: str | None) -> None:
    if not program.instructions:
        raise AssemblyError("no instructions: a program needs at least one", 1, 1, source)
    issues = program.issues()
    if not issues:
        return
    first = issues[0]
    stmt = at_pc.get(first.index)
    if stmt is None:  # cannot happen for assembled code, but keep the error located
        raise AssemblyError(first.message, 1, 1, source)
    column = stmt.target.column if stmt.target is not None else stmt.column
    more = f" (and {len(issues) - 1} more problems)" if len(issues) > 1 else ""
    raise AssemblyError(first.message + more, stmt.line, column, source)
