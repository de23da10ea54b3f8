"""``JitProgram``: compiled native code plus the Python side of a run.

A run allocates the input memory as a ``bytearray`` (the native code gets
its address), points the context at it and at the JIT's stack buffer (8
frames x 512 bytes), calls ``bpf_main`` through ctypes and turns a fault the
native code reported into the interpreter's exception.

Helper calls go through one process-wide ctypes callback
(``ebpfvm_jit_helper``, registered with LLVM by name). It finds the running
``JitProgram`` by the context address, presents a ``Machine`` whose memory
map shows the very same buffers (input memory, stack frames 0..depth) to the
helper implementation from the registry, and returns r0. Any exception is
caught there, parked in the run's side channel, and the callback returns 0
with ``fault_kind = FAULT_HELPER``; the native code returns and ``run``
re-raises the exception in Python. The callback object lives at module level
for the life of the process.

Control-transfer helpers (runtime mode) run the interpreter's helper code
with two machine methods swapped for native ones during the run:
``call_function`` (bpf_loop / for_each callbacks) calls the callback
subprogram's exported native function one frame deeper on the same context
and budget; ``replace_program`` (a taken bpf_tail_call) calls the target
program's ``bpf_tail_entry`` at the caller's depth with the caller's r0-r9
(handed over in ``Ctx.regs``), then raises ``_TailCallTaken`` through the
helper, which the callback turns into ``FAULT_TAIL`` + the target's r0: the
calling native function returns that r0 at once. Tail calls nest on the
native stack (at most 33 deep). A fault in nested native code becomes its
exception right there (with the nested program's blocks and slots) and
travels out as a helper exception.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from ebpfvm.errors import BudgetExhausted, CallDepthExceeded, ProgramFault, UnknownHelper
from ebpfvm.helpers.defaults import shared_default_registry
from ebpfvm.helpers.env import HelperEnv
from ebpfvm.helpers.registry import HelperRegistry
from ebpfvm.interp.faults import FellOffEnd, UnresolvedPseudo, UnsupportedInstruction
from ebpfvm.interp.machine import DEFAULT_BUDGET, MAX_CALL_FRAMES, MEM_REGION, Frame, Machine
from ebpfvm.memory import MEM_BASE, STACK_SIZE, MemoryMap, Region, stack_frame_base, stack_frame_name
from ebpfvm.program import Program

from . import engine
from . import memory as mm
from .lowering import (FOR_EACH_MAP_ELEM, HELPER_SYMBOL, LOOP, MAIN, MEMORY_SYMBOL, RUN_MANY, SLOW_ATOMIC,
                       SLOW_LOAD, SLOW_STORE, TAIL_CALL, TAIL_ENTRY, lower_program, lowering_inputs,
                       sub_name)

MASK64 = (1 << 64) - 1
MODES = ("checked", "trusted")

_HELPER_PROTO = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                 ctypes.c_uint64, *([ctypes.c_uint64] * 5))
_MAIN_PROTO = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
# bpf_tail_entry and callbacks: (ctx, depth, r0..r9) -> r0
_ENTRY_PROTO = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, *([ctypes.c_uint64] * 10))
_CONTROL_HELPERS = (TAIL_CALL, FOR_EACH_MAP_ELEM, LOOP)


class _TailCallTaken(BaseException):
    """Raised through bpf_tail_call's Python frames once the target ran; the
    helper callback turns it into ``FAULT_TAIL`` with the target's r0."""

    def __init__(self, r0: int) -> None:
        super().__init__(r0)
        self.r0 = r0


# bpf_run_many: (ctx, rows, n, size, out, budget, row stride) -> rows done
_RUN_MANY_PROTO = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                                   ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64)

# ctx address -> the _Run in progress (helpers find their run through it).
_RUNS: dict[int, "_Run"] = {}


def _callback_failed(ctx: int, run, exc: BaseException) -> int:
    """A Python exception inside a ctypes callback: keep it on the run (the
    side channel) and make the native code fault out with FAULT_HELPER."""
    if run is not None:
        run.exception = exc
    ctypes.cast(ctx, ctypes.POINTER(mm.Ctx)).contents.fault_kind = mm.FAULT_HELPER
    return 0


