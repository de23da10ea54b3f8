"""How native loads and stores reach the program's regions.

Registers hold the interpreter's fake addresses (``ebpfvm.memory``): r1 =
``MEM_BASE``, r10 = top of stack frame ``depth`` and so on, because programs
may return, compare or print them. Every access therefore translates a fake
address to host memory. The translation never turns an integer into a
pointer (no ``inttoptr``/``ptrtoint`` anywhere): the host address is always
a ``getelementptr`` from a real base pointer loaded from the run context
(the input memory buffer, or the stack buffer holding all eight 512-byte
frames contiguously, frame k at byte ``k * 512``). So LLVM never has to
guess a pointer's provenance, and the loop-optimisation miscompile of
``inttoptr`` round trips cannot arise.

For an address ``a`` (an i64)::

    u  = a - stack_frame_base(7)        # the 8 stack windows, 64 KiB apart
    in_stack = u <u 8 * STACK_STRIDE
    k  = 7 - (u >> 16)                  # frame index, 0 = main program
    w  = u & 0xffff                     # offset inside the frame's window
    host = in_stack ? stack + (k & 7) * 512 + w : mem + (a - MEM_BASE)

``checked`` mode adds the bounds check and branches to a fault exit::

    ok = in_stack ? (w <= 512 - size) & (k <= depth)       # frames deeper than
                  : (mem_len >= size) & (a - MEM_BASE <= mem_len - size)  # the running one are unmapped

``trusted`` mode (verifier-accepted programs) keeps only the select. When the
base register is r10 of the main program, or any register LLVM can prove to
be a constant offset from it, the whole translation constant-folds to a GEP
from the stack buffer; for the input memory it is a subtraction, compares
and a select.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from llvmlite import ir

from ebpfvm.memory import MEM_BASE, STACK_SIZE, STACK_STRIDE, stack_frame_base

MAX_FRAMES = 8
STACK_LOW = stack_frame_base(MAX_FRAMES - 1)
STACK_BYTES = MAX_FRAMES * STACK_SIZE

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()


def _constants(type_: ir.IntType) -> Callable[[int], ir.Constant]:
    """``type_(value)``, memoised: the lowering asks for the same few constants
    (0, 1, field indices, sizes) thousands of times, and a cached constant
    also keeps its printed form."""
    cache: dict[int, ir.Constant] = {}

    def constant(value: int) -> ir.Constant:
        found = cache.get(value)
        if found is None:
            if len(cache) >= 1 << 16:  # immediates of many programs: stay bounded
                cache.clear()
            found = cache[value] = ir.Constant(type_, value)
        return found

    return constant


C1, C8, C32, C64 = _constants(I1), _constants(I8), _constants(I32), _constants(I64)


MAX_WINDOWS = 64  # map windows whose first region native code reaches directly


class Window(ctypes.Structure):
    """One map window's first region (``VALUES_OFFSET`` into the window):
    host pointer, readable size, writable size (0 for a read-only map)."""

    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_uint64), ("wsize", ctypes.c_uint64)]


WINDOW_TYPE = ir.LiteralStructType([PTR, I64, I64])
WINDOW_TABLE_TYPE = ir.ArrayType(WINDOW_TYPE, MAX_WINDOWS)


class Ctx(ctypes.Structure):
    """The run context shared by Python and native code (one per run)."""

    _fields_ = [
        ("mem", ctypes.c_void_p),        # 0: host address of the input memory (or NULL)
        ("mem_len", ctypes.c_uint64),    # 1
        ("stack", ctypes.c_void_p),      # 2: 8 frames * 512 bytes
        ("budget", ctypes.c_int64),      # 3: instructions left (checked mode)
        ("fault_kind", ctypes.c_uint64),  # 4: FAULT_* (0 = none)
        ("fault_pc", ctypes.c_uint64),   # 5
        ("fault_addr", ctypes.c_uint64),  # 6
        ("fault_size", ctypes.c_uint64),  # 7
        ("fault_write", ctypes.c_uint64),  # 8
        ("fault_extra", ctypes.c_int64),  # 9: see FAULT_* (budget correction, helper id...)
        ("fault_depth", ctypes.c_uint64),  # 10
        # Runtime mode only (programs run by ``ebpfvm.runtime.Runtime``):
        ("mem_base", ctypes.c_uint64),   # 11: fake address of ``mem`` (context or packet region)
        ("windows", ctypes.c_uint64),    # 12: map windows in the table
        ("table", Window * MAX_WINDOWS),  # 13: map window i -> its value storage
        # 14: r0..r9 of the caller of bpf_tail_call / bpf_loop / for_each (a
        # tail call's target and the callbacks start from them, as in the interpreter)
        ("regs", ctypes.c_uint64 * 10),
    ]


CTX_TYPE = ir.LiteralStructType([PTR, I64, PTR] + [I64] * 8 + [I64, I64, WINDOW_TABLE_TYPE, ir.ArrayType(I64, 10)])
F_MEM, F_MEM_LEN, F_STACK, F_BUDGET, F_KIND, F_PC, F_ADDR, F_SIZE, F_WRITE, F_EXTRA, F_DEPTH = range(11)
F_MEM_BASE, F_WINDOWS, F_TABLE, F_REGS = 11, 12, 13, 14

FAULT_NONE = 0
FAULT_MEMORY = 1  # pc, addr, size, write, depth; extra = budget correction
FAULT_BUDGET = 2  # pc = first slot of the block; budget = instructions that were left at its start
FAULT_CALL_DEPTH = 3  # pc; extra = correction
FAULT_HELPER = 4  # pc; extra = correction; the exception is in the side channel
FAULT_FELL_OFF = 5
FAULT_UNRESOLVED = 6  # pc (an lddw with a pseudo source this run cannot resolve)
FAULT_KFUNC = 7  # pc
FAULT_UNKNOWN_HELPER = 8  # pc; addr = helper id; extra = correction
# Not a fault: bpf_tail_call's target ran (nested, on the same context) and its
# r0 is the helper's return value; the calling function returns it at once.
FAULT_TAIL = 9


def field_ptr(builder: ir.IRBuilder, ctx: ir.Value, index: int) -> ir.Value:
    return builder.gep(ctx, [C32(0), C32(index)], inbounds=True, source_etype=CTX_TYPE)


def load_field(builder: ir.IRBuilder, ctx: ir.Value, index: int, typ: ir.Type = I64) -> ir.Value:
    return builder.load(field_ptr(builder, ctx, index), typ=typ)


def store_field(builder: ir.IRBuilder, ctx: ir.Value, index: int, value: ir.Value) -> None:
    builder.store(value, field_ptr(builder, ctx, index))


class Regions:
    """The base pointers a function reads once at entry."""

    def __init__(self, builder: ir.IRBuilder, ctx: ir.Value) -> None:
        self.mem = load_field(builder, ctx, F_MEM, PTR)
        self.mem_len = load_field(builder, ctx, F_MEM_LEN)
        self.stack = load_field(builder, ctx, F_STACK, PTR)

    def frame(self, builder: ir.IRBuilder, depth: ir.Value) -> ir.Value:
        """Host pointer of frame ``depth``'s 512 bytes."""
        return builder.gep(self.stack, [builder.mul(depth, C64(STACK_SIZE))], source_etype=I8)


