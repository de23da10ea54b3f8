"""ebpfvm: a pure-Python eBPF virtual machine, verifier and JIT.

The public API (a contract other tools rely on)::

    ebpfvm.Program                       decoded program; .from_bytes(), .to_bytes()
    ebpfvm.assemble(text) -> Program     the conformance-suite assembler dialect
    ebpfvm.disassemble(program, style="asm"|"kernel") -> str
    ebpfvm.run(program, mem=b"", budget=1_000_000) -> RunResult (.r0, .executed, .mem)

Submodules are imported on first use so that ``import ebpfvm`` stays cheap.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

from .errors import (AssemblyError, BudgetExhausted, DecodeError, EbpfvmError, MemoryFault, ProgramFault,
                     UnknownHelper, UserInputError)
from .program import Program

__version__ = "0.1.0"

# verifier/, jit/ and conformance/ live beside this package in the source tree
# and are mapped to ebpfvm.* by pyproject's package-dir. When ebpfvm is imported
# straight from a checkout (PYTHONPATH, `python -m pytest` in the repo) that
# mapping is absent, so let submodule lookup also search the checkout's root.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_checkout, "pyproject.toml")) and os.path.isdir(os.path.join(_checkout, "conformance")):
    __path__.append(_checkout)

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
