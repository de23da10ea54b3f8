"""What a run returns."""

from __future__ import annotations

from dataclasses import dataclass

from ..program import Program
from .trace import TraceEntry, format_trace


@dataclass(frozen=True)
class RunResult:
    """``r0``: the main frame's return value (unsigned 64-bit). ``executed``:
    instructions executed, lddw counting once. ``mem``: the input memory after
    the run. ``regs``: r0..r10 at exit. ``trace``: the entries when the run was
    traced into a list, else None."""

    r0: int
    executed: int
    mem: bytes
    regs: tuple[int, ...]
    trace: list[TraceEntry] | None = None

    def format_trace(self, program: Program, style: str = "asm") -> str:
        return format_trace(self.trace or (), program, style)
