"""Atomic read-modify-write instructions, 32- and 64-bit, with and without fetch."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.errors import MemoryFault
from ebpfvm.interp import Interpreter, run
from ebpfvm.interp import build as b
from ebpfvm.isa import AtomicOp, Size

M64 = 2**64 - 1
M32 = 2**32 - 1
REFERENCE = {  # independent formulas on (old memory value, src) at the width
    AtomicOp.ADD: lambda old, src, m: (old + src) % (m + 1),
    AtomicOp.OR: lambda old, src, m: old | (src & m),
    AtomicOp.AND: lambda old, src, m: old & src,
    AtomicOp.XOR: lambda old, src, m: old ^ (src & m),
}


def atomic_run(op: AtomicOp, size: Size, memory: int, src: int, r0: int = 0) -> tuple[int, int, int]:
    """Run one atomic on [r1+8] holding ``memory``; return (memory after, src after, r0 after)."""
    width = 8 if size == Size.DW else 4
    mem = bytes(8) + memory.to_bytes(width, "little") + bytes(8)
    program = b.flatten([
        b.lddw(2, src), b.lddw(0, r0),
        b.atomic(size, op, 1, 2, 8),
        b.stx(Size.DW, 1, 2, 0),   # src after, into mem[0:8]
        b.exit_insn(),
    ])
    result = run(program, mem=mem)
    after = int.from_bytes(result.mem[8:8 + width], "little")
    src_after = struct.unpack_from("<Q", result.mem, 0)[0]
    assert result.mem[8 + width:] == bytes(8)  # nothing past the operand changed
    return after, src_after, result.r0


@pytest.mark.parametrize("op", list(REFERENCE))
@pytest.mark.parametrize("fetch", [False, True])
@settings(max_examples=40, deadline=None)
@given(memory=st.integers(0, M64), src=st.integers(0, M64), r0=st.integers(0, M64))
def test_rmw_matches_reference(op: AtomicOp, fetch: bool, memory: int, src: int, r0: int) -> None:
    code = AtomicOp(op | 0x01) if fetch else op
    after, src_after, r0_after = atomic_run(code, Size.DW, memory, src, r0)
    assert after == REFERENCE[op](memory, src, M64)
    assert src_after == (memory if fetch else src)
    assert r0_after == r0
    memory32 = memory & M32
    after, src_after, r0_after = atomic_run(code, Size.W, memory32, src, r0)
    assert after == REFERENCE[op](memory32, src, M32)
    assert src_after == (memory32 if fetch else src)  # fetched value is zero-extended
    assert r0_after == r0


def test_hand_cases() -> None:
    assert atomic_run(AtomicOp.ADD, Size.W, M32, 2, 0)[:2] == (1, 2)  # wraps at 32 bits
    assert atomic_run(AtomicOp.FETCH_ADD, Size.W, 0x1234, M64, 0)[:2] == (0x1233, 0x1234)
    assert atomic_run(AtomicOp.FETCH_OR, Size.DW, 0xF0, 0x0F, 0)[:2] == (0xFF, 0xF0)
    assert atomic_run(AtomicOp.FETCH_AND, Size.DW, 0xFF, 0x0F, 0)[:2] == (0x0F, 0xFF)
    assert atomic_run(AtomicOp.FETCH_XOR, Size.W, 0xFF, 0x1_0000_00F0, 0)[:2] == (0x0F, 0xFF)


@settings(max_examples=50, deadline=None)
@given(memory=st.integers(0, M64), src=st.integers(0, M64))
def test_xchg(memory: int, src: int) -> None:
    assert atomic_run(AtomicOp.XCHG, Size.DW, memory, src, 7) == (src, memory, 7)
    assert atomic_run(AtomicOp.XCHG, Size.W, memory & M32, src, 7) == (src & M32, memory & M32, 7)


@pytest.mark.parametrize("size, memory, src, r0, expected", [
    # equal: store src; r0 always gets the old value
    (Size.DW, 5, 9, 5, (9, 9, 5)),
    (Size.DW, 5, 9, 6, (5, 9, 5)),
    (Size.DW, M64, 1, M64, (1, 1, M64)),
    # 32-bit compares the low half of r0 and zero-extends the old value into r0
    (Size.W, 5, 9, 0xFFFF_FFFF_0000_0005, (9, 9, 5)),
    (Size.W, 0x8000_0000, 0x1_0000_0001, 0x8000_0000, (1, 0x1_0000_0001, 0x8000_0000)),
    (Size.W, 5, 9, 6, (5, 9, 5)),
])
def test_cmpxchg(size: Size, memory: int, src: int, r0: int, expected: tuple[int, int, int]) -> None:
    assert atomic_run(AtomicOp.CMPXCHG, size, memory, src, r0) == expected


def test_atomic_on_stack() -> None:
    program = b.flatten([b.st(Size.DW, 10, -8, 40), b.mov64_imm(1, 2),
                         b.atomic(Size.DW, AtomicOp.ADD, 10, 1, -8), b.ldx(Size.DW, 0, 10, -8), b.exit_insn()])
    assert run(program).r0 == 42


def test_atomic_out_of_bounds_faults_as_a_write_before_changing_anything() -> None:
    program = b.flatten([b.mov64_imm(2, 1), b.atomic(Size.DW, AtomicOp.FETCH_ADD, 1, 2, 4), b.exit_insn()])
    with pytest.raises(MemoryFault) as info:
        run(program, mem=bytes(8))
    assert (info.value.write, info.value.size, info.value.pc) == (True, 8, 1)


def test_cmpxchg_that_would_not_store_still_needs_write_access() -> None:
    base = 0x4000_0000_0000
    program = b.flatten([b.lddw(1, base), b.mov64_imm(0, 1), b.mov64_imm(2, 0),
                         b.atomic(Size.W, AtomicOp.CMPXCHG, 1, 2, 0), b.exit_insn()])
    interpreter = Interpreter(program)
    machine = interpreter.machine
    reset = machine.reset

    def reset_with_read_only_region(mem: bytes) -> None:
        reset(mem)
        machine.memory.add_region("ro", base, b"\x05\0\0\0", writable=False)

    machine.reset = reset_with_read_only_region
    with pytest.raises(MemoryFault) as info:
        interpreter.run()
    assert info.value.write and info.value.address == base
    assert "(read-only)" in info.value.nearest