def _stack_address(builder: ir.IRBuilder, regions: Regions, depth: ir.Value, address: ir.Value,
                   size: int) -> tuple[ir.Value, ir.Value, Callable[[], ir.Value]]:
    """``(in_stack, host pointer into the frames, ok())`` for fake ``address``:
    frame k lives at ``STACK_LOW + (MAX_FRAMES - 1 - k) * STACK_STRIDE``;
    ``ok()`` emits the bounds check (the access fits the frame and the frame
    is live) only when a caller wants it, so trusted code carries none."""
    u = builder.sub(address, C64(STACK_LOW))
    in_stack = builder.icmp_unsigned("<", u, C64(MAX_FRAMES * STACK_STRIDE))
    k = builder.sub(C64(MAX_FRAMES - 1), builder.lshr(u, C64(16)))
    w = builder.and_(u, C64(STACK_STRIDE - 1))
    frame_off = builder.add(builder.shl(builder.and_(k, C64(MAX_FRAMES - 1)), C64(9)), w)
    stack_ptr = builder.gep(regions.stack, [frame_off], source_etype=I8)

    def ok() -> ir.Value:
        return builder.and_(builder.icmp_unsigned("<=", w, C64(STACK_SIZE - size)),
                            builder.icmp_unsigned("<=", k, depth))

    return in_stack, stack_ptr, ok


