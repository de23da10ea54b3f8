"""Jump operations of the JMP and JMP32 classes (RFC 9669 §4.3).

Offsets count 8-byte instruction slots from the instruction after the jump.
``JA`` in class JMP uses the 16-bit ``off``; in class JMP32 (``gotol``) the
32-bit ``imm``. ``CALL``'s ``src`` says what ``imm`` names; CALL with the X
source bit (``callx``) calls the helper whose id is in register ``dst``.
"""

from __future__ import annotations

from enum import IntEnum


class JmpOp(IntEnum):
    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0


CONDITIONAL_JUMPS = (
    JmpOp.JEQ, JmpOp.JGT, JmpOp.JGE, JmpOp.JSET, JmpOp.JNE, JmpOp.JSGT,
    JmpOp.JSGE, JmpOp.JLT, JmpOp.JLE, JmpOp.JSLT, JmpOp.JSLE,
)


class CallKind(IntEnum):
    """The ``src`` field of a CALL instruction."""

    HELPER = 0  # imm: helper id
    LOCAL = 1  # imm: slot offset of a bpf-to-bpf callee (BPF_PSEUDO_CALL)
    KFUNC = 2  # imm: BTF id of a kernel function (BPF_PSEUDO_KFUNC_CALL)
