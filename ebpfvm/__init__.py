"""ebpfvm: a pure-Python eBPF virtual machine, verifier and JIT.

The public API (a contract other tools rely on)::

    ebpfvm.Program                       decoded program; .from_bytes(), .to_bytes()
    ebpfvm.assemble(text) -> Program     the conformance-suite assembler dialect
    ebpfvm.disassemble(program, style="asm"|"kernel") -> str
    ebpfvm.run(program, mem=b"", budget=1_000_000) -> RunResult (.r0, .executed, .mem)

Submodules are imported on first use so that ``import ebpfvm`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import (AssemblyError, BudgetExhausted, DecodeError, EbpfvmError, MemoryFault, ProgramFault,
                     UnknownHelper, UserInputError)
from .program import Program

__version__ = "0.1.0"

_LAZY = {
    "assemble": ("ebpfvm.asm", "assemble"),
    "disassemble": ("ebpfvm.asm", "disassemble"),
    "run": ("ebpfvm.interp", "run"),
    "RunResult": ("ebpfvm.interp", "RunResult"),
}

__all__ = [
    "AssemblyError", "BudgetExhausted", "DecodeError", "EbpfvmError", "MemoryFault", "Program", "ProgramFault",
    "RunResult", "UnknownHelper", "UserInputError", "assemble", "disassemble", "run",
]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ebpfvm' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value
