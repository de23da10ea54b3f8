"""Arithmetic operations of the ALU (32-bit) and ALU64 classes (RFC 9669 §4.1).

The operation sits in the opcode's high nibble; ``off`` selects the signed
variant of DIV/MOD (``off == 1``) and the sign-extension width of MOV
(``off`` in 8/16/32). END swaps bytes: in class ALU the source bit picks the
target byte order (K = little endian, X = big endian); in ALU64 with K it is
an unconditional byte swap (``bswap``). ``imm`` gives the width in bits.
"""

from __future__ import annotations

from enum import IntEnum


class AluOp(IntEnum):
    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


# ``off`` values that turn DIV/MOD into SDIV/SMOD.
SIGNED_DIVISION_OFFSET = 1

# ``off`` values of MOV (ALU64 and ALU respectively) that sign-extend.
MOVSX_WIDTHS_64 = (8, 16, 32)
MOVSX_WIDTHS_32 = (8, 16)

# Widths a byte swap may name in ``imm``.
SWAP_WIDTHS = (16, 32, 64)
