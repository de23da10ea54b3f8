"""Load and store classes: modes, sizes, atomics and lddw (RFC 9669 §5).

``LDX``/``ST``/``STX`` with mode MEM move 1/2/4/8 bytes between a register (or
``imm`` for ST) and ``[reg + off]``; LDX with MEMSX sign-extends. ``STX`` with
mode ATOMIC does a read-modify-write whose operation is in ``imm``. Class LD
keeps the 16-byte ``lddw`` (mode IMM, size DW: two slots, the second slot's
``imm`` holding the high 32 bits) and the legacy packet loads ABS/IND.
"""

from __future__ import annotations

from enum import IntEnum


class Size(IntEnum):
    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


SIZE_BYTES = {Size.B: 1, Size.H: 2, Size.W: 4, Size.DW: 8}


class Mode(IntEnum):
    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class AtomicOp(IntEnum):
    """The ``imm`` of an atomic instruction."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH_ADD = 0x01
    FETCH_OR = 0x41
    FETCH_AND = 0x51
    FETCH_XOR = 0xA1
    XCHG = 0xE1
    CMPXCHG = 0xF1


ATOMIC_FETCH = 0x01


class LddwSource(IntEnum):
    """The ``src`` field of lddw: what the 64-bit immediate refers to."""

    IMM64 = 0  # a plain constant
    MAP_FD = 1  # BPF_PSEUDO_MAP_FD: imm is a map fd
    MAP_VALUE = 2  # BPF_PSEUDO_MAP_VALUE: map fd, next imm = offset in value
    BTF_ID = 3  # BPF_PSEUDO_BTF_ID: kernel variable by BTF id
    FUNC = 4  # BPF_PSEUDO_FUNC: imm is the slot offset of a subprogram
    MAP_IDX = 5  # BPF_PSEUDO_MAP_IDX: index into fd_array
    MAP_IDX_VALUE = 6  # BPF_PSEUDO_MAP_IDX_VALUE


LDDW_OPCODE = 0x18  # LD | IMM | DW