def translate(builder: ir.IRBuilder, regions: Regions, depth: ir.Value, address: ir.Value,
              size: int, checked: bool) -> tuple[ir.Value, ir.Value | None]:
    """``(host pointer, ok)`` for an access of ``size`` bytes at fake ``address``;
    ``ok`` is None in trusted mode."""
    in_stack, stack_ptr, frame_ok = _stack_address(builder, regions, depth, address, size)
    m = builder.sub(address, C64(MEM_BASE))
    mem_ptr = builder.gep(regions.mem, [m], source_etype=I8)
    host = builder.select(in_stack, stack_ptr, mem_ptr)
    if not checked:
        return host, None
    ok_stack = frame_ok()
    ok_mem = builder.and_(builder.icmp_unsigned(">=", regions.mem_len, C64(size)),
                          builder.icmp_unsigned("<=", m, builder.sub(regions.mem_len, C64(size))))
    return host, builder.select(in_stack, ok_stack, ok_mem)


def translate_runtime(builder: ir.IRBuilder, ctx: ir.Value, regions: Regions, depth: ir.Value,
                      address: ir.Value, size: int, write: bool) -> tuple[ir.Value, ir.Value]:
    """Runtime mode: ``(host pointer, ok)``, where ok false means "take the slow
    path" (a Python callback doing the access on the run's ``MemoryMap``:
    context hooks, faults, anything not mapped natively). Natively mapped:
    the stack frames, the ``mem`` region at ``mem_base`` (a packet, or a plain
    context) and the first region of each map window (the map's values).
    ``mem``/windows are reloaded from the context at every access because
    helpers move them (xdp_adjust_head maps a new packet region)."""
    from ebpfvm.maps.base import VALUES_OFFSET
    from ebpfvm.memory import MAP_VALUE_BASE, MAP_WINDOW

    in_stack, stack_ptr, frame_ok = _stack_address(builder, regions, depth, address, size)
    ok_stack = frame_ok()
    mem = load_field(builder, ctx, F_MEM, PTR)
    mem_len = load_field(builder, ctx, F_MEM_LEN)
    m = builder.sub(address, load_field(builder, ctx, F_MEM_BASE))
    mem_ptr = builder.gep(mem, [m], source_etype=I8)
    ok_mem = builder.and_(builder.icmp_unsigned(">=", mem_len, C64(size)),
                          builder.icmp_unsigned("<=", m, builder.sub(mem_len, C64(size))))
    v = builder.sub(address, C64(MAP_VALUE_BASE))
    index = builder.lshr(v, C64(32))
    in_table = builder.icmp_unsigned("<", index, load_field(builder, ctx, F_WINDOWS))
    slot = builder.select(in_table, index, C64(0))
    entry = [C32(0), C32(F_TABLE), slot]
    wptr = builder.load(builder.gep(ctx, entry + [C32(0)], inbounds=True, source_etype=CTX_TYPE), typ=PTR)
    wsize = builder.load(builder.gep(ctx, entry + [C32(2 if write else 1)], inbounds=True, source_etype=CTX_TYPE),
                         typ=I64)
    o = builder.sub(builder.and_(v, C64(MAP_WINDOW - 1)), C64(VALUES_OFFSET))
    win_ptr = builder.gep(wptr, [o], source_etype=I8)
    ok_win = builder.and_(in_table, builder.and_(builder.icmp_unsigned(">=", wsize, C64(size)),
                                                 builder.icmp_unsigned("<=", o, builder.sub(wsize, C64(size)))))
    host = builder.select(in_stack, stack_ptr, builder.select(ok_mem, mem_ptr, win_ptr))
    ok = builder.select(in_stack, ok_stack, builder.or_(ok_mem, ok_win))
    return host, ok
