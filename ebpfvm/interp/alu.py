"""ALU and ALU64: the semantics of each operation, and the closures that run them.

The first half is pure functions on unsigned register values
(``0 <= a, b < 2**64``), one per operation and width, in tables keyed by
``(AluOp, off)`` (``off`` picks sdiv/smod and the movsx widths). They are the
interpreter's reference semantics (RFC 9669 §4.1, kernel ``___bpf_prog_run``)
and can serve the JIT and verifier tests as an oracle.

The second half turns one instruction into an ``Op`` closure for the machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..isa.alu import SIGNED_DIVISION_OFFSET, AluOp
from ..isa.instruction import Instruction
from ..isa.opcode import CLASS_MASK, OPERATION_MASK, SOURCE_MASK, InsnClass, Source
from .ops import MASK32, MASK64, Op, s32, s64

if TYPE_CHECKING:
    from .machine import Machine

BinOp = Callable[[int, int], int]


# -- 64-bit semantics ---------------------------------------------------------
def add64(a: int, b: int) -> int:
    return (a + b) & MASK64


def sub64(a: int, b: int) -> int:
    return (a - b) & MASK64


def mul64(a: int, b: int) -> int:
    return (a * b) & MASK64


def div64(a: int, b: int) -> int:
    return a // b if b else 0  # division by zero gives 0 (no trap)


def sdiv64(a: int, b: int) -> int:
    if not b:
        return 0
    x, y = s64(a), s64(b)
    q = abs(x) // abs(y)  # truncates toward zero, as C does
    # INT64_MIN / -1 overflows to INT64_MIN, which the mask yields.
    return (-q if (x < 0) != (y < 0) else q) & MASK64


def mod64(a: int, b: int) -> int:
    return a % b if b else a  # modulo by zero leaves dst unchanged


def smod64(a: int, b: int) -> int:
    if not b:
        return a
    x, y = s64(a), s64(b)
    r = abs(x) % abs(y)  # the remainder takes the dividend's sign
    return (-r if x < 0 else r) & MASK64


def or64(a: int, b: int) -> int:
    return a | b


def and64(a: int, b: int) -> int:
    return a & b


def xor64(a: int, b: int) -> int:
    return a ^ b


def lsh64(a: int, b: int) -> int:
    return (a << (b & 63)) & MASK64


def rsh64(a: int, b: int) -> int:
    return a >> (b & 63)


def arsh64(a: int, b: int) -> int:
    return (s64(a) >> (b & 63)) & MASK64


def mov64(a: int, b: int) -> int:
    return b


def movsx8_64(a: int, b: int) -> int:
    b &= 0xFF
    return (b - 0x100 if b & 0x80 else b) & MASK64


def movsx16_64(a: int, b: int) -> int:
    b &= 0xFFFF
    return (b - 0x1_0000 if b & 0x8000 else b) & MASK64


def movsx32_64(a: int, b: int) -> int:
    return s32(b) & MASK64


# -- 32-bit semantics: operands are the low halves, results zero-extended -----
def add32(a: int, b: int) -> int:
    return (a + b) & MASK32


def sub32(a: int, b: int) -> int:
    return (a - b) & MASK32


def mul32(a: int, b: int) -> int:
    return (a * b) & MASK32


def div32(a: int, b: int) -> int:
    b &= MASK32
    return (a & MASK32) // b if b else 0


def sdiv32(a: int, b: int) -> int:
    y = s32(b)
    if not y:
        return 0
    x = s32(a)
    q = abs(x) // abs(y)
    return (-q if (x < 0) != (y < 0) else q) & MASK32


def mod32(a: int, b: int) -> int:
    # By zero the low half is kept and the upper 32 bits are still cleared: the
    # kernel patches ``w0 %= w1`` into ``if w1 == 0 { w0 = w0 } else ...``.
    b &= MASK32
    return (a & MASK32) % b if b else a & MASK32


def smod32(a: int, b: int) -> int:
    y = s32(b)
    if not y:
        return a & MASK32
    x = s32(a)
    r = abs(x) % abs(y)
    return (-r if x < 0 else r) & MASK32


def or32(a: int, b: int) -> int:
    return (a | b) & MASK32


def and32(a: int, b: int) -> int:
    return a & b & MASK32


def xor32(a: int, b: int) -> int:
    return (a ^ b) & MASK32


def lsh32(a: int, b: int) -> int:
    return (a << (b & 31)) & MASK32


def rsh32(a: int, b: int) -> int:
    return (a & MASK32) >> (b & 31)


def arsh32(a: int, b: int) -> int:
    return (s32(a) >> (b & 31)) & MASK32


def mov32(a: int, b: int) -> int:
    return b & MASK32


def movsx8_32(a: int, b: int) -> int:
    return movsx8_64(a, b) & MASK32


def movsx16_32(a: int, b: int) -> int:
    return movsx16_64(a, b) & MASK32


# -- unary: negation and byte order ---------------------------------------------
def neg64(a: int) -> int:
    return -a & MASK64


def neg32(a: int) -> int:
    return -a & MASK32


def bswap16(a: int) -> int:
    return ((a & 0xFF) << 8) | ((a >> 8) & 0xFF)


def bswap32(a: int) -> int:
    return int.from_bytes((a & MASK32).to_bytes(4, "little"), "big")


def bswap64(a: int) -> int:
    return int.from_bytes(a.to_bytes(8, "little"), "big")


def trunc16(a: int) -> int:
    return a & 0xFFFF


def trunc32(a: int) -> int:
    return a & MASK32


def trunc64(a: int) -> int:
    return a


_SIGNED = SIGNED_DIVISION_OFFSET

ALU64: dict[tuple[int, int], BinOp] = {
    (AluOp.ADD, 0): add64, (AluOp.SUB, 0): sub64, (AluOp.MUL, 0): mul64,
    (AluOp.DIV, 0): div64, (AluOp.DIV, _SIGNED): sdiv64,
    (AluOp.MOD, 0): mod64, (AluOp.MOD, _SIGNED): smod64,
    (AluOp.OR, 0): or64, (AluOp.AND, 0): and64, (AluOp.XOR, 0): xor64,
    (AluOp.LSH, 0): lsh64, (AluOp.RSH, 0): rsh64, (AluOp.ARSH, 0): arsh64,
    (AluOp.MOV, 0): mov64, (AluOp.MOV, 8): movsx8_64, (AluOp.MOV, 16): movsx16_64, (AluOp.MOV, 32): movsx32_64,
}

ALU32: dict[tuple[int, int], BinOp] = {
    (AluOp.ADD, 0): add32, (AluOp.SUB, 0): sub32, (AluOp.MUL, 0): mul32,
    (AluOp.DIV, 0): div32, (AluOp.DIV, _SIGNED): sdiv32,
    (AluOp.MOD, 0): mod32, (AluOp.MOD, _SIGNED): smod32,
    (AluOp.OR, 0): or32, (AluOp.AND, 0): and32, (AluOp.XOR, 0): xor32,
    (AluOp.LSH, 0): lsh32, (AluOp.RSH, 0): rsh32, (AluOp.ARSH, 0): arsh32,
    (AluOp.MOV, 0): mov32, (AluOp.MOV, 8): movsx8_32, (AluOp.MOV, 16): movsx16_32,
}

# Byte order, keyed by (class, source bit, width). On a little-endian machine
# "to little endian" only truncates to the width; "to big endian" swaps.
# ALU64 with K is the unconditional ``bswap``.
ENDIAN: dict[tuple[int, int, int], Callable[[int], int]] = {
    (InsnClass.ALU, Source.K, 16): trunc16, (InsnClass.ALU, Source.K, 32): trunc32,
    (InsnClass.ALU, Source.K, 64): trunc64,
    (InsnClass.ALU, Source.X, 16): bswap16, (InsnClass.ALU, Source.X, 32): bswap32,
    (InsnClass.ALU, Source.X, 64): bswap64,
    (InsnClass.ALU64, Source.K, 16): bswap16, (InsnClass.ALU64, Source.K, 32): bswap32,
    (InsnClass.ALU64, Source.K, 64): bswap64,
}


def semantics(insn: Instruction) -> BinOp:
    """The ``(dst, src) -> dst`` function of a two-operand ALU instruction."""
    table = ALU64 if insn.opcode & CLASS_MASK == InsnClass.ALU64 else ALU32
    return table[(insn.opcode & OPERATION_MASK, insn.off)]


def immediate(insn: Instruction) -> int:
    """The second operand of a K-form: ALU64 sign-extends ``imm`` to 64 bits,
    ALU uses its 32 bits (so ``div w0, -1`` divides by 0xffffffff)."""
    return insn.imm & (MASK64 if insn.opcode & CLASS_MASK == InsnClass.ALU64 else MASK32)


# -- closures -----------------------------------------------------------------
# The common 64-bit operations are written out inline: calling a semantics
# function from the closure would double the cost of the hottest instructions.
def _inline_k(op: int, r: list[int], d: int, k: int, nxt: int) -> Op | None:
    if op == AluOp.ADD:
        def add_k() -> int:
            r[d] = (r[d] + k) & MASK64
            return nxt
        return add_k
    if op == AluOp.SUB:
        def sub_k() -> int:
            r[d] = (r[d] - k) & MASK64
            return nxt
        return sub_k
    if op == AluOp.AND:
        def and_k() -> int:
            r[d] &= k
            return nxt
        return and_k
    if op == AluOp.OR:
        def or_k() -> int:
            r[d] |= k
            return nxt
        return or_k
    if op == AluOp.XOR:
        def xor_k() -> int:
            r[d] ^= k
            return nxt
        return xor_k
    if op == AluOp.LSH:
        shift = k & 63

        def lsh_k() -> int:
            r[d] = (r[d] << shift) & MASK64
            return nxt
        return lsh_k
    if op == AluOp.RSH:
        shift = k & 63

        def rsh_k() -> int:
            r[d] >>= shift
            return nxt
        return rsh_k
    return None


def _inline_x(op: int, r: list[int], d: int, s: int, nxt: int) -> Op | None:
    if op == AluOp.ADD:
        def add_x() -> int:
            r[d] = (r[d] + r[s]) & MASK64
            return nxt
        return add_x
    if op == AluOp.SUB:
        def sub_x() -> int:
            r[d] = (r[d] - r[s]) & MASK64
            return nxt
        return sub_x
    if op == AluOp.MUL:
        def mul_x() -> int:
            r[d] = (r[d] * r[s]) & MASK64
            return nxt
        return mul_x
    if op == AluOp.MOV:
        def mov_x() -> int:
            r[d] = r[s]
            return nxt
        return mov_x
    return None


def build_alu(insn: Instruction, pc: int, m: "Machine") -> Op:
    r = m.regs
    d, s, nxt = insn.dst, insn.src, pc + 1
    op = insn.opcode & OPERATION_MASK
    is64 = insn.opcode & CLASS_MASK == InsnClass.ALU64
    fn = semantics(insn)
    if insn.opcode & SOURCE_MASK == Source.K:
        k = immediate(insn)
        if op == AluOp.MOV:
            value = fn(0, k)

            def mov_k() -> int:
                r[d] = value
                return nxt
            return mov_k
        if is64:
            inline = _inline_k(op, r, d, k, nxt)
            if inline is not None:
                return inline

        def alu_k() -> int:
            r[d] = fn(r[d], k)
            return nxt
        return alu_k

    if is64 and insn.off == 0:
        inline = _inline_x(op, r, d, s, nxt)
        if inline is not None:
            return inline

    def alu_x() -> int:
        r[d] = fn(r[d], r[s])
        return nxt
    return alu_x


def build_neg(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, nxt = m.regs, insn.dst, pc + 1
    fn = neg64 if insn.opcode & CLASS_MASK == InsnClass.ALU64 else neg32

    def neg() -> int:
        r[d] = fn(r[d])
        return nxt
    return neg


def build_end(insn: Instruction, pc: int, m: "Machine") -> Op:
    r, d, nxt = m.regs, insn.dst, pc + 1
    fn = ENDIAN[(insn.opcode & CLASS_MASK, insn.opcode & SOURCE_MASK, insn.imm)]

    def end() -> int:
        r[d] = fn(r[d])
        return nxt
    return end

