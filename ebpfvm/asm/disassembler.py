"""Whole-program and single-instruction disassembly, in either style.

``asm``: the assembler's dialect. ``disassemble`` names every jump and call
target with a label (the program's own names where it has them, ``L<pc>``
otherwise), so that ``assemble(disassemble(p))`` reproduces ``p``'s bytes.

``kernel``: the verifier log's wording; ``disassemble`` prints each
instruction as the log does, ``<pc>: (<opcode>) <text>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..isa import lddw_tails, slot_target
from ..program import Program
from .asm_printer import LABEL_NAME, format_asm, is_valid_instruction
from .kernel_printer import format_kernel

STYLES = ("asm", "kernel")


def disassemble(program: Program, style: str = "asm") -> str:
    """The whole program, one instruction per line (an lddw is one line)."""
    _check_style(style)
    insns = program.instructions
    tails = lddw_tails(insns)
    labels = plan_labels(program, tails) if style == "asm" else {}
    lines: list[str] = []
    for pc in range(len(insns)):
        if pc in tails:
            continue
        if style == "asm":
            if pc in labels:
                lines.append(f"{labels[pc]}:")
            lines.append(format_asm(insns, pc, labels))
        else:
            lines.append(format_instruction_kernel_log_line(program, pc))
    if len(insns) in labels:
        lines.append(f"{labels[len(insns)]}:")
    return "".join(f"{line}\n" for line in lines)


def format_instruction(program: Program, pc: int, style: str = "asm") -> str:
    """Slot ``pc`` alone, for logs and traces. In the asm style, targets print
    as the program's label for them if it has one, else as ``+N``/``-N``."""
    _check_style(style)
    if style == "kernel":
        return format_kernel(program.instructions, pc)[1]
    return format_asm(program.instructions, pc, _TargetLabels(program))


def format_instruction_kernel_log_line(program: Program, pc: int) -> str:
    """One line of a kernel verifier log: ``0: (b7) r0 = 1``."""
    with_opcode, text = format_kernel(program.instructions, pc)
    prefix = f"({program.instructions[pc].opcode:02x}) " if with_opcode else ""
    return f"{pc}: {prefix}{text}"


def plan_labels(program: Program, tails: frozenset[int] | None = None) -> dict[int, str]:
    """Label names for disassembly: the program's own usable labels, plus
    ``L<pc>`` for every other in-range jump, call or function target."""
    insns = program.instructions
    tails = lddw_tails(insns) if tails is None else tails
    count = len(insns)
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for pc, name in sorted(program.labels.items()):
        # A label must read back as one name, be unique, and sit on an instruction boundary.
        if LABEL_NAME.fullmatch(name) and name not in taken and 0 <= pc <= count and pc not in tails:
            labels[pc] = name
            taken.add(name)
    for target in sorted(_targets(program, tails)):
        if target in labels:
            continue
        name, suffix = f"L{target}", 0
        while name in taken:  # bounded by the number of user labels
            suffix += 1
            name = f"L{target}_{suffix}"
        labels[target] = name
        taken.add(name)
    return labels


def _targets(program: Program, tails: frozenset[int]) -> set[int]:
    insns = program.instructions
    found: set[int] = set()
    for pc, insn in enumerate(insns):
        if pc in tails or not is_valid_instruction(insns, pc):
            continue
        target = slot_target(insn, pc)
        if target is not None and 0 <= target < len(insns) and target not in tails:
            found.add(target)
    return found


class _TargetLabels(Mapping[int, str]):
    """The program's labels, looked up one target at a time so that formatting
    a single instruction does not scan the whole program."""

    def __init__(self, program: Program) -> None:
        self._labels = program.labels

    def __getitem__(self, pc: int) -> str:
        name = self._labels[pc]
        if not LABEL_NAME.fullmatch(name):
            raise KeyError(pc)
        return name

    def __iter__(self) -> Iterator[int]:
        return (pc for pc in self._labels if LABEL_NAME.fullmatch(self._labels[pc]))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown disassembly style {style!r}; expected one of {', '.join(STYLES)}")
