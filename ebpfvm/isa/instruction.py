"""One 8-byte instruction slot (RFC 9669 §3).

Wire layout (little endian)::

     0        8        12       16                32                      64
    +--------+--------+--------+-----------------+-----------------------+
    | opcode |  dst   |  src   |     offset      |       immediate       |
    |  (8)   |  (4)   |  (4)   |  (16, signed)   |     (32, signed)      |
    +--------+--------+--------+-----------------+-----------------------+

A 16-byte ``lddw`` is two slots; the second has opcode 0 and carries the
high half of the constant in its ``imm``. Programs keep both slots, exactly
as the kernel does, so instruction indices here equal the kernel's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SLOT_SIZE = 8
_SLOT = struct.Struct("<BBhi")


@dataclass(frozen=True, slots=True)
class Instruction:
    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def __post_init__(self) -> None:
        # Field ranges are the wire format's; anything else could not be encoded.
        if not 0 <= self.opcode <= 0xFF:
            raise ValueError(f"opcode {self.opcode} does not fit in 8 bits")
        if not (0 <= self.dst <= 15 and 0 <= self.src <= 15):
            raise ValueError(f"register field out of range: dst={self.dst} src={self.src}")
        if not -0x8000 <= self.off <= 0x7FFF:
            raise ValueError(f"offset {self.off} does not fit in 16 signed bits")
        if not -0x8000_0000 <= self.imm <= 0x7FFF_FFFF:
            raise ValueError(f"immediate {self.imm} does not fit in 32 signed bits")

    def encode(self) -> bytes:
        return _SLOT.pack(self.opcode, (self.src << 4) | self.dst, self.off, self.imm)

    @classmethod
    def decode(cls, slot: bytes) -> "Instruction":
        opcode, regs, off, imm = _SLOT.unpack(slot)
        return cls(opcode, regs & 0x0F, regs >> 4, off, imm)


def lddw_pair(dst: int, value: int, src: int = 0) -> tuple[Instruction, Instruction]:
    """The two slots of ``lddw dst, value`` (value taken modulo 2**64)."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return (
        Instruction(0x18, dst, src, 0, to_s32(value & 0xFFFF_FFFF)),
        Instruction(0, 0, 0, 0, to_s32(value >> 32)),
    )


def lddw_value(head: Instruction, tail: Instruction) -> int:
    """The unsigned 64-bit constant of an lddw pair."""
    return ((tail.imm & 0xFFFF_FFFF) << 32) | (head.imm & 0xFFFF_FFFF)


def to_s32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value
