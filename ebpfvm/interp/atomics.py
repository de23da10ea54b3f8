"""STX with mode ATOMIC: read-modify-write of 4 or 8 bytes (RFC 9669 §5.3).

``imm`` names the operation; the FETCH bit makes add/or/and/xor also load the
old value into ``src`` (zero-extended for the 32-bit form). ``xchg`` always
fetches; ``cmpxchg`` compares memory with r0 (its low half for 32-bit),
stores ``src`` on equality and always loads the old value into r0.

The whole access is checked as a write first, so an atomic on a read-only
region faults even when ``cmpxchg`` would not store.
"""

from __future__ import annotations

import operator
import struct
from typing import TYPE_CHECKING, Callable

from ..isa.instruction import Instruction
from ..isa.load_store import ATOMIC_FETCH, AtomicOp
from .load_store import access_size
from .ops import MASK32, MASK64, Op

if TYPE_CHECKING:
    from .machine import Machine

# The read-modify-write operations, on (old memory value, src) -> new value.
RMW: dict[int, Callable[[int, int], int]] = {
    AtomicOp.ADD: operator.add,
    AtomicOp.OR: operator.or_,
    AtomicOp.AND: operator.and_,
    AtomicOp.XOR: operator.xor,
}

_FORMATS = {4: struct.Struct("<I"), 8: struct.Struct("<Q")}


def build_atomic(insn: Instruction, pc: int, m: "Machine") -> Op:
    return _BUILDERS[insn.imm](insn, pc, m)


def _build_rmw(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s, off, nxt = m.regs, insn.dst, insn.src, insn.off, pc + 1
    size, locate = access_size(insn), m.memory.locate
    fmt = _FORMATS[size]
    unpack, pack = fmt.unpack_from, fmt.pack_into
    mask = MASK64 if size == 8 else MASK32
    combine = RMW[insn.imm & ~ATOMIC_FETCH]
    fetch = bool(insn.imm & ATOMIC_FETCH)

    def atomic_rmw() -> int:
        address = r[d] + off
        region = locate(address, size, True, pc)
        at = address - region.base
        old = unpack(region.data, at)[0]
        pack(region.data, at, combine(old, r[s]) & mask)
        if fetch:
            r[s] = old
        return nxt
    return atomic_rmw


def _build_xchg(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s, off, nxt = m.regs, insn.dst, insn.src, insn.off, pc + 1
    size, locate = access_size(insn), m.memory.locate
    fmt = _FORMATS[size]
    mask = MASK64 if size == 8 else MASK32

    def atomic_xchg() -> int:
        address = r[d] + off
        region = locate(address, size, True, pc)
        at = address - region.base
        old = fmt.unpack_from(region.data, at)[0]
        fmt.pack_into(region.data, at, r[s] & mask)
        r[s] = old
        return nxt
    return atomic_xchg


def _build_cmpxchg(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s, off, nxt = m.regs, insn.dst, insn.src, insn.off, pc + 1
    size, locate = access_size(insn), m.memory.locate
    fmt = _FORMATS[size]
    mask = MASK64 if size == 8 else MASK32

    def atomic_cmpxchg() -> int:
        address = r[d] + off
        region = locate(address, size, True, pc)
        at = address - region.base
        old = fmt.unpack_from(region.data, at)[0]
        if old == r[0] & mask:
            fmt.pack_into(region.data, at, r[s] & mask)
        r[0] = old
        return nxt
    return atomic_cmpxchg


_BUILDERS = {
    **{op: _build_rmw for op in (AtomicOp.ADD, AtomicOp.OR, AtomicOp.AND, AtomicOp.XOR,
                                 AtomicOp.FETCH_ADD, AtomicOp.FETCH_OR, AtomicOp.FETCH_AND, AtomicOp.FETCH_XOR)},
    AtomicOp.XCHG: _build_xchg,
    AtomicOp.CMPXCHG: _build_cmpxchg,
}
