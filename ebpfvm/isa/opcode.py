"""The opcode byte: instruction class plus class-specific fields (RFC 9669 §3).

Arithmetic and jump classes (ALU, ALU64, JMP, JMP32)::

    +----------------+--------+--------------------+
    |  operation (4) | src(1) |  class (3)         |
    +----------------+--------+--------------------+
     7            4      3      2                0

Load and store classes (LD, LDX, ST, STX)::

    +-----------+-----------+--------------------+
    |  mode (3) |  size (2) |  class (3)         |
    +-----------+-----------+--------------------+
     7       5    4       3   2                0
"""

from __future__ import annotations

from enum import IntEnum


class InsnClass(IntEnum):
    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Source(IntEnum):
    """Second operand of ALU/JMP: the immediate (K) or the src register (X)."""

    K = 0x00
    X = 0x08


CLASS_MASK = 0x07
SOURCE_MASK = 0x08
OPERATION_MASK = 0xF0
SIZE_MASK = 0x18
MODE_MASK = 0xE0


def insn_class(opcode: int) -> InsnClass:
    return InsnClass(opcode & CLASS_MASK)


def is_alu(opcode: int) -> bool:
    return opcode & CLASS_MASK in (InsnClass.ALU, InsnClass.ALU64)


def is_jump(opcode: int) -> bool:
    return opcode & CLASS_MASK in (InsnClass.JMP, InsnClass.JMP32)


def is_memory(opcode: int) -> bool:
    return opcode & CLASS_MASK <= InsnClass.STX
