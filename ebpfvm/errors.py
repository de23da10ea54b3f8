"""Exception classes for every failure a user can cause.

Each error carries its data as attributes (instruction index, file, line, ...)
and renders to a single line with ``str()``; the CLI prints that line and
chooses the exit status from the class:

* ``UserInputError`` and subclasses: the input itself is bad (exit 2).
* ``ProgramFault`` and subclasses: a well-formed program misbehaved while
  running (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass


class EbpfvmError(Exception):
    """Base class of every error ebpfvm raises on purpose."""


class UserInputError(EbpfvmError):
    """The user gave something we cannot accept (bad file, syntax, bytecode)."""


@dataclass(frozen=True)
class InstructionIssue:
    """One problem with one instruction slot of a bytecode program."""

    index: int
    message: str

    def __str__(self) -> str:
        return f"insn {self.index}: {self.message}"


class DecodeError(UserInputError):
    """Bytecode that is not a valid program; lists every malformed slot."""

    def __init__(self, issues: list[InstructionIssue], source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        first = self.issues[0] if self.issues else InstructionIssue(0, "empty program")
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{first}{more}")


class AssemblyError(UserInputError):
    """Assembler source that cannot be assembled."""

    def __init__(self, message: str, line: int, column: int = 1, source: str | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        super().__init__(f"{source or '<asm>'}:{line}:{column}: {message}")


class InputFileError(UserInputError):
    """A file that cannot be read or is of an unknown format."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.message = message
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class ProgramFault(EbpfvmError):
    """A program stopped abnormally while running."""

    def __init__(self, message: str, pc: int) -> None:
        self.pc = pc
        super().__init__(f"insn {pc}: {message}")


class MemoryFault(ProgramFault):
    """A load or store outside every region the program may touch."""

    def __init__(self, pc: int, address: int, size: int, write: bool, nearest: str | None) -> None:
        self.address = address
        self.size = size
        self.write = write
        self.nearest = nearest
        kind = "write" if write else "read"
        near = f"; nearest region: {nearest}" if nearest else ""
        super().__init__(f"invalid {kind} of {size} bytes at {address:#x}{near}", pc)


class BudgetExhausted(ProgramFault):
    """The program executed more instructions than it was allowed."""

    def __init__(self, pc: int, budget: int) -> None:
        self.budget = budget
        super().__init__(f"instruction budget of {budget} exhausted", pc)


class UnknownHelper(ProgramFault):
    """A call to a helper id that no registry entry implements: either the
    kernel has no such helper, or ebpfvm does not implement it (yet)."""

    def __init__(self, pc: int, helper_id: int) -> None:
        from .helpers.ids import HELPER_NAMES

        self.helper_id = helper_id
        self.helper_name = HELPER_NAMES.get(helper_id)
        if self.helper_name is None:
            message = f"call to unknown helper #{helper_id}"
        else:
            message = f"call to unknown helper #{helper_id}: {self.helper_name} is not implemented by ebpfvm"
        super().__init__(message, pc)


class CallDepthExceeded(ProgramFault):
    """More nested bpf-to-bpf calls than the kernel's 8 frames."""

    def __init__(self, pc: int, limit: int) -> None:
        self.limit = limit
        super().__init__(f"call depth exceeds {limit} frames", pc)
