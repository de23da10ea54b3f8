"""What ``ebpfvm run --engine jit`` and ``ebpfvm jit FILE --emit ...`` need."""

from __future__ import annotations

import time

from ebpfvm.program import Program

from .runtime import JitResult, compile


def jit_run(program: Program, mem: bytes, budget: int) -> tuple[JitResult, float]:
    """Compile (checked mode) and run once; the result and the run's wall time
    (compilation excluded)."""
    jit = compile(program)
    started = time.perf_counter()
    result = jit.run(mem, budget)
    return result, time.perf_counter() - started


def emit(program: Program, what: str, *, mode: str = "checked", opt_level: int = 2) -> str:
    jit = compile(program, mode=mode, opt_level=opt_level)
    if what == "llvm":
        return jit.llvm_ir
    if what == "llvm-opt":
        return jit.optimized_ir
    if what == "asm":
        return jit.assembly
    raise ValueError(f"unknown --emit {what!r}")