def _helper_trampoline(ctx: int, pc: int, depth: int, helper_id: int,
                       r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    run = _RUNS.get(ctx)
    try:
        if run is None:
            raise RuntimeError("JIT helper callback without a run in progress")
        return run.call_helper(pc, depth, helper_id, r1, r2, r3, r4, r5)
    except _TailCallTaken as taken:
        ctypes.cast(ctx, ctypes.POINTER(mm.Ctx)).contents.fault_kind = mm.FAULT_TAIL
        return taken.r0 & MASK64
    except BaseException as exc:  # noqa: BLE001 - nothing may escape into native code
        return _callback_failed(ctx, run, exc)


_TRAMPOLINE = _HELPER_PROTO(_helper_trampoline)  # kept alive for the life of the process
engine.add_symbol(HELPER_SYMBOL, ctypes.cast(_TRAMPOLINE, ctypes.c_void_p).value)

_MEMORY_PROTO = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                 ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)


def _memory_trampoline(ctx: int, pc: int, depth: int, address: int, op: int, value: int, expected: int) -> int:
    """Runtime mode's slow path: one load/store/atomic done by the run's
    ``MemoryMap`` exactly as the interpreter does it (context hooks, faults)."""
    run = _RUNS.get(ctx)
    try:
        if run is None:
            raise RuntimeError("JIT memory callback without a run in progress")
        return run.slow_access(pc, depth, address, op, value, expected)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape into native code
        return _callback_failed(ctx, run, exc)


_MEMORY_TRAMPOLINE = _MEMORY_PROTO(_memory_trampoline)  # kept alive for the life of the process
engine.add_symbol(MEMORY_SYMBOL, ctypes.cast(_MEMORY_TRAMPOLINE, ctypes.c_void_p).value)

_ATOMIC_RMW = {0x00: lambda a, b: a + b, 0x40: lambda a, b: a | b, 0x50: lambda a, b: a & b,
               0xA0: lambda a, b: a ^ b, 0xE0: lambda a, b: b}
_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


@dataclass(frozen=True)
class JitResult:
    """``r0``; ``executed`` (checked mode: instructions executed, lddw once,
    equal to the interpreter's count; trusted mode: None, nothing is counted);
    ``mem``: the input memory after the run."""

    r0: int
    executed: int | None
    mem: bytes


