"""What every instruction module shares: the ``Op`` closure type and integer helpers.

The machine pre-decodes each instruction slot once into an ``Op``: a closure
with no arguments that performs the instruction on the machine's registers and
memory and returns the index of the next slot to run. Everything an
instruction needs (register numbers, immediates, the semantics function, the
slot's own pc for error messages) is bound at decode time, so the hot loop does
no parsing and no attribute lookups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..isa.instruction import Instruction

if TYPE_CHECKING:
    from .machine import Machine

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

Op = Callable[[], int]
# Builds the Op of the instruction at ``pc``: builder(insn, pc, machine).
Builder = Callable[[Instruction, int, "Machine"], Op]


def s64(value: int) -> int:
    """The signed value of a 64-bit register."""
    return value - 0x1_0000_0000_0000_0000 if value >> 63 else value


def s32(value: int) -> int:
    """The signed value of the low 32 bits."""
    value &= MASK32
    return value - 0x1_0000_0000 if value >> 31 else value


def sign_extend(value: int, bits: int) -> int:
    """``value``'s low ``bits`` bits, sign-extended to an unsigned 64-bit value."""
    value &= (1 << bits) - 1
    if value >> (bits - 1):
        value -= 1 << bits
    return value & MASK64
