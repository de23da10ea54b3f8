"""The reference interpreter: exact kernel semantics, sandboxed memory, traces.

    from ebpfvm.interp import run
    result = run(program, mem=b"...", budget=1_000_000)
    result.r0, result.executed, result.mem

``Interpreter`` decodes once for repeated runs; ``Machine`` is what helpers
receive. Instruction semantics live in ``alu``, ``jumps``, ``load_store`` and
``atomics``; ``decode`` holds the opcode table.
"""

from .faults import FellOffEnd, UnresolvedPseudo, UnsupportedInstruction
from .machine import DEFAULT_BUDGET, MAX_CALL_FRAMES, Frame, Interpreter, Machine, run
from .result import RunResult
from .trace import TraceEntry, format_entry, format_trace

__all__ = [
    "DEFAULT_BUDGET", "FellOffEnd", "Frame", "Interpreter", "MAX_CALL_FRAMES", "Machine", "RunResult", "TraceEntry",
    "UnresolvedPseudo", "UnsupportedInstruction", "format_entry", "format_trace", "run",
]
