"""Faults specific to running a program, on top of those in ``ebpfvm.errors``.

Each carries its data as attributes and renders to one line.
"""

from __future__ import annotations

from ..errors import ProgramFault


class FellOffEnd(ProgramFault):
    """Execution ran past the last instruction without an ``exit``."""

    def __init__(self, pc: int, length: int) -> None:
        self.length = length
        super().__init__(f"execution fell off the end of the program ({length} instructions) without exit", pc)


class UnresolvedPseudo(ProgramFault):
    """An ``lddw`` whose ``src`` names a map or kernel object this run cannot
    resolve (map and BTF resolution belong to the loader, a later issue)."""

    def __init__(self, pc: int, src: int, imm: int, next_imm: int) -> None:
        self.src = src
        self.imm = imm
        self.next_imm = next_imm
        super().__init__(f"lddw with src={src} (imm={imm}, next imm={next_imm}) refers to an object "
                         f"this run does not provide", pc)


class UnsupportedInstruction(ProgramFault):
    """A well-formed instruction the interpreter cannot run (kfunc calls)."""

    def __init__(self, pc: int, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is not supported by the interpreter", pc)


class NotAMap(ProgramFault):
    """A helper was given a value that is not the handle of a map of this run."""

    def __init__(self, pc: int, value: int) -> None:
        self.value = value
        super().__init__(f"{value:#x} is not a map of this run", pc)
