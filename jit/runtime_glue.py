"""``Runtime.run(..., engine="jit")``: which programs the JIT runs, compiled once per runtime.

A runtime program compiles in *runtime mode* (``ModuleLowering(runtime=True)``):
lddw map pseudo sources resolve at compile time to the same numbers the
interpreter loads (the runtime's map locator, ``ebpfvm.runtime.pseudo``);
stack, packet (or plain context) and map values are reached natively, the
context struct (whose loads the program type rewrites) and anything else
through a callback into the run's ``MemoryMap`` (``_memory_trampoline``), so
hooks and faults are the interpreter's own. Always checked mode: the bounds
checks are what pick the native or the slow path.

Control-transfer helpers run natively too: bpf_loop / bpf_for_each_map_elem
call the callback subprogram's exported native function (``_Run.call_function``
stands in for ``Machine.call_function``), and bpf_tail_call runs the target
program's ``bpf_tail_entry`` on the same context, stack and budget
(``_Run.replace_program``), every program of the runtime compiled on first use.

callx (the helper id in a register) runs natively as well, handing the
registers over like a control helper, since it may name one.

Falls back to the interpreter (``Runtime.fallback_reason`` says why) for a
program that may tail-call into a program the JIT cannot run, and for
instruction tracing.
"""

from __future__ import annotations

from typing import Any

from ebpfvm.isa.forms import FORMS, Kind
from ebpfvm.isa.jump import CallKind
from ebpfvm.program import Program
from ebpfvm.runtime.pseudo import make_resolver

from .runtime import JitProgram

# Helpers that run the interpreter: none now (tail calls and callbacks run natively).
INTERPRETER_HELPERS: dict[int, str] = {}
TAIL_CALL = 12


def unsupported(program: Program, runtime: Any = None) -> str | None:
    """Why the JIT cannot run ``program`` under a runtime (None: it can). A
    program with bpf_tail_call needs every program of ``runtime`` to be runnable."""
    tail_calls = False
    for pc, insn in enumerate(program):
        kind = FORMS[insn.opcode].kind if insn.opcode in FORMS else None
        if kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm in INTERPRETER_HELPERS:
            return f"pc {pc}: {INTERPRETER_HELPERS[insn.imm]} runs on the interpreter"
        if (kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm == TAIL_CALL) or kind is Kind.CALLX:
            tail_calls = True  # (callx may name bpf_tail_call)
    if tail_calls and runtime is not None:
        for name, other in getattr(runtime, "programs", {}).items():
            if other is program:
                continue
            reason = unsupported(other)
            if reason is not None:
                return f"bpf_tail_call may reach {name!r}, which runs on the interpreter ({reason})"
    return None


def jit_for(runtime: Any, program: Program, trace: Any) -> tuple[JitProgram | None, str | None]:
    """The runtime's JitProgram for ``program``, or (None, reason) to interpret."""
    if trace:
        return None, "tracing runs on the interpreter (native code is not traced)"
    cache = runtime._jits
    hit = cache.get(id(program))
    if hit is not None:
        return hit
    reason = unsupported(program, runtime)
    if reason is not None:
        entry: tuple[JitProgram | None, str | None] = (None, reason)
    else:
        locate = runtime._map_locator(program)
        resolver = make_resolver(locate)
        maps_by_handle = {}
        for index in range(max(len(program.maps), len(runtime._map_list))):
            found = locate(index)
            if found is not None:
                maps_by_handle[found[1]] = found[0]
        jit = JitProgram(program, mode="checked", helpers=runtime.helpers, env=runtime.env,
                         resolve_pseudo=resolver, runtime=True, maps_by_handle=maps_by_handle)
        entry = (jit, None)
    cache[id(program)] = entry
    return entry
