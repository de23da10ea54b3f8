"""``Runtime.run(..., engine="jit")``: which programs the JIT runs, compiled once per runtime.

A runtime program compiles in *runtime mode* (``ModuleLowering(runtime=True)``):
lddw map pseudo sources resolve at compile time to the same numbers the
interpreter loads (the runtime's map locator, ``ebpfvm.runtime.pseudo``);
stack, packet (or plain context) and map values are reached natively, the
context struct (whose loads the program type rewrites) and anything else
through a callback into the run's ``MemoryMap`` (``_memory_trampoline``), so
hooks and faults are the interpreter's own. Always checked mode: the bounds
checks are what pick the native or the slow path.

Falls back to the interpreter (``Runtime.fallback_reason`` says why) for what
needs the interpreter's frames: bpf_tail_call, bpf_loop, bpf_for_each_map_elem
(callbacks run as nested interpreter calls), callx / function pointers, and
instruction tracing.
"""

from __future__ import annotations

from typing import Any

from ebpfvm.isa.forms import FORMS, Kind
from ebpfvm.isa.jump import CallKind
from ebpfvm.isa.load_store import LddwSource
from ebpfvm.program import Program
from ebpfvm.runtime.pseudo import make_resolver

from .runtime import JitProgram

# Helpers that run the interpreter (tail calls swap its code; callbacks are nested interpreter calls).
INTERPRETER_HELPERS = {12: "bpf_tail_call", 164: "bpf_for_each_map_elem", 181: "bpf_loop"}


def unsupported(program: Program) -> str | None:
    """Why the JIT cannot run ``program`` under a runtime (None: it can)."""
    for pc, insn in enumerate(program):
        kind = FORMS[insn.opcode].kind if insn.opcode in FORMS else None
        if kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm in INTERPRETER_HELPERS:
            return f"pc {pc}: {INTERPRETER_HELPERS[insn.imm]} runs on the interpreter"
        if kind is Kind.CALLX:
            return f"pc {pc}: callx runs on the interpreter"
        if kind is Kind.LDDW and insn.src == LddwSource.FUNC:
            return f"pc {pc}: function pointers (callbacks) run on the interpreter"
    return None


def jit_for(runtime: Any, program: Program, trace: Any) -> tuple[JitProgram | None, str | None]:
    """The runtime's JitProgram for ``program``, or (None, reason) to interpret."""
    if trace:
        return None, "tracing runs on the interpreter (native code is not traced)"
    cache = runtime._jits
    hit = cache.get(id(program))
    if hit is not None:
        return hit
    reason = unsupported(program)
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