class _Run:
    """The Python side of one run: buffers, the helper machine, the side channel."""

    def __init__(self, jit: "JitProgram", mem: bytes) -> None:
        self.jit = jit
        self.data = bytearray(mem)
        self.exception: BaseException | None = None

    def call_helper(self, pc: int, depth: int, helper_id: int, *args: int) -> int:
        jit = self.jit
        helper = jit.helpers.get(helper_id)
        if helper is None:
            raise UnknownHelper(pc, helper_id)
        if jit.runtime:
            m = self.machine
            self.sync_frames(depth)
            m.pc = pc
            control = helper_id in _CONTROL_HELPERS
            if control:
                # The helper sees the caller's registers and depth as the interpreter's would be.
                m.regs[0:10] = list(jit.ctx.regs)
                saved_frames = list(m.frames)
                m.frames[:] = [Frame(0, pc, ())] * depth
            outer_depth, self.depth = self.depth, depth
            try:
                return helper.fn(m, *args) & MASK64
            finally:
                self.depth = outer_depth
                if control:
                    m.frames[:] = saved_frames
                if m.memory.get("packet") is not self.packet_region:  # the helper moved the packet
                    self.packet_region = m.memory.get("packet")
                    jit.point_at(m)
        m = jit.machine
        jit.map_regions(m.memory, self.data, depth)
        m.pc = pc
        return helper.fn(m, *args) & MASK64

    # -- runtime mode ------------------------------------------------------------
    machine: Machine
    mapped_depth = 0
    packet_region: Any = None
    depth = 0  # of the function whose helper call is running
    budget = DEFAULT_BUDGET
    current: "JitProgram"  # whose code runs (a tail call's target after one)

    def call_function(self, target: int, args: Any) -> int:
        """``Machine.call_function`` for bpf_loop / for_each callbacks: the
        callee's native function one frame deeper, on the same context and
        budget, starting from the caller's r0 (then the last callback's) and r6-r9."""
        m, ctx, jit = self.machine, self.jit.ctx, self.current
        depth = self.depth + 1
        if depth >= MAX_CALL_FRAMES:
            raise CallDepthExceeded(m.pc, MAX_CALL_FRAMES)
        entry = jit.entries.get(sub_name(target))
        if entry is None:
            raise ProgramFault(f"JIT: no native entry for the callback at slot {target}", m.pc)
        regs = m.regs
        saved = (ctx.fault_pc, ctx.fault_extra, m.pc)
        m.callback_depth += 1
        try:
            r0 = entry(ctypes.addressof(ctx), depth, regs[0], *[value & MASK64 for value in args],
                       regs[6], regs[7], regs[8], regs[9])
        finally:
            m.callback_depth -= 1
        if ctx.fault_kind:
            raise jit._fault(self, self.budget, ctx)
        ctx.fault_pc, ctx.fault_extra, m.pc = saved
        regs[0] = r0 & MASK64
        return regs[0]

    def replace_program(self, program: Program, code: Any) -> None:
        """``Machine.replace_program`` for bpf_tail_call: the target's native
        entry in place of the calling function (same depth, context, budget,
        registers), nested; ``_TailCallTaken`` carries its r0 back."""
        from .runtime_glue import jit_for

        m, ctx = self.machine, self.jit.ctx
        target, reason = jit_for(m.run_state.runtime, program, None)
        if target is None:
            raise ProgramFault(f"JIT: tail call target cannot run natively ({reason})", m.pc)
        # The rest of the calling block was charged at its start and never runs.
        ctx.budget += ctx.fault_extra - 1
        outer_program, outer_current = m.program, self.current
        m.program, self.current = program, target
        r0 = target.entries[TAIL_ENTRY](ctypes.addressof(ctx), self.depth, *list(ctx.regs))
        if ctx.fault_kind:
            raise target._fault(self, self.budget, ctx)
        self.current = outer_current
        if self.depth:  # back in the caller's program (the interpreter's ``replaced``)
            m.program = outer_program
        raise _TailCallTaken(r0)

    def sync_frames(self, depth: int) -> None:
        """Frames 0..depth of the JIT's stack mapped in the machine's memory."""
        memory, frames = self.machine.memory, self.jit._stack_regions
        while self.mapped_depth < depth:
            self.mapped_depth += 1
            memory.add(frames[self.mapped_depth])
        while self.mapped_depth > depth:
            memory.remove_region(frames[self.mapped_depth])
            self.mapped_depth -= 1

    def slow_access(self, pc: int, depth: int, address: int, op: int, value: int, expected: int) -> int:
        import struct

        self.sync_frames(depth)
        memory = self.machine.memory
        size, kind, imm = op & 0xFF, (op >> 8) & 0xFF, op >> 16
        if kind == SLOW_LOAD:
            return memory.read(address, size, pc)
        if kind == SLOW_STORE:
            memory.write(address, size, value, pc)
            return 0
        assert kind == SLOW_ATOMIC
        region = memory.locate(address, size, True, pc)
        at = address - region.base
        fmt = _FMT[size]
        mask = (1 << (8 * size)) - 1
        old = struct.unpack_from(fmt, region.data, at)[0]
        if imm == 0xF1:  # cmpxchg
            if old == expected & mask:
                struct.pack_into(fmt, region.data, at, value & mask)
        else:
            struct.pack_into(fmt, region.data, at, _ATOMIC_RMW[imm & ~1](old, value) & mask)
        return old


@dataclass(frozen=True)
class Lowered:
    """What the lowering of a program reports, kept with its cached code."""

    blocks: dict  # leader slot -> cfg.Block (fault slots and budget corrections)
    exported: tuple[str, ...]  # functions the runtime calls by address
    inlined_lookups: int  # array-map lookups done natively
    uses_helpers: bool


