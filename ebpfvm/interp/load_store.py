"""LD, LDX, ST, STX (mode MEM/MEMSX), lddw and the legacy packet loads (RFC 9669 §5).

Every access goes through the machine's ``MemoryMap``, which checks it against
the mapped regions. Addresses are ``register + off`` computed on Python ints:
an address that wraps below 0 or past 2**64 is outside every region anyway, so
no masking is needed on the fast path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..isa.instruction import Instruction, lddw_value
from ..isa.load_store import SIZE_BYTES, LddwSource
from ..isa.opcode import SIZE_MASK
from ..isa.targets import slot_target
from ..memory import code_address
from .faults import UnresolvedPseudo
from .ops import MASK64, Op, s32

if TYPE_CHECKING:
    from .machine import Machine


def access_size(insn: Instruction) -> int:
    return SIZE_BYTES[insn.opcode & SIZE_MASK]


def build_load(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s, off, nxt = m.regs, insn.dst, insn.src, insn.off, pc + 1
    size, read = access_size(insn), m.memory.read

    def load() -> int:
        r[d] = read(r[s] + off, size, pc)
        return nxt
    return load


def build_load_sx(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s, off, nxt = m.regs, insn.dst, insn.src, insn.off, pc + 1
    size, read = access_size(insn), m.memory.read
    sign_bit, span = 1 << (8 * size - 1), 1 << (8 * size)

    def load_sx() -> int:
        value = read(r[s] + off, size, pc)
        r[d] = (value - span if value & sign_bit else value) & MASK64
        return nxt
    return load_sx


def build_store_imm(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, off, nxt = m.regs, insn.dst, insn.off, pc + 1
    size, write = access_size(insn), m.memory.write
    value = insn.imm & MASK64  # sign-extended; the store keeps the low ``size`` bytes

    def store_imm() -> int:
        write(r[d] + off, size, value, pc)
        return nxt
    return store_imm


def build_store_reg(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, s, off, nxt = m.regs, insn.dst, insn.src, insn.off, pc + 1
    size, write = access_size(insn), m.memory.write

    def store_reg() -> int:
        write(r[d] + off, size, r[s], pc)
        return nxt
    return store_reg


# -- lddw -------------------------------------------------------------------------
def build_lddw(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, nxt = m.regs, insn.dst, pc + 2  # the second slot is part of this instruction
    tail = m.program[pc + 1]
    value = _lddw_constant(insn, tail, pc, m)
    if value is None:
        src, imm, next_imm = insn.src, insn.imm, tail.imm

        def lddw_unresolved() -> int:
            raise UnresolvedPseudo(pc, src, imm, next_imm)
        return lddw_unresolved

    def lddw() -> int:
        r[d] = value
        return nxt
    return lddw


def _lddw_constant(head: Instruction, tail: Instruction, pc: int, m: "Machine") -> int | None:
    """The value an lddw loads, resolved once at decode time (as the kernel's
    loader does), or None when nothing can resolve its pseudo source."""
    if head.src == LddwSource.IMM64:
        return lddw_value(head, tail)
    if head.src == LddwSource.FUNC:
        return code_address(slot_target(head, pc))
    if m.resolve_pseudo is not None:
        value = m.resolve_pseudo(pc, head, tail)
        return None if value is None else value & MASK64
    return None


# -- legacy packet loads ---------------------------------------------------------
def build_ld_abs(insn: Instruction, pc: int, m: "Machine") -> Op:
    size, imm = access_size(insn), insn.imm

    def ld_abs() -> int:
        return packet_load(m, imm, size, pc)
    return ld_abs


def build_ld_ind(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, s, size, imm = m.regs, insn.src, access_size(insn), insn.imm

    def ld_ind() -> int:
        return packet_load(m, r[s] + imm, size, pc)
    return ld_ind


def packet_load(m: "Machine", offset: int, size: int, pc: int) -> int:
    """r0 = big-endian ``size`` bytes at packet ``offset``; next pc.

    As the kernel rewrites LD_ABS/LD_IND (``bpf_gen_ld_abs``): the offset is the
    32-bit signed sum, and when it is out of bounds the current function
    returns 0 at once (negative offsets, the kernel's SKF_* ancillary areas,
    are out of bounds here). In a subprogram that is a return to the caller,
    as in the kernel. r1-r5 keep their values (the kernel's rewrite is a
    helper call that clobbers them; the verifier makes them unreadable).
    """
    offset = s32(offset)
    data = m.packet
    if 0 <= offset and offset + size <= len(data):
        m.regs[0] = int.from_bytes(data[offset:offset + size], "big")
        return pc + 1
    m.regs[0] = 0
    return m.exit_frame(pc)