class JitProgram:
    """A program compiled to native code. ``run`` and ``run_many`` execute it."""

    def __init__(self, program: Program, *, mode: str = "checked", opt_level: int = 2,
                 helpers: HelperRegistry | None = None, env: HelperEnv | None = None,
                 resolve_pseudo: Any = None, runtime: bool = False, maps_by_handle: Any = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        program.check()
        self.program = program
        self.mode = mode
        self.checked = mode == "checked"
        self.opt_level = opt_level
        self.helpers = helpers if helpers is not None else shared_default_registry()
        self.runtime = runtime
        key = engine.cache_key(program.to_bytes(), mode, opt_level, runtime,
                               *lowering_inputs(program, self.helpers, resolve_pseudo, maps_by_handle))
        compiled = engine.cached(key)
        if compiled is None:
            lowering = lower_program(program, checked=self.checked, helpers=self.helpers,
                                     resolve_pseudo=resolve_pseudo, runtime=runtime, maps_by_handle=maps_by_handle)
            lowered = Lowered(lowering.blocks, tuple(lowering.exported), lowering.inlined_lookups,
                              lowering.uses_helpers)
            compiled = engine.compile_ir(key, str(lowering.module), [MAIN, RUN_MANY, *lowered.exported], opt_level,
                                         light=len(program) > engine.LIGHT_PIPELINE_SLOTS, lowered=lowered)
        self.compiled = compiled
        lowered = compiled.lowered
        self.blocks = lowered.blocks
        self.inlined_lookups = lowered.inlined_lookups
        self.uses_helpers = lowered.uses_helpers
        self.entries = {name: _ENTRY_PROTO(compiled.addresses[name]) for name in lowered.exported}
        self._main = _MAIN_PROTO(self.compiled.addresses[MAIN])
        self._run_many = _RUN_MANY_PROTO(self.compiled.addresses[RUN_MANY])
        self.machine = Machine(program, self.helpers, env if env is not None else HelperEnv())
        self._stack = bytearray(mm.STACK_BYTES)
        self._stack_view = (ctypes.c_char * mm.STACK_BYTES).from_buffer(self._stack)
        frames = memoryview(self._stack)
        self._stack_regions = []
        for k in range(mm.MAX_FRAMES):
            region = Region(stack_frame_name(k), stack_frame_base(k), bytearray(STACK_SIZE))
            region.data = frames[k * STACK_SIZE:(k + 1) * STACK_SIZE]  # the native frame itself
            self._stack_regions.append(region)
        self.ctx = mm.Ctx()
        self.ctx.stack = ctypes.addressof(self._stack_view)

    # -- texts ----------------------------------------------------------------
    @property
    def llvm_ir(self) -> str:
        """The IR as lowered (before optimisation)."""
        return self.compiled.llvm_ir

    @property
    def optimized_ir(self) -> str:
        return self.compiled.optimized_ir

    @property
    def assembly(self) -> str:
        return self.compiled.assembly

    @property
    def compile_seconds(self) -> float:
        return self.compiled.compile_seconds

    # -- regions as the interpreter would have them ----------------------------------
    def map_regions(self, memory: MemoryMap, data: bytearray, depth: int) -> None:
        for region in list(memory):
            memory.remove_region(region)
        if data:
            memory.add_region(MEM_REGION, MEM_BASE, data)
        for k in range(depth + 1):
            memory.add(self._stack_regions[k])

    # -- runtime mode (ebpfvm.runtime.Runtime) ------------------------------------------
    def point_at(self, machine: Machine) -> None:
        """Point the context at the machine's regions: ``mem`` = the packet
        region (typed programs) or the plain context region; the map windows'
        first regions into the table. Context regions with hooks stay on the
        slow path."""
        from ebpfvm.maps.base import VALUES_OFFSET
        from ebpfvm.memory import MAP_VALUE_BASE, MAP_WINDOW

        ctx, memory = self.ctx, machine.memory
        mem = memory.get("packet")
        if mem is None:
            mem = memory.get(MEM_REGION) or memory.get("ctx")
            if mem is not None and mem.hook is not None:
                mem = None
        if mem is not None and mem.size:
            ctx.mem = _address_of(mem.data)
            ctx.mem_len, ctx.mem_base = mem.size, mem.base
        else:
            ctx.mem, ctx.mem_len, ctx.mem_base = None, 0, 0
        ctypes.memset(ctypes.addressof(ctx.table), 0, ctypes.sizeof(ctx.table))
        count = 0
        for region in memory:
            offset = region.base - MAP_VALUE_BASE
            if offset < 0 or offset % MAP_WINDOW != VALUES_OFFSET or region.hook is not None or not region.size:
                continue
            index = offset // MAP_WINDOW
            if index >= mm.MAX_WINDOWS:
                continue
            entry = ctx.table[index]
            entry.ptr = _address_of(region.data)
            entry.size = region.size
            entry.wsize = region.size if region.writable else 0
            count = max(count, index + 1)
        ctx.windows = count

    def run_machine(self, machine: Machine, budget: int = DEFAULT_BUDGET) -> int:
        """Run on a runtime's prepared machine (maps bound, context and packet
        mapped, r1/r2 set): r0 into ``machine.regs[0]``; returns the executed
        count (checked mode) or None. Faults raise as the interpreter's."""
        run = _Run(self, b"")
        run.machine = machine
        run.current = self
        run.budget = budget
        run.packet_region = machine.memory.get("packet")
        # The JIT's frame 0 replaces the machine's, so helpers see the native stack.
        for region in list(machine.memory):
            if region.name.startswith("stack frame"):
                machine.memory.remove_region(region)
        machine.memory.add(self._stack_regions[0])
        self.point_at(machine)
        ctx = self.ctx
        ctx.budget = budget
        ctx.fault_kind = 0
        address = ctypes.addressof(ctx)
        _RUNS[address] = run
        # Callbacks and tail calls run native code (the helpers call these).
        machine.call_function = run.call_function  # type: ignore[method-assign]
        machine.replace_program = run.replace_program  # type: ignore[method-assign]
        try:
            r0 = self._main(address, machine.regs[1], machine.regs[2])
        finally:
            _RUNS.pop(address, None)
            del machine.call_function, machine.replace_program
            run.sync_frames(0)
        if ctx.fault_kind:
            if ctx.fault_kind == mm.FAULT_MEMORY:  # cannot happen in runtime mode: the slow path faults
                raise ProgramFault("JIT memory fault outside the slow path", ctx.fault_pc)
            raise self._fault(run, budget)
        machine.regs[0] = r0 & MASK64
        return budget - ctx.budget if self.checked else None

    # -- running ---------------------------------------------------------------------
    def run(self, mem: bytes = b"", budget: int = DEFAULT_BUDGET) -> JitResult:
        run = _Run(self, mem)
        ctx = self.ctx
        n = len(run.data)
        view = (ctypes.c_char * n).from_buffer(run.data) if n else None
        ctx.mem = ctypes.addressof(view) if view is not None else None
        ctx.mem_len = n
        ctx.budget = budget
        ctx.fault_kind = 0
        address = ctypes.addressof(ctx)
        if self.uses_helpers:
            self.machine.env.begin_run()
            _RUNS[address] = run
        try:
            r0 = self._main(address, MEM_BASE if n else 0, n)
        finally:
            _RUNS.pop(address, None)
        del view
        if ctx.fault_kind:
            raise self._fault(run, budget)
        executed = budget - ctx.budget if self.checked else None
        return JitResult(r0=r0 & MASK64, executed=executed, mem=bytes(run.data))

    def run_many(self, mems: np.ndarray, budget: int = DEFAULT_BUDGET, out: np.ndarray | None = None) -> np.ndarray:
        """Run once per row of ``mems`` (shape (n, size), uint8) in one native
        call; returns the r0 values (uint64). Each row is the input memory of
        its run and holds that memory after the run (in place: pass a copy to
        keep the inputs). A fault raises like ``run`` with ``fault.index`` =
        the row. Programs that call helpers run row by row.

        Rows must be contiguous bytes; the row stride may be anything >= 0, so
        a view whose rows all alias one buffer (``repeat_rows``) runs the
        program ``n`` times on the same memory, each run seeing what the
        previous one left (how the benchmarks time it, like a C loop would).
        ``out``: an array of n uint64 to write the r0 values into (and
        return) instead of a new one, e.g. to keep allocation out of a timing."""
        mems = np.asarray(mems)
        if mems.ndim != 2 or mems.dtype != np.uint8:
            raise ValueError("run_many needs a 2-D uint8 array (one row per run)")
        count, size = mems.shape
        stride = mems.strides[0] if count > 1 else size
        if (size > 1 and mems.strides[1] != 1) or stride < 0 or not mems.flags.writeable:
            raise ValueError("run_many needs a writeable array of contiguous rows (row stride >= 0)")
        if out is None:
            out = np.zeros(count, dtype=np.uint64)
        elif out.shape != (count,) or out.dtype != np.uint64 or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"run_many's out must be a writeable contiguous uint64 array of {count} values")
        if self.uses_helpers:
            for i in range(count):
                result = self.run(mems[i].tobytes(), budget)
                mems[i] = np.frombuffer(result.mem, dtype=np.uint8)
                out[i] = result.r0
            return out
        ctx = self.ctx
        ctx.fault_kind = 0
        done = self._run_many(ctypes.addressof(ctx), mems.ctypes.data, count, size, out.ctypes.data, budget,
                              stride)
        if done != count:
            run = _Run(self, mems[done].tobytes())
            fault = self._fault(run, budget)
            fault.index = done
            raise fault
        return out

    # -- faults ------------------------------------------------------------------------
    def _fault(self, run: _Run, budget: int, ctx: Any = None) -> BaseException:
        """The exception for the fault in ``ctx`` (default: this program's),
        raised by this program's code."""
        ctx = self.ctx if ctx is None else ctx
        kind, pc = ctx.fault_kind, ctx.fault_pc
        executed = budget - ctx.budget - ctx.fault_extra if self.checked else None
        if kind == mm.FAULT_HELPER:
            exc = run.exception or RuntimeError("helper failed without an exception")
            if isinstance(exc, ProgramFault) and not hasattr(exc, "executed"):
                exc.executed = executed
            return exc
        if kind == mm.FAULT_MEMORY:
            memory = MemoryMap()
            self.map_regions(memory, run.data, ctx.fault_depth)
            fault: ProgramFault = memory.fault(ctx.fault_addr, ctx.fault_size, bool(ctx.fault_write), pc)
        elif kind == mm.FAULT_BUDGET:
            slots = self.blocks[pc].slots
            left = ctx.budget  # instructions that were left at the block's start
            fault = BudgetExhausted(slots[left] if 0 <= left < len(slots) else pc, budget)
            executed = budget
        elif kind == mm.FAULT_CALL_DEPTH:
            fault = CallDepthExceeded(pc, mm.MAX_FRAMES)
        elif kind == mm.FAULT_UNKNOWN_HELPER:
            fault = UnknownHelper(pc, ctx.fault_addr)
        elif kind == mm.FAULT_FELL_OFF:
            fault = FellOffEnd(pc, len(self.program))
        elif kind == mm.FAULT_UNRESOLVED:
            head, tail = self.program[pc], self.program[pc + 1]
            fault = UnresolvedPseudo(pc, head.src, head.imm, tail.imm)
        elif kind == mm.FAULT_KFUNC:
            fault = UnsupportedInstruction(pc, f"kfunc call (BTF id {self.program[pc].imm})")
        else:
            fault = ProgramFault(f"JIT reported unknown fault kind {kind}", pc)
        fault.executed = executed
        return fault


def repeat_rows(mem: bytes | bytearray | np.ndarray, count: int) -> np.ndarray:
    """``count`` rows that all alias one writeable copy of ``mem`` (row stride
    0): ``run_many`` on it runs the program ``count`` times on the same memory."""
    row = np.frombuffer(bytearray(mem), dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(row, shape=(count, row.size), strides=(0, 1), writeable=True)


def _address_of(data: Any) -> int:
    """Host address of a bytearray (or a memoryview of one) without keeping an export."""
    view = (ctypes.c_char * len(data)).from_buffer(data)
    try:
        return ctypes.addressof(view)
    finally:
        del view


def compile(program: Program | bytes, *, mode: str = "checked", opt_level: int = 2,
            helpers: HelperRegistry | None = None, env: HelperEnv | None = None) -> JitProgram:
    """Compile ``program`` to native code (cached by program, mode and level)."""
    if not isinstance(program, Program):
        program = Program.from_bytes(bytes(program))
    return JitProgram(program, mode=mode, opt_level=opt_level, helpers=helpers, env=env)


def run(program: Program | bytes, mem: bytes = b"", budget: int = DEFAULT_BUDGET, **options: Any) -> JitResult:
    return compile(program, **options).run(mem, budget)
